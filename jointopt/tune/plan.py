"""Where to put the next λ: a range that follows from the data, not from a hand-set interval.

How strongly the cost must weigh for a model to compress depends on the model, the data and the
cost model: on one network λ = 0.5 already halves the size, on another everything below λ = 4 stays
at the widest width. So instead of a fixed ``[lambda_min, lambda_max]``, the study *probes*: the
first trials find the range, the later ones fill the front. Every trial counts; none is a throw-away
probe. The rule, given the trials so far (finished ones with their cost relative to the widest
unpruned network and their validation accuracy, running ones with only their λ):

1. The first trial uses λ = 1: the regulariser is normalised by the reference cost, so λ = 1 puts
   one nat of cross-entropy against the whole network's cost.
2. **Extend left** (λ / 4) while the smallest λ is not yet *saturated*: its accuracy is more than
   ``tolerance`` below the best uniform or float network, and the last step left still bought
   accuracy (more cost for the same accuracy is not worth another trial).
3. **Extend right** (λ · 4) while the largest λ has not *collapsed* (lost a quarter of the best
   network's margin over chance) and its cost is still falling.
4. Otherwise **fill the widest gap** between neighbouring λ: the one whose rectangle in the plane
   of the front is largest, cost ratio wide × *relative error* high (the log of the ratio of the two
   error rates, at least ``tolerance`` points' worth). Error rates, not accuracy points, because a
   user feels 90 → 89 % as much as 99 → 98.9 %; so the top of the front, where networks a user would
   ship lie, is filled before the steep region where accuracy falls away. Accuracies below the
   *useful floor* count as on it: the collapse line, or, when the uniform networks are known, as far
   below the least accurate of them as that is below the best (a pair entirely below the floor is
   never filled). The new λ is the geometric mean of the two. A running trial counts as a point
   whose cost and accuracy are interpolated from its finished neighbours, so parallel workers
   spread out.

Given the same finished trials the next λ is the same, so a resumed study continues its plan.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

START = 1.0
FACTOR = 4.0
BOUNDS = (1e-4, 1e4)  # λ outside this range means the cost model or the data is broken, not the plan
PLATEAU = 0.1  # relative cost change below which λ is not worth extending further


@dataclass(frozen=True)
class Point:
    """One trial as the plan sees it: λ, and (once finished) cost / reference cost and validation accuracy."""

    lam: float
    cost: Optional[float] = None
    acc: Optional[float] = None

    @property
    def done(self) -> bool:
        return self.cost is not None and self.acc is not None


@dataclass(frozen=True)
class Targets:
    """What "saturated" and "collapsed" mean for this study (accuracies in %)."""

    best_acc: float  # the best uniform or float network's validation accuracy
    chance_acc: float  # 100 / number of classes
    tolerance: float = 0.25  # accuracy points that count as "the same" (at least one validation sample)
    worst_uniform_acc: Optional[float] = None  # the least accurate uniform network, when known

    @property
    def collapse_acc(self) -> float:
        return self.best_acc - 0.25 * (self.best_acc - self.chance_acc)

    @property
    def floor_acc(self) -> float:
        """Below this, accuracy no longer matters for which gap is filled (see the module docstring)."""
        if self.worst_uniform_acc is None:
            return self.collapse_acc
        return max(self.collapse_acc, self.best_acc - 2.0 * (self.best_acc - self.worst_uniform_acc))


def next_lambda(points: Sequence[Point], targets: Targets, bounds: Tuple[float, float] = BOUNDS) -> Tuple[float, str]:
    """The next λ within ``bounds`` and why (one line, for the log)."""
    if not points:
        return min(max(START, bounds[0]), bounds[1]), "start"
    pts = sorted(points, key=lambda p: p.lam)
    left, right = pts[0], pts[-1]
    lams = [p.lam for p in pts]
    lo, hi = bounds
    if left.done and _open_left(pts, targets) and left.lam > lo * 1.01:
        lam = max(left.lam / FACTOR, lo)
        return _fresh(lam, lams), f"extend left: λ={left.lam:.3g} is not yet as accurate as the uniform networks"
    if right.done and _open_right(pts, targets) and right.lam < hi / 1.01:
        return _fresh(min(right.lam * FACTOR, hi), lams), f"extend right: λ={right.lam:.3g} has not collapsed yet"
    estimated = _estimate(pts)
    floor = targets.floor_acc
    best, where = 0.0, None
    for (la, ca, aa), (lb, cb, ab) in zip(estimated, estimated[1:]):
        if aa < floor and ab < floor:
            continue  # both below the floor: nothing a user wants lies between them
        ea, eb = (max(100.0 - max(a, floor), targets.tolerance) for a in (aa, ab))
        rise = max(abs(math.log(ea / eb)), math.log1p(targets.tolerance / min(ea, eb)))
        area = abs(ca - cb) * rise
        if area > best and lb / la > 1.05:
            best, where = area, (la, lb)
    if where is None:  # no gap worth filling: widen a side that has room, else halve the widest λ gap
        if left.lam > lo * 1.01:
            return _fresh(max(left.lam / FACTOR, lo), lams), "every gap is filled; widening the range to the left"
        if right.lam < hi / 1.01:
            return _fresh(min(right.lam * FACTOR, hi), lams), "every gap is filled; widening the range to the right"
        pairs = list(zip(lams, lams[1:])) or [(lo, hi)]
        where = max(pairs, key=lambda ab: ab[1] / ab[0])
    lam = math.sqrt(where[0] * where[1])
    return _fresh(lam, lams), f"fill the widest gap of the front, between λ={where[0]:.3g} and λ={where[1]:.3g}"


def _open_left(pts: List[Point], targets: Targets) -> bool:
    left = pts[0]
    if left.acc >= targets.best_acc - targets.tolerance or left.cost >= 0.97:
        return False
    nxt = next((p for p in pts[1:] if p.done), None)
    return nxt is None or left.acc > nxt.acc + targets.tolerance


def _open_right(pts: List[Point], targets: Targets) -> bool:
    right = pts[-1]
    if right.acc < targets.collapse_acc or right.cost < 0.005:
        return False
    prev = next((p for p in reversed(pts[:-1]) if p.done), None)
    return prev is None or right.cost < prev.cost * (1 - PLATEAU) or right.acc < prev.acc - targets.tolerance


def _estimate(pts: List[Point]) -> List[Tuple[float, float, float]]:
    """(λ, cost, accuracy) for every point; running ones interpolated in log λ between finished neighbours."""
    done = [p for p in pts if p.done]
    out = []
    for p in pts:
        if p.done:
            out.append((p.lam, p.cost, p.acc))
            continue
        lower = [d for d in done if d.lam <= p.lam]
        upper = [d for d in done if d.lam >= p.lam]
        if not lower and not upper:
            out.append((p.lam, 1.0, 100.0))
        elif not lower or not upper:
            d = (lower or upper)[-1 if lower else 0]
            out.append((p.lam, d.cost, d.acc))
        else:
            a, b = lower[-1], upper[0]
            t = 0.0 if b.lam == a.lam else math.log(p.lam / a.lam) / math.log(b.lam / a.lam)
            cost = math.exp(math.log(max(a.cost, 1e-9)) * (1 - t) + math.log(max(b.cost, 1e-9)) * t)
            out.append((p.lam, cost, a.acc * (1 - t) + b.acc * t))
    return out


def _fresh(lam: float, taken: Sequence[float]) -> float:
    """``lam``, nudged if a trial already has (almost) this λ."""
    while any(abs(math.log(lam / t)) < 0.01 for t in taken):
        lam *= 1.05
    return lam


def plan_index(trials: Sequence, number: int) -> int:
    """Trial ``number``'s place in the study's plan, from the study's ``trials`` (Optuna frozen trials).

    A retry (user attribute ``retry_of``: a trial interrupted by Ctrl-C, a full disk or a killed worker,
    queued again by ``--resume``) takes the place of the trial it retries; any other trial takes the
    next place: the number of trials before it that are not retries. So the spread of λ and every
    trial's seed follow the plan, not trial numbers, and a resumed study runs each planned λ once,
    with its own seed, as the study without the interruption would have.
    """
    attrs = {t.number: t.user_attrs for t in trials}
    seen = set()
    while attrs.get(number, {}).get("retry_of") is not None and number not in seen:
        seen.add(number)
        number = int(attrs[number]["retry_of"])
    return sum(1 for n, a in attrs.items() if n < number and a.get("retry_of") is None)
