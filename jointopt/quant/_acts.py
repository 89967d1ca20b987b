"""Activation quantizers with a learnable clip: unsigned PACT and its signed twin.

Unsigned (after a non-negative producer): ``q(x) = round(clamp(x, 0, a) / s) · s`` with
``s = a / (2^b - 1)``. Signed: ``clamp(x, -a, a)`` and ``s = a / (2^(b-1) - 1)``. Rounding is
straight-through inside the clip range; the clip ``a`` gets PACT's gradient (the upstream
gradient of the clipped elements). With several candidate widths the output is the
probability-weighted mixture, and each probability gets ``<grad, q_b(x)>``.
"""
from __future__ import annotations

from typing import Sequence

import torch


def act_levels(bits: int, signed: bool) -> tuple[int, int]:
    """(lowest, highest) integer code of a ``bits``-bit activation."""
    if signed:
        top = 2 ** (bits - 1) - 1
        return -top, top
    return 0, 2**bits - 1


def _fake_quant(x: torch.Tensor, clip: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    lo, hi = act_levels(bits, signed)
    scale = (clip.detach().float().clamp_min(1e-8) / hi).reshape(1)
    zero = torch.zeros(1, dtype=torch.int32, device=x.device)
    return torch.fake_quantize_per_tensor_affine(x, scale, zero, lo, hi)


class _ActQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, clip, probs, bits: Sequence[int], signed: bool):
        outs = [_fake_quant(x, clip, b, signed) for b in bits]
        if len(outs) == 1:
            y = outs[0]
        else:
            y = sum(p * o for p, o in zip(probs.unbind(0), outs))
        ctx.save_for_backward(x, clip, probs)
        ctx.bits, ctx.signed = tuple(bits), signed
        return y

    @staticmethod
    def backward(ctx, grad):
        x, clip, probs = ctx.saved_tensors
        c = clip.detach()
        above = x > c
        below = x < (-c if ctx.signed else torch.zeros_like(c))
        inside = ~(above | below)
        grad_x = grad * inside if ctx.needs_input_grad[0] else None
        grad_clip = None
        if ctx.needs_input_grad[1]:
            g = (grad * above).sum()
            if ctx.signed:
                g = g - (grad * below).sum()
            grad_clip = g.reshape(clip.shape)
        grad_probs = None
        if ctx.needs_input_grad[2] and len(ctx.bits) > 1:
            grad_probs = torch.stack([(grad * _fake_quant(x, clip, b, ctx.signed)).sum() for b in ctx.bits])
        return grad_x, grad_clip, grad_probs, None, None


def quantize_activation(
    x: torch.Tensor, clip: torch.Tensor, bits: Sequence[int], probs: torch.Tensor | None = None, signed: bool = False
) -> torch.Tensor:
    """Fake-quantize ``x`` at each width in ``bits`` and mix by ``probs`` (one width: no mixing)."""
    if probs is None:
        probs = torch.ones(len(bits), device=x.device, dtype=x.dtype)
    return _ActQuant.apply(x, clip, probs, tuple(bits), signed)
