"""Tables of trials in human units, as Markdown (TensorBoard text), HTML, plain text and CSV."""
from __future__ import annotations

import csv
import html
import io
from typing import List, Optional, Sequence, Tuple

from ._allocation import _param_name
from ._rundata import RunData
from ._units import CostUnit, cost_unit, fmt_delta, format_number

Table = Tuple[List[str], List[List[str]]]


def _hist(result: dict) -> str:
    hist = sorted(((int(b), int(n)) for b, n in result.get("bits_histogram", {}).items()), reverse=True)
    return " ".join(f"{b}b:{n}" for b, n in hist)


def units_for(run: RunData, names: Sequence[str], runs: Sequence[RunData] = ()) -> dict:
    """One fitted display unit per cost, shared by every row of a table."""
    runs = list(runs) or [run]
    out = {}
    for name in names:
        values = [r["costs"][name] for x in runs for r in x.results if name in r.get("costs", {})]
        values += [b["costs"][name] for x in runs for b in x.baselines.values() if name in b.get("costs", {})]
        out[name] = cost_unit(name).fitted(values)
    return out


def trials_table(run: RunData, results: Sequence[dict], target: Optional[str] = None,
                 front: Optional[set] = None) -> Table:
    """Trials with their parameters, accuracy, every cost (target first) and allocation summary.

    ``front``: trial numbers to mark with ``●`` in a first column (None: no such column).
    """
    target = target or run.target
    names = [n for n in run.cost_names if n == target] + [n for n in run.cost_names if n != target]
    units = units_for(run, names)
    params = list(dict.fromkeys(k for r in results for k in r.get("params", {})))
    w8 = run.baselines.get("w8", {}).get("costs", {}).get(target)
    header = (["front"] if front is not None else []) + ["trial"] + [_param_name(p) for p in params] + \
        ["val acc (%)", "test acc (%)", units[target].label] + (["vs uniform w8"] if w8 else []) + \
        [units[n].label for n in names[1:]] + ["kept channels (%)", "mean bits", "weight bits (channels)"]
    rows = []
    for r in results:
        costs = r.get("costs", {})
        row = (["●" if r["trial"] in front else ""] if front is not None else []) + [str(r["trial"])]
        row += [format_number(r["params"][p], 3) if p in r.get("params", {}) else "" for p in params]
        row += [f"{r['val_acc']:.2f}", f"{r['test_acc']:.2f}", _cost(units[target], costs.get(target))]
        row += [fmt_delta(costs[target], w8)] if w8 else []
        row += [_cost(units[n], costs.get(n)) for n in names[1:]]
        row += [f"{100 * r.get('kept_fraction', 1.0):.1f}", f"{r.get('mean_bits', 0.0):.2f}", _hist(r)]
        rows.append(row)
    return header, rows


def baselines_table(run: RunData, target: Optional[str] = None) -> Table:
    target = target or run.target
    names = [n for n in run.cost_names if n == target] + [n for n in run.cost_names if n != target]
    units = units_for(run, names)
    header = ["network", "val acc (%)", "test acc (%)"] + [units[n].label for n in names]
    rows = []
    for name, b in run.baselines.items():
        label = "float (warm-up)" if name == "float" else f"uniform w{b.get('bits', name.lstrip('w'))}a{run.act_bits}"
        rows.append([label, f"{b['val_acc']:.2f}", f"{b['test_acc']:.2f}",
                     *[_cost(units[n], b.get("costs", {}).get(n)) for n in names]])
    return header, rows


def _cost(unit: CostUnit, value) -> str:
    return "—" if value is None else format_number(unit(value))


def markdown(table: Table) -> str:
    header, rows = table
    clean = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(clean, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(clean, row)) + " |" for row in rows]
    return "\n".join(lines)


def html_table(table: Table, numeric_from: int = 1) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{' class=num' if i >= numeric_from else ''}>{html.escape(str(c))}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_table(table: Table) -> str:
    header, rows = table
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    fmt = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(header)] + [fmt(row) for row in rows])


def pareto_csv(run: RunData, front: Sequence[dict], target: str) -> str:
    """The front as CSV: the tuner's columns (raw units) first, then the same costs in human units."""
    names = sorted({k for r in front for k in r["costs"]} | {target})
    units = units_for(run, names)
    params = [p for p in dict.fromkeys(k for r in front for k in r.get("params", {})) if p != "lambda"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "lambda", "val_acc", "test_acc", *[f"cost_{n}" for n in names], "kept_fraction",
                     "mean_bits", "bits_histogram", "target", *params, *[units[n].label for n in names]])
    for r in front:
        writer.writerow([r["trial"], r["params"].get("lambda"), f"{r['val_acc']:.4f}", f"{r['test_acc']:.4f}",
                         *[r["costs"].get(n) for n in names], f"{r.get('kept_fraction', 1.0):.4f}",
                         f"{r.get('mean_bits', 0.0):.4f}", _hist(r), target, *[r["params"].get(p) for p in params],
                         *[f"{units[n](r['costs'][n]):.6g}" if n in r["costs"] else "" for n in names]])
    return out.getvalue()
