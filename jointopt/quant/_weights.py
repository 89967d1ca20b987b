"""Per-output-channel symmetric weight quantization, and the mixture over candidate widths.

``Q_b(W)[c] = round(W[c] / s_c) · s_c`` with ``s_c = max|W[c]| / (2^(b-1) - 1)``, rounding passed
straight through. The scale is a statistic of the weights and gets no gradient.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence, Tuple

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


@functools.lru_cache(maxsize=None)
def _width_constants(bits: Tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``qmax`` of each width as a [B, 1] tensor (built once per widths/dtype/device, not per step)."""
    return torch.tensor([weight_qmax(b) for b in bits], dtype=dtype, device=device).reshape(-1, 1)


class _MixWeights(torch.autograd.Function):
    """``Σ_b theta[:, b] · keep · Q_b(W)`` in one pass; W gets the straight-through gradient.

    Every width is quantized in one ``[B, C, K]`` stack (K = weights per output channel) and the
    mixture is one batched matrix product per channel; the backward reuses the stack for
    ``<grad, Q_b(W)>`` (a second batched product). The keep gate is applied inside, so a
    searchable layer's whole weight path is one autograd node.
    """

    @staticmethod
    def forward(ctx, weight, theta, keep, bits: Sequence[int], scale_weight):
        c = weight.shape[0]
        flat = weight.reshape(c, -1)
        qmax = _width_constants(tuple(bits), weight.dtype, weight.device)  # [B, 1]
        source = flat if scale_weight is None else scale_weight.reshape(c, -1)
        amax = source.abs().amax(1).clamp_min_(1e-8)  # [C]
        scale = (amax / qmax).unsqueeze(2)  # [B, C, 1]
        stack = torch.div(flat, scale).round_()  # [B, C, K] integer codes
        if scale_weight is not None:  # the scale was measured on other weights: codes may overflow
            stack = torch.maximum(torch.minimum(stack, qmax.unsqueeze(2)), -qmax.unsqueeze(2))
        stack = stack.mul_(scale)
        mix = theta if keep is None else theta * keep.unsqueeze(1)
        ctx.save_for_backward(stack, theta, keep, mix)
        ctx.wshape = weight.shape
        return torch.bmm(mix.unsqueeze(1), stack.transpose(0, 1)).reshape(weight.shape)

    @staticmethod
    def backward(ctx, grad):
        stack, theta, keep, mix = ctx.saved_tensors
        grad_w = grad_theta = grad_keep = None
        c = ctx.wshape[0]
        if ctx.needs_input_grad[0]:
            grad_w = grad * mix.sum(1).reshape((-1,) + (1,) * (len(ctx.wshape) - 1))
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_mix = torch.bmm(stack.transpose(0, 1), grad.reshape(c, -1, 1)).reshape(c, -1)  # <grad, Q_b(W)>
            if ctx.needs_input_grad[1]:
                grad_theta = grad_mix if keep is None else grad_mix * keep.unsqueeze(1)
            if ctx.needs_input_grad[2]:
                grad_keep = (grad_mix * theta).sum(1)
        return grad_w, grad_theta, grad_keep, None, None


def mix_weights(weight: torch.Tensor, theta: torch.Tensor, bits: Sequence[int],
                scale_weight: Optional[torch.Tensor] = None, keep: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Effective weight of a searchable layer.

    Args:
        weight: [C, ...] float weights.
        theta: [C, len(bits)] probability of each non-zero width per channel; rows sum to the
            channel's keep probability (pruning is the missing mass) — or to 1 when ``keep`` is given.
        bits: the non-zero widths.
        scale_weight: weights the per-channel scale is measured on (defaults to ``weight``);
            the hard mode passes the weights restricted to kept input channels, as frozen.
        keep: optional [C] keep probability per channel; the mixture uses ``theta · keep[:, None]``
            (the same as multiplying beforehand, without a separate autograd node).
    """
    return _MixWeights.apply(weight, theta, keep, tuple(bits), None if scale_weight is None else scale_weight.detach())
