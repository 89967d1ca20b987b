"""How the search's selectors harden: temperature, selector step and straight-through phase, per step.

The published schedule multiplies the temperature by ``exp(-0.045)`` per epoch and moves the
selector logits with SGD at lr 1e-2; both assume hundreds of epochs. With a few hundred steps the
logits barely move and the softmax is still soft when the argmax is frozen, so the network that
was trained (a mixture of widths) is not the network that is kept. Here everything is a function
of the number of search steps actually run, so the choice hardens by the end of the search
whether that is 400 steps or 500 epochs:

* the temperature falls geometrically **per step** from ``temperature`` to ``final_temperature``;
* the selector logits move with Adam at ``selector_lr = selector_travel / steps`` (Adam's update
  is about ``lr`` per step whatever the gradient's scale, so a logit can travel about
  ``selector_travel`` over the search, on any model and any budget);
* the last ``hard_fraction`` of the steps use straight-through hard choices (the forward pass is
  the argmax network, the gradient that of the softmax), so the weights adapt to the widths that
  will be kept and the choice can still change where the argmax network disagrees.

Setting ``temperature_decay`` (per epoch) or ``selector_lr`` in the config restores the
corresponding part of the published protocol.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass(frozen=True)
class SearchSchedule:
    """Per-step temperature and sampling of one search.

    Args:
        total_steps: search steps that will run (epochs × steps per epoch).
        steps_per_epoch: steps in one epoch.
        start, end: first and last temperature (per-step geometric schedule).
        epoch_decay: if set, the published per-epoch schedule ``T = start · exp(-decay · epoch)``.
        hard_fraction: share of the last steps with straight-through hard choices.
        sampling: sampling before the hard phase (``softmax``, ``gumbel`` or ``hard``).
    """

    total_steps: int
    steps_per_epoch: int
    start: float = 1.0
    end: float = 0.05
    epoch_decay: Optional[float] = None
    hard_fraction: float = 0.0
    sampling: str = "softmax"

    def temperature(self, step: int) -> float:
        """Temperature for global step ``step`` (0-based)."""
        if self.epoch_decay is not None:
            return self.start * math.exp(-self.epoch_decay * (step // max(1, self.steps_per_epoch)))
        fraction = min(1.0, step / max(1, self.total_steps - 1))
        return self.start * (self.end / self.start) ** fraction

    @property
    def hard_from(self) -> int:
        """First step of the straight-through hard phase (``total_steps`` if there is none)."""
        return self.total_steps - int(round(self.hard_fraction * self.total_steps))

    def sampling_at(self, step: int) -> str:
        return "hard" if step >= self.hard_from else self.sampling


def fused_adam(params, **options) -> torch.optim.Adam:
    """``torch.optim.Adam``, as one fused kernel over all parameters where they allow it (floating-point
    tensors on the CPU or a CUDA device), else the plain loop. The same update; on the quickstart's CNN a
    float step was 12 % and a search step 6 % faster (41 interleaved repetitions, one thread), since a
    small network's step otherwise pays a dozen small tensor operations per parameter."""
    params = list(params)
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    fused = bool(tensors) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors) \
        and len({p.device for p in tensors}) == 1
    return torch.optim.Adam(params, fused=fused or None, **options)


def selector_optimizer(params, phase, total_steps: int) -> torch.optim.Optimizer:
    """Adam with a step set by the budget, or the published SGD when ``selector_lr`` is given."""
    params = list(params)
    if phase.selector_lr is not None:
        return torch.optim.SGD(params, lr=phase.selector_lr, momentum=phase.selector_momentum)
    return fused_adam(params, lr=phase.selector_travel / max(1, total_steps), betas=(0.9, 0.999))


def selector_entropy(net) -> float:
    """Mean normalised entropy of the channels' width choices (1 = uniform, 0 = one-hot).

    The distribution of a channel is over ``(pruned,) + widths``: keep probability from its group's
    gate times its layer's width probabilities; channels that cannot be pruned use widths only.
    """
    total, count = 0.0, 0
    t = net.temperature
    with torch.no_grad():
        for _, layer in net.searchable_layers():
            probs = torch.softmax(layer.bit_logits / t, dim=-1)
            gate = layer._gates.get(layer.out_group)
            if gate is not None and gate.prunable:
                keep = gate.prob(t).unsqueeze(1)
                probs = torch.cat([1 - keep, probs * keep], dim=1)
            n = probs.shape[1]
            if n < 2:
                continue
            h = -(probs * probs.clamp_min(1e-12).log()).sum(1) / math.log(n)
            total += float(h.sum())
            count += h.numel()
    return total / count if count else 0.0
