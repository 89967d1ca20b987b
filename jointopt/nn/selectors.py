"""Selectors: a keep gate per channel group, bit-width distributions per layer.

The probability of a weight width for output channel ``c`` is factorised as
``theta[c, 0 bits] = 1 - keep[c]`` and ``theta[c, b] = keep[c] · p[c, b]`` for the non-zero widths:
the keep decision is shared by every layer of a channel group, the bit distribution is per layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

MODES = ("float", "soft", "hard")


@dataclass
class SearchState:
    """Shared by every selector of one network: what the forward pass should do.

    ``mode``: ``float`` (no quantization, no pruning: the original network), ``soft`` (the
    differentiable mixture used for the search) or ``hard`` (argmax choices, what freeze keeps).
    """

    mode: str = "soft"
    temperature: float = 1.0
    sampling: str = "softmax"


def sample_probs(logits: torch.Tensor, state: SearchState, training: bool) -> torch.Tensor:
    """Softmax over the last dim at the current temperature, sampled as configured."""
    t = state.temperature
    if training and state.sampling == "gumbel":
        return nn.functional.gumbel_softmax(logits, tau=t, hard=False, dim=-1)
    probs = torch.softmax(logits / t, dim=-1)
    if training and state.sampling == "hard":
        hard = nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
        return hard - probs.detach() + probs
    return probs


class GroupGate(nn.Module):
    """Keep gate of one channel group: ``keep[c] = sigmoid(logits[c] / T)``.

    Example — a residual add couples channels::

        x ─ conv_a ─┐
                    + ─ relu ─ conv_c
        y ─ conv_b ─┘

    ``conv_a`` and ``conv_b`` write the same channels of the sum, so they share one gate: pruning
    channel 5 zeroes it in both (weights *and* bias), the sum's channel 5 is exactly zero, and
    freeze removes it from ``conv_a``'s and ``conv_b``'s outputs and from ``conv_c``'s inputs.

    A group that is not prunable (it reaches the network output, feeds a grouped convolution, ...)
    has ``prunable=False`` and keeps every channel.
    """

    def __init__(self, size: int, prunable: bool, init: float = 3.0):
        super().__init__()
        self.size = size
        self.prunable = prunable
        self.logits = nn.Parameter(torch.full((size,), float(init)), requires_grad=prunable)
        self.current: torch.Tensor | None = None  # keep values used by this forward pass

    def prob(self, temperature: float) -> torch.Tensor:
        """Deterministic keep probabilities (what the expected cost uses)."""
        if not self.prunable:
            return torch.ones_like(self.logits)
        return torch.sigmoid(self.logits / temperature)

    def hard_mask(self) -> torch.Tensor:
        """Kept channels of the argmax choice; a group never loses every channel (the strongest stays)."""
        if not self.prunable:
            return torch.ones(self.size, dtype=torch.bool, device=self.logits.device)
        mask = self.logits.detach() > 0
        if not bool(mask.any()):
            mask = torch.zeros_like(mask)
            mask[self.logits.detach().argmax()] = True
        return mask

    def refresh(self, state: SearchState, training: bool) -> None:
        """Draw the keep values every layer of this group uses in the coming forward pass."""
        if state.mode == "float" or not self.prunable:
            self.current = None
        elif state.mode == "hard":
            self.current = self.hard_mask().to(self.logits.dtype)
        elif not training or state.sampling == "softmax":
            # the softmax over (drop, keep) logits (0, l) is sigmoid(l / T): one op, not five
            self.current = torch.sigmoid(self.logits / state.temperature)
        else:
            pair = torch.stack([torch.zeros_like(self.logits), self.logits], dim=-1)
            self.current = sample_probs(pair, state, training)[..., 1]

    def extra_repr(self) -> str:
        return f"size={self.size}, prunable={self.prunable}"


def init_bit_logits(out_channels: int, n_bits: int) -> torch.Tensor:
    """Start every channel leaning towards the widest width (the warm-up precision)."""
    logits = torch.zeros(out_channels, n_bits)
    logits[:, -1] = math.log(2.0)
    return logits
