"""Per-output-channel weight quantization with a learned step, and the mixture over candidate widths.

A ``b``-bit channel ``c`` stores integer codes on the full two's-complement grid
``[-2^(b-1), 2^(b-1) - 1]`` (2 bits: -2, -1, 0, 1 — four levels, not the ternary {-1, 0, 1} of a
symmetric max-scaled grid) times one step ``s_c``::

    Q_b(W)[c] = clamp(round(W[c] / s_c), -2^(b-1), 2^(b-1) - 1) · s_c

The step is learned as in LSQ (Esser et al., ICLR 2020, arXiv 1902.08153): rounding is straight
through inside the grid, clipped weights get no gradient, and ``s`` gets
``Σ (code - W/s · inside)`` scaled by ``1 / sqrt(n · Q_P)`` (n = weights per channel). It is stored
as ``log s`` so that Adam, whose update is a fixed fraction of the parameter's scale only when the
parameter is a logarithm, moves a step of 0.002 and one of 0.2 by the same relative amount. Steps
start at the value that minimises the squared error of the channel (:func:`init_step`), so an
untrained network already quantizes well: measured on the quickstart's warm-up network, the
relative squared error of its convolutions at 2 bits drops from 0.62-0.65 (symmetric max scale,
ternary) to about 0.12, at 4 bits from 0.015 to 0.010.

``_codes`` is the one place where codes are computed: the fake-quantized forward pass, the frozen
network's :meth:`weight_codes` and so every export use it, so the exported codes and steps are what
was trained, to the bit.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence, Tuple

import torch

from ._amp import fp32


def weight_range(bits):
    """(lowest, highest) code of a ``bits``-bit weight: ``(-2^(b-1), 2^(b-1) - 1)``; ints or tensors."""
    if isinstance(bits, torch.Tensor):
        half = torch.pow(2.0, bits.to(torch.float32) - 1)
        return -half, half - 1
    half = 2 ** (int(bits) - 1)
    return -half, half - 1


def _codes(weight: torch.Tensor, step: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Integer codes (as floats) of ``weight`` on the grid ``[lo, hi] · step``; all broadcastable."""
    return torch.div(weight, step).round_().clamp_(lo, hi)


def init_step(weight: torch.Tensor, bits: int, candidates: int = 48) -> torch.Tensor:
    """The step per output channel that minimises ``||Q_b(W) - W||²``.

    A grid search over steps (a coarse pass, then a finer one around the best), then a few
    alternating refinements: with the codes fixed, the least-squares step is ``<W, codes> / <codes, codes>``.

    Args:
        weight: [C, ...] float weights.
        bits: the width.
        candidates: grid points of the coarse pass.

    Returns:
        [C] steps, strictly positive, in ``weight``'s dtype (float32 for half precision).
    """
    flat = weight.detach().reshape(weight.shape[0], -1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()
    lo, hi = weight_range(bits)
    amax = flat.abs().amax(1).clamp_min(1e-8)
    # the step that puts max|w| on the smaller end of the grid is the widest useful one
    widest = amax / max(hi, 1)
    best_err = torch.full_like(amax, math.inf)
    best = widest.clone()

    def consider(step):
        nonlocal best, best_err
        step = step.clamp_min(1e-12)
        err = (_codes(flat, step.unsqueeze(1), lo, hi).mul_(step.unsqueeze(1)) - flat).pow_(2).sum(1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, step, best)

    for i in range(candidates):
        consider(widest * (i + 1) / candidates)
    ratio, width = best / widest, 1.0 / candidates
    for i in range(candidates // 2 + 1):
        consider(widest * (ratio - width + 2 * width * i / (candidates // 2)).clamp_min(1e-3))
    for _ in range(4):
        codes = _codes(flat, best.unsqueeze(1), lo, hi)
        norm = (codes * codes).sum(1)
        consider(torch.where(norm > 0, (codes * flat).sum(1) / norm.clamp_min(1e-12), best))
    return best.clamp_min(1e-12)


def _view(t: torch.Tensor, dims: int) -> torch.Tensor:
    """[C] → [C, 1, ..., 1] with ``dims`` dimensions."""
    return t.reshape(t.shape + (1,) * (dims - 1))


class _QuantizeWeight(torch.autograd.Function):
    """``clamp(round(W / s), lo, hi) · s`` per channel with LSQ's gradients (module docstring)."""

    @staticmethod
    def forward(ctx, weight, log_step, lo, hi, grad_scale):
        step = _view(log_step.exp(), weight.dim())
        codes = _codes(weight, step, lo, hi)
        ctx.save_for_backward(weight, step, codes, lo, hi, grad_scale)
        return codes * step

    @staticmethod
    def backward(ctx, grad):
        weight, step, codes, lo, hi, grad_scale = ctx.saved_tensors
        v = weight / step
        inside = ((v >= lo) & (v <= hi)).to(grad.dtype)
        grad_w = grad * inside if ctx.needs_input_grad[0] else None
        grad_log = None
        if ctx.needs_input_grad[1]:
            d_step = (grad * (codes - v * inside)).flatten(1).sum(1)
            grad_log = d_step * grad_scale * step.flatten()
        return grad_w, grad_log, None, None, None


@fp32  # AMP: the grid and the straight-through backward in fp32
def quantize_weight(weight: torch.Tensor, bits: torch.Tensor | int, log_step: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Fake-quantize ``weight`` [C, ...] at per-channel ``bits`` (int or [C]) with steps ``exp(log_step)`` [C].

    Without ``log_step`` the error-minimising step of each channel is used (no gradient to it).
    Channels with 0 bits become exactly zero.
    """
    c = weight.shape[0]
    bits_t = torch.as_tensor(bits, device=weight.device).expand(c)
    safe = bits_t.clamp_min(2)
    if log_step is None:
        log_step = torch.zeros(c, dtype=weight.dtype, device=weight.device)
        for b in torch.unique(safe).tolist():
            rows = safe == b
            log_step[rows] = init_step(weight[rows], int(b)).log().to(weight.dtype)
    lo, hi = (_view(t.to(weight.dtype), weight.dim()) for t in weight_range(safe))
    per_channel = max(1, weight[0].numel())
    grad_scale = _view(1.0 / torch.sqrt(per_channel * hi.flatten().clamp_min(1.0)), 1)
    out = _QuantizeWeight.apply(weight, log_step, lo, hi, grad_scale)
    if bool((bits_t == 0).any()):
        out = out * _view((bits_t > 0).to(weight.dtype), weight.dim())
    return out


def weight_codes(weight: torch.Tensor, bits: torch.Tensor, log_step: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Integer codes (int32, ``weight``'s shape) and steps [C] with ``codes · step`` = :func:`quantize_weight`."""
    w = weight.detach()
    lo, hi = (_view(t.to(w.dtype), w.dim()) for t in weight_range(bits.clamp_min(2)))
    step = log_step.detach().exp()
    return _codes(w, _view(step, w.dim()), lo, hi).to(torch.int32), step


@functools.lru_cache(maxsize=None)
def _width_constants(bits: Tuple[int, ...], per_channel: int, dtype: torch.dtype, device: torch.device):
    """(lo, hi, grad scale) of each width as [B, 1, 1] tensors, built once per widths/dtype/device."""
    lo = torch.tensor([weight_range(b)[0] for b in bits], dtype=dtype, device=device).reshape(-1, 1, 1)
    hi = torch.tensor([weight_range(b)[1] for b in bits], dtype=dtype, device=device).reshape(-1, 1, 1)
    scale = (1.0 / torch.sqrt(per_channel * hi.clamp_min(1.0))).reshape(-1, 1)
    return lo, hi, scale


class _MixWeights(torch.autograd.Function):
    """``Σ_b theta[:, b] · keep · Q_b(W)`` in one pass, each width with its own learned step.

    Every width is quantized in one ``[B, C, K]`` stack (K = weights per output channel) and the
    mixture is one batched matrix product per channel; the backward reuses the codes for
    ``<grad, Q_b(W)>`` (a second batched product) and for the steps' LSQ gradients. The keep gate
    is applied inside, so a searchable layer's whole weight path is one autograd node.
    """

    @staticmethod
    def forward(ctx, weight, theta, keep, bits: Sequence[int], log_step):
        c = weight.shape[0]
        flat = weight.reshape(c, -1)
        lo, hi, _ = _width_constants(tuple(bits), flat.shape[1], weight.dtype, weight.device)
        step = log_step.exp().t().unsqueeze(2)  # [B, C, 1]
        codes = _codes(flat, step, lo, hi)  # [B, C, K]
        stack = codes * step
        mix = theta if keep is None else theta * keep.unsqueeze(1)
        ctx.save_for_backward(flat, step, codes, theta, keep, mix)
        ctx.wshape, ctx.bits = weight.shape, tuple(bits)
        return torch.bmm(mix.unsqueeze(1), stack.transpose(0, 1)).reshape(weight.shape)

    @staticmethod
    def backward(ctx, grad):
        flat, step, codes, theta, keep, mix = ctx.saved_tensors
        grad_w = grad_theta = grad_keep = grad_log = None
        c = ctx.wshape[0]
        g = grad.reshape(c, -1)
        lo, hi, scale = _width_constants(ctx.bits, flat.shape[1], flat.dtype, flat.device)
        v = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[4]:
            v = flat / step  # [B, C, K]
            inside = ((v >= lo) & (v <= hi)).to(g.dtype)
        if ctx.needs_input_grad[0]:
            grad_w = (g * torch.einsum("cb,bck->ck", mix, inside)).reshape(ctx.wshape)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            stack = codes * step
            grad_mix = torch.bmm(stack.transpose(0, 1), g.unsqueeze(2)).reshape(c, -1)  # <grad, Q_b(W)>
            if ctx.needs_input_grad[1]:
                grad_theta = grad_mix if keep is None else grad_mix * keep.unsqueeze(1)
            if ctx.needs_input_grad[2]:
                grad_keep = (grad_mix * theta).sum(1)
        if ctx.needs_input_grad[4]:
            d_step = ((codes - v * inside) * g.unsqueeze(0)).sum(2)  # [B, C]
            grad_log = (d_step * scale * step.squeeze(2)).t() * mix  # chain rule through exp and the mixture
        return grad_w, grad_theta, grad_keep, None, grad_log


@fp32  # AMP: the grid and the straight-through backward in fp32
def mix_weights(weight: torch.Tensor, theta: torch.Tensor, bits: Sequence[int], log_step: Optional[torch.Tensor] = None,
                keep: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Effective weight of a searchable layer.

    Args:
        weight: [C, ...] float weights.
        theta: [C, len(bits)] probability of each non-zero width per channel; rows sum to the
            channel's keep probability (pruning is the missing mass) — or to 1 when ``keep`` is given.
        bits: the non-zero widths.
        log_step: [C, len(bits)] log of each channel's step at each width (learned); default: the
            error-minimising steps of ``weight`` (no gradient).
        keep: optional [C] keep probability per channel; the mixture uses ``theta · keep[:, None]``
            (the same as multiplying beforehand, without a separate autograd node).
    """
    if log_step is None:
        log_step = torch.stack([init_step(weight, b).log().to(weight.dtype) for b in bits], dim=1)
    return _MixWeights.apply(weight, theta, keep, tuple(bits), log_step)
