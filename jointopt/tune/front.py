"""The Pareto front of trial results, and how it is printed and saved."""
from __future__ import annotations

import csv
import io
from typing import List, Mapping, Optional, Sequence

from .._format import format_number
from .._pareto import pareto_front
from ..cost import get_cost_model
from ..results import BaselineResult, TrialResult

__all__ = ["front_csv", "front_table", "pareto_front"]  # pareto_front: the one front, from jointopt._pareto


def _typed(results) -> List[TrialResult]:
    return [r if isinstance(r, TrialResult) else TrialResult.from_json(r) for r in results]


def _hist(result: TrialResult) -> str:
    return " ".join(f"{b}b:{n}" for b, n in sorted(result.bits_histogram.items(), reverse=True))


def front_table(front: Sequence[TrialResult], target: str,
                baselines: Optional[Mapping[str, BaselineResult]] = None) -> str:
    """A text table: one row per front point, plus the uniform baselines for comparison."""
    front = _typed(front)
    baselines = {name: b if isinstance(b, BaselineResult) else BaselineResult.from_json(name, b)
                 for name, b in (baselines or {}).items()}
    model = get_cost_model(target)
    w8 = baselines.get("w8")
    # the joint search's trials differ by λ; other methods' by their own parameters (keep, bits, ...)
    by_lambda = all("lambda" in r.params for r in front)
    shown = {r.trial: f"{r.params['lambda']:>8.3g}" if by_lambda else _params(r.params) for r in front}
    width = max([8] + [len(v) for v in shown.values()])
    lines = [f"{'trial':>5}  {'lambda' if by_lambda else 'params':>{width}}  {'val acc':>7}  {'test acc':>8}  "
             f"{target + ' (' + (model.display_unit or model.unit) + ')':>14}  {'vs w8':>7}  kept  weight bits (channels)"]
    for r in front:
        cost = r.costs[target]
        vs = f"{100 * (cost / w8.costs[target] - 1):+6.1f}%" if w8 and target in w8.costs else "   n/a"
        lines.append(f"{r.trial:>5}  {shown[r.trial]:>{width}}  {r.val_acc:>6.2f}%"
                     f"  {r.test_acc:>7.2f}%  {format_number(cost * model.display_scale):>14}  {vs:>7}"
                     f"  {100 * r.kept_fraction:3.0f}%  {_hist(r)}")
    if baselines:
        lines.append("baselines (uniform, activations 8 bit; float = the warm-up network):")
        for name, b in baselines.items():
            cost = b.costs.get(target)
            text = f"{format_number(cost * model.display_scale):>14}" if cost is not None else f"{'—':>14}"
            lines.append(f"{name:>5}  {'':>{width}}  {b.val_acc:>6.2f}%  {b.test_acc:>7.2f}%  {text}")
    return "\n".join(lines)


def _params(params: dict) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items() if v is not None)


def front_csv(front: Sequence[TrialResult], target: str) -> str:
    front = _typed(front)
    names = sorted({k for r in front for k in r.costs})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "lambda", "val_acc", "test_acc", *[f"cost_{n}" for n in names], "kept_fraction",
                     "mean_bits", "bits_histogram", "target"])
    for r in front:
        writer.writerow([r.trial, r.params.get("lambda"), f"{r.val_acc:.4f}", f"{r.test_acc:.4f}",
                         *[r.costs.get(n) for n in names], f"{r.kept_fraction:.4f}",
                         f"{r.mean_bits:.4f}", _hist(r), target])
    return out.getvalue()
