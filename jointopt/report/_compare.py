"""Several studies' fronts in one table: the text ``jointopt report RUN --compare RUN2 ...`` prints.

One block of rows per run (its label, method and front points), and per run the hypervolume of its
front in the plane (cost / cost of that run's uniform w8 network, validation accuracy / 100) up to
the reference point (1.1, 0) — the measure ``benchmarks/front.py`` and ``benchmarks/methods.py`` use.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ._rundata import RunData
from ._units import fmt_delta, format_number
from ._tables import Table, units_for

HV_REFERENCE = (1.1, 0.0)


def hypervolume(points: Sequence[Tuple[float, float]], reference: Tuple[float, float] = HV_REFERENCE) -> float:
    """Area dominated by ``(cost, accuracy)`` points (cost minimised, accuracy maximised) up to ``reference``."""
    ref_cost, ref_acc = reference
    pts = sorted((c, a) for c, a in points if c < ref_cost and a > ref_acc)
    area, best = 0.0, ref_acc
    for i, (c, a) in enumerate(pts):
        best = max(best, a)
        right = pts[i + 1][0] if i + 1 < len(pts) else ref_cost
        area += (right - c) * (best - ref_acc)
    return area


def run_hypervolume(run: RunData, target: str, key: str = "val_acc") -> Optional[float]:
    """Hypervolume of ``run``'s trials (see the module docstring); None without a w8 baseline."""
    w8 = run.baselines.get("w8", {}).get("costs", {}).get(target)
    if not w8:
        return None
    return hypervolume([(r["costs"][target] / w8, r[key] / 100.0) for r in run.results if target in r.get("costs", {})])


def params_text(params: dict) -> str:
    return " ".join(f"{'λ' if k == 'lambda' else k}={format_number(v, 3)}" if isinstance(v, (int, float)) else f"{k}={v}"
                    for k, v in params.items() if v is not None and not (k == "lambda2" and v == 0.0))


def compare_table(runs: Sequence[RunData], names: Sequence[str], target: str) -> Table:
    """Every run's front (selected on validation), run by run, with the method and its parameters."""
    unit = units_for(runs[0], [target], runs)[target]
    header = ["run", "method", "trial", "parameters", "val acc (%)", "test acc (%)", unit.label, "vs its uniform w8",
              "kept channels (%)", "mean bits"]
    rows: List[List[str]] = []
    for run, name in zip(runs, names):
        w8 = run.baselines.get("w8", {}).get("costs", {}).get(target)
        for r in run.front(target):
            cost = r["costs"][target]
            rows.append([name, r.get("method") or run.method, str(r["trial"]), params_text(r.get("params", {})),
                         f"{r['val_acc']:.2f}", f"{r['test_acc']:.2f}", format_number(unit(cost)),
                         fmt_delta(cost, w8) if w8 else "", f"{100 * r.get('kept_fraction', 1.0):.1f}",
                         f"{r.get('mean_bits', 0.0):.2f}"])
    return header, rows


def summary_table(runs: Sequence[RunData], names: Sequence[str], target: str) -> Table:
    """Per run: method, trials, front points, hypervolume on validation and on test."""
    header = ["run", "method", "trials", "front points", "hypervolume (val)", "hypervolume (test)"]
    rows = []
    for run, name in zip(runs, names):
        hv_val, hv_test = run_hypervolume(run, target), run_hypervolume(run, target, "test_acc")
        rows.append([name, run.method, str(len(run.results)), str(len(run.front(target))),
                     "" if hv_val is None else f"{hv_val:.4f}", "" if hv_test is None else f"{hv_test:.4f}"])
    return header, rows
