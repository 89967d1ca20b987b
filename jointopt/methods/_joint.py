"""``joint``: the library's own method — one differentiable search over per-channel widths with 0 bits = pruned.

Motetti et al., "Joint Pruning and Channel-wise Mixed-Precision Quantization for Efficient Deep
Neural Networks", IEEE Trans. Computers 2024. Its knobs are the ``search`` and ``tuner`` sections;
λ comes from the study's sampler (by default the adaptive plan of :mod:`jointopt.tune.plan`).
"""
from __future__ import annotations

from typing import Any, Dict

from ._base import Method


def suggest_lambda(trial, study) -> float:
    """λ of ``trial``: ``--lambda`` if fixed, else from the tuner's range (or the plan's bounds), and why."""
    from ..tune.plan import BOUNDS

    cfg = study.config
    if study.fixed_lambda is not None:
        lam = trial.suggest_float("lambda", study.fixed_lambda, study.fixed_lambda)
    elif cfg.tuner.lambda_min is None:
        lam = trial.suggest_float("lambda", *BOUNDS, log=True)
    else:
        lam = trial.suggest_float("lambda", cfg.tuner.lambda_min, cfg.tuner.lambda_max, log=True)
    reason = getattr(study.sampler, "reasons", {}).get(trial.number)
    if reason:
        trial.set_user_attr("lambda_reason", reason)
    return lam


class JointMethod(Method):
    name = "joint"
    summary = "joint pruning + channel-wise mixed precision: one search, 0 bits = pruned (the default)"
    uses_lambda = True
    stops_early = True

    def suggest(self, trial, study) -> Dict[str, Any]:
        cfg = study.config
        lam = suggest_lambda(trial, study)
        lam2 = trial.suggest_float("lambda2", cfg.cost.second_lambda_min, cfg.cost.second_lambda_max, log=True) \
            if cfg.cost.second else 0.0
        decay = trial.suggest_float("temperature_decay", 0.01, 0.2, log=True) \
            if cfg.tuner.tune_temperature_decay else None
        return {"lambda": lam, "lambda2": lam2, "temperature_decay": decay}

    def run(self, runner, warm, params: Dict[str, Any]) -> dict:
        return runner.run(warm, params["lambda"], params.get("lambda2", 0.0), params.get("temperature_decay"))
