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
    """The ``n``-th point of the van der Corput sequence in ``base``: ``n``'s digits mirrored behind the point.

    Each new point falls into the largest gap left by the ones before it (base 2: 0, 1/2, 1/4, 3/4,
    1/8, ...), so any first ``k`` points cover [0, 1) about evenly.
    """
    value, denom = 0.0, 1.0
    while n:
        n, digit = divmod(n, base)
        denom *= base
        value += digit / denom
    return value


class SpreadSampler(optuna.samplers.BaseSampler):
    """An Optuna sampler that spreads every parameter evenly over its range (``tuner.sampler: spread``).

    Trial ``n`` gets, for its ``i``-th parameter, point ``n + 1`` of the van der Corput sequence in the
    ``i``-th prime base, rotated by an offset drawn from ``seed`` and the parameter's name; log-scale
    parameters are spread on the log scale, integers and choices in equal bins. ``n`` is the trial's
    place in the plan (:func:`jointopt.tune.plan.plan_index`), so a retried trial gets the λ it would
    have had and does not shift the trials after it.

    Unlike Optuna's ``QMCSampler`` it keeps no counter in the storage: every worker and every resume
    computes the same point for the same trial, and the first trial is not drawn at random.

    Args:
        seed: the study's seed; the same seed gives the same parameters.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._order: dict = {}

    def infer_relative_search_space(self, study, trial):
        """None: each parameter is sampled on its own (:meth:`sample_independent`)."""
        return {}

    def sample_relative(self, study, trial, search_space):
        """Nothing (no joint search space)."""
        return {}

    def sample_independent(self, study, trial, param_name, distribution):
        """The trial's point of the sequence for ``param_name``, mapped into ``distribution``."""
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
        """Start planning λ from the trials so far (the study calls it once the baselines are known).

        Args:
            reference_cost: the cost that normalises the trials' costs (the study's reference network).
            targets: a :class:`jointopt.tune.plan.Targets`: the best and the worst uniform network's
                accuracy and chance accuracy, which say when a trial saturated or collapsed.
        """
        self.reference, self.targets = float(reference_cost), targets

    def infer_relative_search_space(self, study, trial):
        """None: each parameter is sampled on its own (:meth:`sample_independent`)."""
        return {}

    def sample_relative(self, study, trial, search_space):
        """Nothing (no joint search space)."""
        return {}

    def sample_independent(self, study, trial, param_name, distribution):
        """λ from :func:`jointopt.tune.plan.next_lambda` (the reason kept in :attr:`reasons`), clipped to
        ``distribution``; before :meth:`set_targets` and for other parameters, the spread point."""
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


def make_sampler(config):
    """The Optuna sampler ``tuner.sampler`` names (``auto``: adaptive without ``lambda_min``, else spread)."""
    seed, kind = config.seed, config.tuner.sampler
    if kind == "auto":
        kind = "adaptive" if config.tuner.lambda_min is None else "spread"
    if kind == "adaptive":
        return FrontSampler(seed)
    if kind == "spread":
        return SpreadSampler(seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, config.tuner.trials // 2)))
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)
