"""``report.html``: one self-contained page (figures inlined as base64 PNG, CSS inline, no script).

It opens from disk with no server and no network, so it can be mailed or archived with the run.
"""
from __future__ import annotations

import base64
import datetime
import html
from typing import List, Optional, Sequence, Tuple

from ._rundata import RunData
from ._tables import Table, baselines_table, html_table, trials_table

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1150px;
     padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.meta{color:#555} nav a{margin-right:1em}
table{border-collapse:collapse;font-size:.86em;margin:.6em 0 1.2em} th,td{padding:.25em .6em;border:1px solid #ddd}
th{background:#f4f4f4;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em 0}
details{margin:.5em 0;border:1px solid #e4e4e4;border-radius:4px;padding:.3em .8em}
summary{cursor:pointer;font-weight:600} pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em}
code{background:#f1f1f1;padding:0 .25em}
"""


def image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(run: RunData, target: str, pareto_png: bytes, front: Sequence[dict],
                allocations: Sequence[Tuple[dict, str, bytes, Optional[bytes]]],
                compare: Optional[Tuple[bytes, Sequence[Tuple[str, RunData]]]] = None,
                files: Sequence[str] = (), config_text: str = "") -> str:
    """The whole page.

    Args:
        allocations: per trial shown in full, (result, title, allocation PNG, evolution PNG or None).
        compare: the comparison figure and the (label, run) pairs it shows.
        files: the files the report wrote, relative to the run directory.
    """
    on_front = {r["trial"] for r in front}
    model = run.config.get("model", {}).get("name", "?")
    data = run.dataset.get("name") or run.config.get("data", {}).get("name", "?")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    tuned = "" if target == run.target else f" (the study tuned for {html.escape(run.target)})"
    sections = [("front", "Pareto front"), ("baselines", "Baselines"), ("trials", "All trials"),
                ("allocations", "Allocations"), ("files", "Files"), ("config", "Configuration")]
    if compare:
        sections.insert(2, ("compare", "Comparison"))
    parts: List[str] = [
        f"<h1>jointopt report — {html.escape(run.name)}</h1>",
        f'<p class="meta">model <b>{html.escape(str(model))}</b> on <b>{html.escape(str(data))}</b> · target cost '
        f"<b>{html.escape(target)}</b>{tuned}"
        f" · {len(run.results)} completed trials, {len(front)} on the front · generated {stamp}</p>",
        "<nav>" + "".join(f'<a href="#{k}">{v}</a>' for k, v in sections) + "</nav>",
        '<h2 id="front">Pareto front</h2>', image(pareto_png, "Pareto front"),
        "<p>Accuracy in %, costs in the units of each column. The front is selected on validation accuracy "
        "(the tuner's objective); test accuracy is measured on held-out data. "
        "<i>vs uniform w8</i> is the change of the target cost relative to every weight at 8 bits.</p>",
        html_table(trials_table(run, front, target)),
        '<h2 id="baselines">Baselines</h2>',
        "<p>Uniform networks (every weight at one width, trained with the same epoch budget as a trial) and "
        "the float warm-up network every trial starts from.</p>" + html_table(baselines_table(run, target))
        if run.baselines else "<p>No baselines recorded.</p>",
    ]
    if compare:
        png, pairs = compare
        parts += ['<h2 id="compare">Comparison</h2>', image(png, "Pareto fronts compared")]
        for label, other in pairs:
            parts += [f"<h3>{html.escape(label)}</h3>",
                      html_table(trials_table(other, other.front(target), target))]
    parts += ['<h2 id="trials">All trials</h2>',
              "<p>● marks the trials on the front.</p>",
              html_table(trials_table(run, run.results, target, front=on_front), numeric_from=2),
              '<h2 id="allocations">Allocations</h2>',
              "<p>Per layer, the share of output channels kept at each weight bit-width and the pruned share; "
              "below, how the allocation evolved during the search. Figures of every trial are in "
              "<code>trials/&lt;n&gt;/allocation.png</code>.</p>"]
    parts += [_allocation_section(*item, open_=item[0]["trial"] in on_front) for item in allocations]
    parts += ['<h2 id="files">Files</h2>', "<ul>" + "".join(f"<li><code>{html.escape(f)}</code></li>" for f in files)
              + "</ul>",
              f"<p>TensorBoard: <code>tensorboard --logdir {html.escape(str(run.path))}</code></p>",
              '<h2 id="config">Configuration</h2>', f"<pre>{html.escape(config_text)}</pre>"]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>jointopt report — {html.escape(run.name)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


def _allocation_section(result: dict, title: str, png: bytes, evolution: Optional[bytes], open_: bool) -> str:
    from ._allocation import ALLOCATION_HEADER, allocation_rows

    table: Table = (ALLOCATION_HEADER, allocation_rows(result.get("allocation", [])))
    inner = image(png, f"allocation of trial {result['trial']}")
    if evolution:
        inner += image(evolution, f"allocation of trial {result['trial']} during the search")
    inner += html_table(table)
    return (f"<details{' open' if open_ else ''}><summary>{html.escape(title)}"
            f"{' — on the front' if open_ else ''}</summary>{inner}</details>")
