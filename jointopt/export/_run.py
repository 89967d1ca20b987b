"""Exporting points of a run directory's front: pick a trial, rebuild it, export it on validation data."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from ..errors import ExportError
from ._api import ExportOptions, ExportResult, export


def check_run(run) -> Path:
    """``run`` as a path, or :class:`~jointopt.tune.rundir.RunDirError` (an :class:`ExportError`)
    when it is not a run directory of ``jointopt search``."""
    from ..tune.rundir import RunDir

    return RunDir(run).check().path


def select_trial(run, max_cost: Optional[float] = None, min_accuracy: Optional[float] = None) -> Tuple[int, str]:
    """The front point to export, and why it was chosen.

    Args:
        run: the run directory.
        max_cost: upper bound on the target cost, in the target cost model's display unit
            (kB for ``memory``).
        min_accuracy: lower bound on the validation accuracy, in percent.

    With ``max_cost`` the most accurate point under it is chosen (and, with both, the most accurate
    one satisfying both); with ``min_accuracy`` alone the cheapest point reaching it.
    """
    from ..cost import get_cost_model

    if max_cost is None and min_accuracy is None:
        raise ExportError("choose a point: --trial N, --max-cost X or --min-accuracy A")
    from ..tune.rundir import RunDir

    summary = RunDir(run).front()
    target, front = summary.target, list(summary.front)
    if not front:
        raise ExportError(f"the front of {str(run)!r} is empty: no completed trial")
    model = get_cost_model(target)
    unit = model.display_unit or model.unit
    shown = lambda r: f"trial {r.trial}: {r.costs[target] * model.display_scale:.4g} {unit}, {r.val_acc:.2f} %"
    points = list(front)
    if max_cost is not None:
        # a bound typed as the table shows it (e.g. 5 kB) must admit a point costing exactly that
        points = [r for r in points if r.costs[target] * model.display_scale <= max_cost * (1 + 1e-9)]
        if not points:
            cheapest = min(front, key=lambda r: r.costs[target])
            raise ExportError(f"no point of the front has {target} <= {max_cost:g} {unit} (cheapest is {shown(cheapest)})")
    if min_accuracy is not None:
        points = [r for r in points if r.val_acc >= min_accuracy]
        if not points:
            best = max(front, key=lambda r: r.val_acc)
            limit = f" with {target} <= {max_cost:g} {unit}" if max_cost is not None else ""
            raise ExportError(f"no point of the front{limit} reaches {min_accuracy:g} % validation accuracy "
                              f"(most accurate is {shown(best)})")
    if max_cost is not None:
        chosen = max(points, key=lambda r: (r.val_acc, -r.costs[target]))
        why = f"most accurate point with {target} <= {max_cost:g} {unit}"
    else:
        chosen = min(points, key=lambda r: (r.costs[target], -r.val_acc))
        why = f"cheapest point with validation accuracy >= {min_accuracy:g} %"
    if max_cost is not None and min_accuracy is not None:
        why += f" and accuracy >= {min_accuracy:g} %"
    return chosen.trial, f"{why}: {shown(chosen)}"


def validation_batch(config, size: int):
    """A batch of the run's validation data, or None (with the reason) when the data cannot be loaded."""
    x, _, problem = _validation(config, size)
    return x, problem


def _validation(config, size: int):
    """(validation batch or None, the data set or None, why not)."""
    from ..tune.setup import load_dataset

    try:
        data = load_dataset(config)
    except (OSError, ValueError, KeyError) as exc:  # DataError is an OSError, ConfigError a ValueError
        return None, None, f"{type(exc).__name__}: {exc}"
    try:
        x, _ = next(iter(data.batches("val", size)))
        return x, data, None
    except StopIteration:
        return None, data, "the validation split is empty"


def export_trial(run, trial: int, out=None, options: Optional[ExportOptions] = None, batch_size: int = 256,
                 formats=None) -> Tuple[ExportResult, Optional[str]]:
    """Rebuild trial ``trial`` of ``run`` and export it (default into ``RUN/trials/N/export``).

    Verification uses the first ``batch_size`` validation samples of the run's data set; when the
    data cannot be loaded, a random normal batch (and the reason is returned as the second value).
    The preprocessing recorded in the files comes from the data set (or the run's ``dataset.json``).
    """
    from ..tune.rundir import RunDir
    from ..tune.trials import load_trial
    from .preprocessing import Preprocessing

    layout = RunDir(run).check()
    run = layout.path
    searchable, frozen, result = load_trial(run, trial)
    config = layout.config()
    batch, data, problem = _validation(config, batch_size)
    preprocessing = Preprocessing.from_dataset(data) if data is not None else Preprocessing.from_run(run)
    example = batch if batch is not None else tuple(result.input_shape or layout.dataset()["input_shape"])
    out = Path(out) if out is not None else layout.trial_dir(trial) / "export"
    metadata = {"run": str(run), "trial": trial, "model": config.model.name, "dataset": config.data.name,
                "target": config.cost.target, "val_acc": result.val_acc, "test_acc": result.test_acc,
                "costs": dict(result.costs), "params": dict(result.params)}
    exported = export(frozen, out, example, formats, reference=searchable, metadata=metadata, options=options,
                      input_name="validation" if batch is not None else None, preprocessing=preprocessing)
    return exported, problem
