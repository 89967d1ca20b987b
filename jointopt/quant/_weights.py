"""Per-output-channel symmetric weight quantization, and the mixture over candidate widths.

``Q_b(W)[c] = round(W[c] / s_c) · s_c`` with ``s_c = max|W[c]| / (2^(b-1) - 1)``, rounding passed
straight through. The scale is a statistic of the weights and gets no gradient.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch


def weight_qmax(bits: torch.Tensor | int) -> torch.Tensor | int:
    """Largest integer code of a symmetric ``bits``-bit weight (2 bits → 1: codes -1, 0, 1)."""
    return 2 ** (bits - 1) - 1


def channel_scale(weight: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Per-channel scales for ``bits`` (a tensor broadcastable to [..., C]); result [..., C]."""
    amax = weight.detach().abs().flatten(1).amax(1).clamp_min(1e-8)
    return amax / weight_qmax(bits).to(weight.dtype)


def _channel_view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape + (1,) * (like.dim() - 1))


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def quantize_weight(weight: torch.Tensor, bits: torch.Tensor | int) -> torch.Tensor:
    """Fake-quantize ``weight`` [C, ...] with per-channel ``bits`` (int or [C]); STE gradient.

    Channels with 0 bits become exactly zero.
    """
    bits_t = torch.as_tensor(bits, device=weight.device).expand(weight.shape[0])
    safe = bits_t.clamp_min(2)
    scale = _channel_view(channel_scale(weight, safe), weight)
    qmax = _channel_view(weight_qmax(safe).to(weight.dtype), weight)
    codes = torch.minimum(torch.maximum(_RoundSTE.apply(weight / scale), -qmax), qmax)
    out = codes * scale
    return out * _channel_view((bits_t > 0).to(weight.dtype), weight)


class _MixWeights(torch.autograd.Function):
    """``Σ_b theta[:, b] · Q_b(W)`` in one pass; W gets the straight-through gradient ``Σ_b theta_b``."""

    @staticmethod
    def forward(ctx, weight, theta, bits: Sequence[int], scale_weight):
        c = weight.shape[0]
        bits_t = torch.tensor(bits, device=weight.device, dtype=weight.dtype)  # [B]
        amax = scale_weight.abs().flatten(1).amax(1).clamp_min(1e-8)  # [C]
        scale = amax[None, :] / (2 ** (bits_t - 1) - 1)[:, None]  # [B, C]
        qmax = (2 ** (bits_t - 1) - 1).reshape((len(bits),) + (1,) * weight.dim())
        shape = (len(bits), c) + (1,) * (weight.dim() - 1)
        codes = torch.round(weight.unsqueeze(0) / scale.reshape(shape))
        codes = torch.minimum(torch.maximum(codes, -qmax), qmax)
        stack = codes * scale.reshape(shape)  # [B, C, ...]
        ctx.save_for_backward(stack, theta)
        ctx.wdim = weight.dim()
        return torch.einsum("bc...,cb->c...", stack, theta)

    @staticmethod
    def backward(ctx, grad):
        stack, theta = ctx.saved_tensors
        grad_w = grad_theta = None
        if ctx.needs_input_grad[0]:
            grad_w = grad * theta.sum(1).reshape((-1,) + (1,) * (ctx.wdim - 1))
        if ctx.needs_input_grad[1]:
            grad_theta = (stack * grad.unsqueeze(0)).flatten(2).sum(2).t()
        return grad_w, grad_theta, None, None


def mix_weights(
    weight: torch.Tensor, theta: torch.Tensor, bits: Sequence[int], scale_weight: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Effective weight of a searchable layer.

    Args:
        weight: [C, ...] float weights.
        theta: [C, len(bits)] probability of each non-zero width per channel; rows sum to the
            channel's keep probability (pruning is the missing mass).
        bits: the non-zero widths.
        scale_weight: weights the per-channel scale is measured on (defaults to ``weight``);
            the hard mode passes the weights restricted to kept input channels, as frozen.
    """
    return _MixWeights.apply(weight, theta, tuple(bits), weight.detach() if scale_weight is None else scale_weight.detach())
