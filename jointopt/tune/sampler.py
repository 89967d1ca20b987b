"""A deterministic sampler that spreads each parameter evenly over its range.

For the one-dimensional problem of choosing λ (plus, optionally, one or two more strengths), an even
spread traces the front better than random draws with few trials. Trial ``n`` takes the ``n``-th
point of a van der Corput sequence (base 2 for the first parameter, 3 and 5 for the next), shifted
by a seed-dependent offset (a Cranley–Patterson rotation), on the log scale for log parameters. The
point depends only on the trial's place in the plan (its number, less the retries before it:
:func:`jointopt.tune.plan.plan_index`) and the seed, so several workers never need to coordinate, the
same seed gives the same parameters, and a resumed study runs the points it would have run.
"""
from __future__ import annotations

import math
import random

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

_BASES = (2, 3, 5, 7, 11)


def van_der_corput(n: int, base: int) -> float:
    value, denom = 0.0, 1.0
    while n:
        n, digit = divmod(n, base)
        denom *= base
        value += digit / denom
    return value


class SpreadSampler(optuna.samplers.BaseSampler):
    def __init__(self, seed: int = 0):
        self.seed = seed
        self._order: dict = {}

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, distribution):
        index = self._order.setdefault(param_name, len(self._order))
        base = _BASES[index % len(_BASES)]
        offset = random.Random(f"{self.seed}:{param_name}").random()
        from .plan import plan_index  # the trial's place in the plan: retries do not shift later trials

        u = (van_der_corput(plan_index(study.get_trials(deepcopy=False), trial.number) + 1, base) + offset) % 1.0
        if isinstance(distribution, FloatDistribution):
            lo, hi = distribution.low, distribution.high
            if distribution.log:
                return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
            return lo + u * (hi - lo)
        if isinstance(distribution, IntDistribution):
            return int(distribution.low + min(int(u * (distribution.high - distribution.low + 1)),
                                              distribution.high - distribution.low))
        return distribution.choices[int(u * len(distribution.choices)) % len(distribution.choices)]


class FrontSampler(optuna.samplers.BaseSampler):
    """Chooses λ from the trials so far (:mod:`jointopt.tune.plan`); other parameters are spread.

    The study calls :meth:`set_targets` once the baselines are known; until then (and for every
    parameter but ``lambda``) it behaves like :class:`SpreadSampler`.
    """

    def __init__(self, seed: int = 0):
        self.spread = SpreadSampler(seed)
        self.reference: float | None = None
        self.targets = None
        self.reasons: dict = {}

    def set_targets(self, reference_cost: float, targets) -> None:
        self.reference, self.targets = float(reference_cost), targets

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, distribution):
        if param_name != "lambda" or self.targets is None:
            return self.spread.sample_independent(study, trial, param_name, distribution)
        from .plan import next_lambda

        points = plan_points(study, self.reference, self.targets, exclude=trial.number)
        lam, reason = next_lambda(points, self.targets, (distribution.low, distribution.high))
        self.reasons[trial.number] = reason
        return min(max(lam, distribution.low), distribution.high)


def plan_points(study, reference: float, targets, exclude: int | None = None) -> list:
    """The study's trials as :class:`jointopt.tune.plan.Point` s (failed ones count as collapsed)."""
    from optuna.trial import TrialState

    from .plan import Point

    points = []
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        lam = t.params.get("lambda")
        if lam is None or t.number == exclude:
            continue
        if t.state == TrialState.COMPLETE and t.values:
            points.append(Point(lam, t.values[1] / reference, t.values[0]))
        elif t.state == TrialState.RUNNING:
            points.append(Point(lam))
        elif t.state == TrialState.FAIL and t.number not in retried:
            points.append(Point(lam, 0.0, targets.chance_acc))
    return points
