"""Rebuild TensorBoard runs offline from a run directory's files (e.g. after ``--no-tensorboard``).

The files are replayed as the events the search would have sent, through the same listener, so
the tags are the ones a live study writes. What was never written to disk cannot come back: the
warm-up's epochs (no metrics file), and the per-epoch allocation when ``allocation.jsonl`` is
absent (the evolution figure then shows the whole-network curves only).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, NamedTuple, Optional

from ._rundata import RunData, load_run
from ._tensorboard import TB_DIR, TensorBoardListener


class ReplayedEvent(NamedTuple):
    kind: str
    trial: Optional[int] = None
    phase: Optional[str] = None
    epoch: Optional[int] = None
    data: dict = {}
    time: Optional[float] = None
    baseline: Optional[str] = None


def has_events(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("events.out.tfevents.*"))


def write_tensorboard(run, log_cost: bool = False) -> List[str]:
    """Write the TensorBoard runs of ``run`` that are missing; returns the names of those written."""
    run = run if isinstance(run, RunData) else load_run(run)
    root = run.path / TB_DIR
    listener = TensorBoardListener(run.path, log_cost=log_cost, record_allocation=False, study=False,
                                   weight_bits=run.weight_bits)
    written = []
    for result in run.results:
        trial = result["trial"]
        if has_events(root / f"trial_{trial}"):
            continue
        emit = lambda kind, **kw: listener(ReplayedEvent(kind, trial, **kw))  # noqa: E731
        emit("trial_start", data={"params": result.get("params", {})})
        history = run.allocation_history(trial)
        emit("phase_start", phase="search", data={"epochs": len(history) or 1})
        allocations = {h["epoch"]: h["layers"] for h in history}
        for row in run.metrics(trial):
            if row.get("phase") == "freeze":  # the end of the search, not an epoch: result.json has it too
                continue
            _epoch(listener, trial, row)
            if row.get("phase") == "search" and row.get("epoch") in allocations:
                emit("allocation", phase="search", epoch=row["epoch"], data={"layers": allocations[row["epoch"]]})
        kept = run.kept_epoch(trial)
        if kept is not None:
            emit("phase_end", phase="search", data={"best_epoch": kept})
        emit("trial_end", data={"result": result})
        written.append(f"trial_{trial}")
    for name, base in run.baselines.items():
        folder = "warmup" if name == "float" else f"baseline_{name}"
        if has_events(root / folder):
            continue
        if name != "float":
            for row in run.baseline_metrics(name):
                _epoch(listener, None, row, baseline=name)
        listener(ReplayedEvent("baseline", data={"name": name, **base.to_json()}))
        written.append(folder)
    listener.close()
    if not has_events(root / "study"):
        listener.write_study_header(run.config, force=True)
        listener.refresh_study(force=True)
        written.append("study")
    return written


def _epoch(listener: TensorBoardListener, trial: Optional[int], row: dict, baseline: Optional[str] = None) -> None:
    data = {k: v for k, v in row.items() if k not in ("phase", "epoch", "time")}
    listener(ReplayedEvent("epoch", trial, row.get("phase"), row.get("epoch"), data, row.get("time"), baseline))
