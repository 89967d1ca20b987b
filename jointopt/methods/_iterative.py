"""``iterative``: gradual structured pruning with training between the steps (cubic schedule).

Zhu and Gupta, "To prune, or not to prune" (2017): the pruned share rises from 0 to its final value
``s_f`` along ``s(t) = s_f · (1 − (1 − t / T)³)``, fast at first and slowly at the end, pruning every
``prune_every`` steps while the network keeps training. Here the pruned units are channels (lowest
filter L1 norm of the current weights, per group or over all groups, never revived), the network
trains quantization-aware at a uniform width (``bits``, cycled over the trials) for the search
phase's steps, with ``T = ramp`` × those steps, and then fine-tunes as a joint trial does — the same
budget as a joint trial.

Trial ``n`` takes width ``bits[n mod len(bits)]`` and final keep share point ``n // len(bits)`` of an
even spread over ``keep``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import ConfigError
from ._common import finish, fix_bits, fix_gates, keep_masks, kept_fraction, l1_scores, prepare, searchable, train_hard
from ._magnitude import PruneOptions, PruneThenQuantize


@dataclass
class IterativeOptions(PruneOptions):
    """``ramp``: share of the search steps over which the pruned share rises; ``prune_every``: steps
    between pruning steps (0: a twentieth of the ramp)."""

    ramp: float = 0.75
    prune_every: int = 0

    def check(self, config) -> None:
        super().check(config)
        if not 0 < self.ramp <= 1:
            raise ConfigError(f"methods.iterative.ramp={self.ramp} must be in (0, 1]")
        if self.prune_every < 0:
            raise ConfigError("methods.iterative.prune_every must be >= 0 (0 = a twentieth of the ramp)")


def cubic(step: int, end: int, final: float) -> float:
    """Pruned share at ``step`` of a ramp that reaches ``final`` at step ``end``."""
    t = min(1.0, step / max(1, end))
    return final * (1.0 - (1.0 - t) ** 3)


class IterativeMethod(PruneThenQuantize):
    name = "iterative"
    summary = "gradual channel pruning while training (cubic schedule), uniform width, then fine-tune"
    Options = IterativeOptions

    def finetune_budget(self, config):
        return None  # the gradual phase takes the search's steps

    def run(self, runner, warm, params):
        started = time.time()
        seed = prepare(runner)
        runner.resume_state = None  # a retried trial prunes again from the start
        o = self.options(runner.config)
        net = searchable(runner, warm)
        fix_gates(net)
        fix_bits(net, int(params["bits"]))
        final = 1.0 - params["keep"]
        state = {"alive": None, "steps": 0, "end": None}

        def on_step(step: int, total: int) -> None:
            end = state["end"] = max(1, int(round(o.ramp * total)))
            every = o.prune_every or max(1, end // 20)
            if step > end or (step % every and step != end):
                return
            prune_to(net, 1.0 - cubic(step, end, final), o.scope, state)

        train_hard(runner, net, seed, on_step)
        prune_to(net, params["keep"], o.scope, state)  # the final share, whatever the rounding of the steps
        info = {"scope": o.scope, "pruning_steps": state["steps"], "ramp_steps": state["end"],
                "kept_channels": kept_fraction(state["alive"] or {})}
        return finish(runner, net, warm, params, started, seed, info=info)


def prune_to(net, keep: float, scope: str, state: dict) -> None:
    masks = keep_masks(l1_scores(net), keep, scope, state["alive"])
    fix_gates(net, masks)
    state["alive"] = masks
    state["steps"] += 1
