"""``magnitude``: prune by weight magnitude to a target ratio, then quantize every weight to one width.

Structured (``structure: filters``, the default): the channels of every channel group are ranked by
the L1 norm of their filters (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017;
producers of a residual add summed, each divided by its mean) and the lowest are pruned — the same
share in every group (``scope: layer``) or one threshold over all groups (``scope: global``). The
pruned network is quantized to a uniform width and fine-tuned for the search's and the fine-tune's
epochs (what a uniform baseline gets).

Unstructured (``structure: weights``): the smallest weights of every layer (or, with ``scope:
global``, below one threshold on weights divided by their layer's mean magnitude) are set to zero
and held there during the fine-tune. Reported honestly: no channel disappears, so the frozen
network — and every built-in cost model, which count dense storage — is as large as the uniform
network of that width. ``result.json`` → ``search`` gives the sparsity and the bits of the non-zero
weights alone (a lower bound for a sparse format, which would also store their positions).

Trial ``n`` takes width ``bits[n mod len(bits)]`` and keep share point ``n // len(bits)`` of an even
spread over ``keep``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import torch

from ..errors import ConfigError
from ._base import Method, fixed, spread, trial_index
from ._common import fix_bits, fix_gates, keep_masks, kept_fraction, l1_scores

SCOPES = ("layer", "global")
STRUCTURES = ("filters", "weights")


@dataclass
class PruneOptions:
    """``keep``: [low, high] share of channels (or weights) kept, spread over the trials; ``bits``: the
    uniform widths after pruning (cycled over the trials); ``scope``: ``layer`` or ``global``."""

    keep: List[float] = field(default_factory=lambda: [0.25, 1.0])
    bits: List[int] = field(default_factory=lambda: [8, 4])
    scope: str = "layer"

    def check(self, config) -> None:
        name = type(self).__name__.replace("Options", "").lower()
        if len(self.keep) != 2 or not 0 < self.keep[0] <= self.keep[1] <= 1:
            raise ConfigError(f"methods.{name}.keep={self.keep} must be [low, high] with 0 < low <= high <= 1")
        allowed = [b for b in config.space.weight_bits if b > 0]
        if not self.bits or any(b not in allowed for b in self.bits):
            raise ConfigError(f"methods.{name}.bits={self.bits}: every width must be one of the search space's "
                              f"{allowed}; add it to space.weight_bits")
        if self.scope not in SCOPES:
            raise ConfigError(f"methods.{name}.scope={self.scope!r}; choose {' or '.join(SCOPES)}")


@dataclass
class MagnitudeOptions(PruneOptions):
    structure: str = "filters"

    def check(self, config) -> None:
        super().check(config)
        if self.structure not in STRUCTURES:
            raise ConfigError(f"methods.magnitude.structure={self.structure!r}; choose {' or '.join(STRUCTURES)}")


class PruneThenQuantize(Method):
    """Score channels, keep the best share, quantize uniformly, fine-tune. Subclasses define :meth:`scores`."""

    def suggest(self, trial, study):
        o = self.options(study.config)
        i = trial_index(trial)
        bits = int(o.bits[i % len(o.bits)])
        keep = spread(i // len(o.bits), o.keep[0], o.keep[1])
        return {"keep": fixed(trial, "keep", round(keep, 4)), "bits": fixed(trial, "bits", bits)}

    def scores(self, net, seed: int) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def allocate(self, runner, net, warm, params, seed):
        o = self.options(runner.config)
        masks = keep_masks(self.scores(net, seed), params["keep"], o.scope)
        fix_gates(net, masks)
        fix_bits(net, int(params["bits"]))
        return {"scope": o.scope, "kept_channels": kept_fraction(masks)}


class MagnitudeMethod(PruneThenQuantize):
    name = "magnitude"
    summary = "L1 filter pruning to a keep ratio (per layer or global) + uniform width; or unstructured"
    Options = MagnitudeOptions

    def scores(self, net, seed):
        return l1_scores(net)

    def run(self, runner, warm, params):
        if self.options(runner.config).structure == "weights":
            return self._unstructured(runner, warm, params)
        return super().run(runner, warm, params)

    def _unstructured(self, runner, warm, params):
        import time

        from ._common import finish, prepare, searchable

        started = time.time()
        seed = prepare(runner)
        runner.resume_state = None
        o = self.options(runner.config)
        net = searchable(runner, warm)
        fix_gates(net)
        bits = int(params["bits"])
        fix_bits(net, bits)
        masks = weight_masks(net, params["keep"], o.scope)
        with torch.no_grad():
            for name, layer in net.searchable_layers():
                layer.weight.mul_(masks[name].to(layer.weight))
        total = sum(m.numel() for m in masks.values())
        nonzero = sum(int(m.sum()) for m in masks.values())
        info = {"structure": "weights", "scope": o.scope, "weights": total, "zero_weights": total - nonzero,
                "sparsity": 1 - nonzero / max(1, total), "nonzero_weight_bits": nonzero * bits,
                "storage": "dense: the frozen network keeps every channel and its zero weights; memory and every "
                           "built-in cost model count dense storage, so pruning single weights does not lower them. "
                           "nonzero_weight_bits is a lower bound for a sparse format, which also stores positions."}
        return finish(runner, net, warm, params, started, seed, info=info, budget=self.finetune_budget(runner.config),
                      weight_masks=masks)


def weight_masks(net, keep: float, scope: str) -> Dict[str, torch.Tensor]:
    """Per layer, the ``keep`` share of weights with the largest magnitude (at least one)."""
    layers = dict(net.searchable_layers())
    mags = {name: layer.weight.detach().abs().cpu() for name, layer in layers.items()}
    if scope == "global":
        normed = {n: m / m.mean().clamp_min(1e-12) for n, m in mags.items()}
        flat = torch.cat([m.flatten() for m in normed.values()])
        k = max(1, int(round(keep * flat.numel())))
        threshold = torch.sort(flat, descending=True).values[k - 1]
        return {n: m >= threshold for n, m in normed.items()}
    out = {}
    for n, m in mags.items():
        k = max(1, int(round(keep * m.numel())))
        order = torch.sort(m.flatten(), descending=True, stable=True).indices
        mask = torch.zeros(m.numel(), dtype=torch.bool)
        mask[order[:k]] = True
        out[n] = mask.reshape(m.shape)
    return out
