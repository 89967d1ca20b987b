"""``sequential``: a pruning-only search, then a channel-wise bit-width search without the 0-bit choice.

The published sequential baseline of the joint search (PIT channel pruning, then MixPrec
channel-wise mixed precision; Motetti et al. 2024, their sequential baseline): the first search trains only the
keep gates (every weight at the widest width) with ``λ_prune · cost / reference``; its argmax
channels are fixed; the second search trains only the per-channel width selectors (no channel can be
pruned any more) with ``λ_bits · cost / reference``; then the usual fine-tune. Both searches use the
``search`` section's schedule, so a trial costs one search more than a joint trial (``wall time``
in the benchmark shows it). The front is traced over both strengths: trial ``n`` takes point ``n``
of a two-dimensional Halton spread over ``lambda_prune`` × ``lambda_bits`` (log scale).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List

import torch

from ._base import Method, fixed, spread, trial_index
from ._common import finish, fix_bits, fix_gates, prepare, searchable


@dataclass
class SequentialOptions:
    """Ranges of the two strengths (log-spread over the trials)."""

    lambda_prune: List[float] = field(default_factory=lambda: [0.25, 8.0])
    lambda_bits: List[float] = field(default_factory=lambda: [0.25, 8.0])

    def check(self, config) -> None:
        for key in ("lambda_prune", "lambda_bits"):
            value = getattr(self, key)
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                from ..errors import ConfigError

                raise ConfigError(f"methods.sequential.{key}={value} must be [low, high] with 0 < low <= high")


class SequentialMethod(Method):
    name = "sequential"
    summary = "pruning-only search (λ_prune), freeze, then channel-wise bit search without 0 bits (λ_bits)"
    Options = SequentialOptions

    def suggest(self, trial, study):
        o = self.options(study.config)
        i = trial_index(trial)
        return {"lambda_prune": fixed(trial, "lambda_prune", spread(i, *o.lambda_prune, log=True, base=2)),
                "lambda_bits": fixed(trial, "lambda_bits", spread(i, *o.lambda_bits, log=True, base=3))}

    def run(self, runner, warm, params):
        started = time.time()
        seed = prepare(runner)
        runner.resume_state = None  # a retried trial searches again
        cfg = runner.config
        net = searchable(runner, warm)
        # 1. pruning only: widths fixed at the widest, keep gates trained
        fix_bits(net, max(cfg.space.weight_bits))
        runner.search(net, params["lambda_prune"], 0.0, cfg.search.temperature_decay, seed)
        prune_report = dict(getattr(runner, "freeze_report", {}))
        masks = {gid: gate.hard_mask().cpu() for gid, gate in net.gates.items() if gate.prunable}
        fix_gates(net, masks)
        # 2. widths only: the selectors start again from the widest width; no channel can be pruned
        from ..nn.selectors import init_bit_logits

        for _, layer in net.searchable_layers():
            with torch.no_grad():
                layer.bit_logits.copy_(init_bit_logits(*layer.bit_logits.shape).to(layer.bit_logits))
            layer.bit_logits.requires_grad_(True)
        net.temperature = cfg.search.temperature
        runner.search(net, params["lambda_bits"], 0.0, cfg.search.temperature_decay, seed + 1)
        kept = sum(int(m.sum()) for m in masks.values()) / max(1, sum(m.numel() for m in masks.values()))
        info = {**getattr(runner, "freeze_report", {}), "prune_search": prune_report, "kept_after_prune_search": kept}
        return finish(runner, net, warm, params, started, seed, info=info)
