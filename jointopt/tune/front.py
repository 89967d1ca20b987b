"""The Pareto front of trial results, and how it is printed and saved."""
from __future__ import annotations

import csv
import io
from typing import Dict, List, Optional

from ..cost import get_cost_model


def pareto_front(results: List[dict], target: str) -> List[dict]:
    """Results not dominated in (higher validation accuracy, lower target cost), sorted by cost."""
    front = []
    for r in results:
        dominated = any(
            o is not r and o["val_acc"] >= r["val_acc"] and o["costs"][target] <= r["costs"][target]
            and (o["val_acc"] > r["val_acc"] or o["costs"][target] < r["costs"][target])
            for o in results
        )
        if not dominated:
            front.append(r)
    unique = {}
    for r in sorted(front, key=lambda r: (r["costs"][target], -r["val_acc"], r["trial"])):
        unique.setdefault((r["costs"][target], r["val_acc"]), r)
    return list(unique.values())


def _hist(result: dict) -> str:
    return " ".join(f"{b}b:{n}" for b, n in sorted(((int(b), n) for b, n in result["bits_histogram"].items()),
                                                   reverse=True))


def front_table(front: List[dict], target: str, baselines: Optional[Dict[str, dict]] = None) -> str:
    """A text table: one row per front point, plus the uniform baselines for comparison."""
    model = get_cost_model(target)
    w8 = (baselines or {}).get("w8")
    # the joint search's trials differ by λ; other methods' by their own parameters (keep, bits, ...)
    by_lambda = all("lambda" in r["params"] for r in front)
    shown = {r["trial"]: f"{r['params']['lambda']:>8.3g}" if by_lambda else _params(r["params"]) for r in front}
    width = max([8] + [len(v) for v in shown.values()])
    lines = [f"{'trial':>5}  {'lambda' if by_lambda else 'params':>{width}}  {'val acc':>7}  {'test acc':>8}  "
             f"{target + ' (' + (model.display_unit or model.unit) + ')':>14}  {'vs w8':>7}  kept  weight bits (channels)"]
    for r in front:
        cost = r["costs"][target]
        vs = f"{100 * (cost / w8['costs'][target] - 1):+6.1f}%" if w8 else "   n/a"
        lines.append(f"{r['trial']:>5}  {shown[r['trial']]:>{width}}  {r['val_acc']:>6.2f}%"
                     f"  {r['test_acc']:>7.2f}%  {cost * model.display_scale:>14.4g}  {vs:>7}"
                     f"  {100 * r.get('kept_fraction', 1):3.0f}%  {_hist(r)}")
    if baselines:
        lines.append("baselines (uniform, activations 8 bit; float = the warm-up network):")
        for name, b in baselines.items():
            cost = b["costs"].get(target)
            text = f"{cost * model.display_scale:>14.4g}" if cost is not None else f"{'—':>14}"
            lines.append(f"{name:>5}  {'':>{width}}  {b['val_acc']:>6.2f}%  {b['test_acc']:>7.2f}%  {text}")
    return "\n".join(lines)


def _params(params: dict) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items() if v is not None)


def front_csv(front: List[dict], target: str) -> str:
    names = sorted({k for r in front for k in r["costs"]})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "lambda", "val_acc", "test_acc", *[f"cost_{n}" for n in names], "kept_fraction",
                     "mean_bits", "bits_histogram", "target"])
    for r in front:
        writer.writerow([r["trial"], r["params"].get("lambda"), f"{r['val_acc']:.4f}", f"{r['test_acc']:.4f}",
                         *[r["costs"].get(n) for n in names], f"{r.get('kept_fraction', 1):.4f}",
                         f"{r.get('mean_bits', 0):.4f}", _hist(r), target])
    return out.getvalue()
