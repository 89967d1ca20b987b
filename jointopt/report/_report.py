"""``jointopt report RUN``: every figure, table and TensorBoard run, regenerated from the files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from ._rundata import RunData, load_run
from ._units import cost_unit

MAX_EMBEDDED = 40  # trials whose figures report.html inlines (the front first): keeps the page light


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote."""

    pareto_png: Path
    pareto_csv: Path
    html: Path
    allocations: List[Path] = field(default_factory=list)
    compare_png: Optional[Path] = None
    compare_csv: Optional[Path] = None
    tensorboard: List[str] = field(default_factory=list)
    front: List[dict] = field(default_factory=list)

    def paths(self) -> List[Path]:
        """Every file written, in the order the report lists them (``report.html`` last)."""
        extra = [p for p in (self.compare_png, self.compare_csv) if p is not None]
        return [self.pareto_png, self.pareto_csv, *extra, *self.allocations, self.html]


def write_report(run, target: Optional[str] = None, log_cost: bool = False, accuracy: str = "val",
                 compare: Sequence = (), labels: Optional[Sequence[str]] = None, out=None,
                 tensorboard: bool = True, min_accuracy: Optional[float] = None) -> ReportFiles:
    """Write ``pareto.png``, ``pareto.csv``, ``trials/<n>/allocation.png`` (+ ``allocation_evolution.png``),
    ``report.html`` and, with ``compare``, ``compare.png``/``compare.csv``; add the missing TensorBoard runs.

    Args:
        run: a run directory (or a loaded :class:`RunData`).
        target: the cost to plot (default: the study's target); every run must report it.
        log_cost: log-scale cost axis.
        accuracy: ``"val"`` or ``"test"`` on the accuracy axis (the front is always chosen on validation).
        compare: other run directories whose fronts are overlaid on ``compare.png``.
        labels: legend labels of ``[run, *compare]`` (default: folder name and target).
        out: where to write (default: the run directory itself).
        tensorboard: write TensorBoard runs that are missing under ``RUN/tb``.
        min_accuracy: start the figures' accuracy axis there (they say how many trials lie below).
    """
    from ._allocation import allocation_figure, allocation_title, evolution_figure
    from ._html import render_html
    from ._pareto import compare_figure, pareto_figure, run_labels
    from ._render import to_png, write_atomic
    from ._tables import pareto_csv

    run = run if isinstance(run, RunData) else load_run(run)
    target = target or run.target
    run.check_target(target)
    others = [c if isinstance(c, RunData) else load_run(c) for c in compare]
    for other in others:
        other.check_target(target)
    out = Path(out) if out is not None else run.path
    front = run.front(target)
    pareto = to_png(pareto_figure(run, target, log_cost, accuracy, min_accuracy))
    files = ReportFiles(out / "pareto.png", out / "pareto.csv", out / "report.html", front=front)
    write_atomic(files.pareto_png, pareto)
    write_atomic(files.pareto_csv, pareto_csv(run, front, target))

    on_front = {r["trial"] for r in front}
    embedded = []
    unit = cost_unit(target).fitted(r["costs"][target] for r in run.results)
    for result in sorted(run.results, key=lambda r: (r["trial"] not in on_front, r["trial"])):
        trial = result["trial"]
        title = allocation_title(result, unit, target)
        png = to_png(allocation_figure(result.get("allocation", []), title, run.weight_bits))
        write_atomic(out / "trials" / str(trial) / "allocation.png", png)
        files.allocations.append(out / "trials" / str(trial) / "allocation.png")
        evolution = evolution_figure(run.allocation_history(trial), run.metrics(trial), target,
                                     title=f"trial {trial}: allocation during the search",
                                     kept_epoch=run.kept_epoch(trial))
        evolution_png = to_png(evolution) if evolution is not None else None
        if evolution_png:
            write_atomic(out / "trials" / str(trial) / "allocation_evolution.png", evolution_png)
            files.allocations.append(out / "trials" / str(trial) / "allocation_evolution.png")
        if len(embedded) < MAX_EMBEDDED:
            embedded.append((result, title, png, evolution_png))

    compare_part = None
    if others:
        runs = [run, *others]
        names = list(labels) if labels else run_labels(runs)
        png = to_png(compare_figure(runs, target, log_cost, accuracy, names, min_accuracy))
        files.compare_png, files.compare_csv = out / "compare.png", out / "compare.csv"
        write_atomic(files.compare_png, png)
        write_atomic(files.compare_csv, _compare_csv(runs, names, target))
        compare_part = (png, list(zip(names[1:], others)))
    if tensorboard:
        from ._replay import write_tensorboard

        files.tensorboard = write_tensorboard(run, log_cost=log_cost)
    listed = [_relative(p, out) for p in files.paths()]
    from ..tune.rundir import CONFIG  # the run directory's layout has one home

    config_text = (run.path / CONFIG).read_text() if (run.path / CONFIG).exists() else ""
    write_atomic(files.html, render_html(run, target, pareto, front, embedded, compare_part, listed, config_text))
    return files


def _compare_csv(runs: Sequence[RunData], names: Sequence[str], target: str) -> str:
    """Every run's front in one table, with a ``run`` column first (columns: the union of the runs')."""
    import csv
    import io

    from ._tables import pareto_csv

    rows, columns = [], ["run"]
    for run, name in zip(runs, names):
        reader = csv.DictReader(io.StringIO(pareto_csv(run, run.front(target), target)))
        columns += [c for c in reader.fieldnames or [] if c not in columns]
        rows += [{"run": name, **row} for row in reader]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return str(path)
