"""The one Pareto front of trial results, shared by the tuner (``front.json``) and the report.

The report may plot a cost other than the study's target, and select on test instead of
validation accuracy, so the front takes both as arguments. Optuna's ``study.best_trials`` is the
study's own front over its objective values and stays Optuna's.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple


def pareto_front(results: Sequence[Mapping], target: str, accuracy: str = "val_acc") -> List[Mapping]:
    """The results not dominated in (higher ``accuracy``, lower ``target`` cost), sorted by cost.

    A result is dominated when another is at least as accurate and at most as costly, and better
    in one of the two. Results without a ``target`` cost are left out; of results with the same
    (cost, accuracy), the one with the lowest trial number stands for all.

    Args:
        results: trial results (dicts or typed records read like them): ``trial``, ``costs``
            (name → raw cost) and ``accuracy``.
        target: the cost to minimise.
        accuracy: the accuracy to maximise (``val_acc`` or ``test_acc``).

    Example::

        >>> rs = [{"trial": 0, "val_acc": 90.0, "costs": {"memory": 10.0}},
        ...       {"trial": 1, "val_acc": 80.0, "costs": {"memory": 20.0}},   # dominated by 0
        ...       {"trial": 2, "val_acc": 70.0, "costs": {"memory": 5.0}}]
        >>> [r["trial"] for r in pareto_front(rs, "memory")]
        [2, 0]
    """
    points = [(r, float(r["costs"][target]), float(r[accuracy])) for r in results if target in r.get("costs", {})]
    front = [(r, c, a) for r, c, a in points
             if not any(oa >= a and oc <= c and (oa > a or oc < c) for _, oc, oa in points)]
    unique: Dict[Tuple[float, float], Mapping] = {}
    for r, c, a in sorted(front, key=lambda p: (p[1], -p[2], p[0]["trial"])):
        unique.setdefault((c, a), r)
    return list(unique.values())
