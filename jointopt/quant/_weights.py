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

``_codes`` computes the codes of a fixed allocation: the frozen network's fake-quantized forward
pass and its :meth:`weight_codes` (and so every export) use it, so the exported codes and steps are
what was fine-tuned, to the bit. The search's mixture rounds and clamps the same quotient ``W / s``,
one width at a time.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple, Optional, Sequence, Tuple

import torch

from ._acts import _next
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


class WeightGrid(NamedTuple):
    """The per-channel grid of a fixed allocation: ends ``lo``/``hi`` and the live-channel mask as
    ``[C, 1, ...]`` tensors (``live`` is None when no channel has 0 bits) and LSQ's ``grad_scale`` [C].

    It depends only on the widths and the weight's shape, so a layer whose widths are fixed builds it
    once (:func:`weight_grid`) instead of a dozen small tensor operations in every training step.
    """

    lo: torch.Tensor
    hi: torch.Tensor
    grad_scale: torch.Tensor
    live: Optional[torch.Tensor]


def weight_grid(bits: torch.Tensor | int, weight: torch.Tensor) -> WeightGrid:
    """The :class:`WeightGrid` of ``weight`` [C, ...] at per-channel ``bits`` (int or [C]; 0 = pruned)."""
    c, dims = weight.shape[0], weight.dim()
    bits_t = torch.as_tensor(bits, device=weight.device).expand(c)
    lo, hi = (_view(t.to(weight.dtype), dims) for t in weight_range(bits_t.clamp_min(2)))
    grad_scale = 1.0 / torch.sqrt(max(1, weight[0].numel()) * hi.flatten().clamp_min(1.0))
    live = _view((bits_t > 0).to(weight.dtype), dims) if bool((bits_t == 0).any()) else None
    return WeightGrid(lo, hi, grad_scale, live)


@fp32  # AMP: the grid and the straight-through backward in fp32
def quantize_weight(weight: torch.Tensor, bits: torch.Tensor | int, log_step: Optional[torch.Tensor] = None,
                    grid: Optional[WeightGrid] = None) -> torch.Tensor:
    """Fake-quantize ``weight`` [C, ...] at per-channel ``bits`` (int or [C]) with steps ``exp(log_step)`` [C].

    Without ``log_step`` the error-minimising step of each channel is used (no gradient to it).
    Channels with 0 bits become exactly zero. ``grid``: :func:`weight_grid` of the same bits and
    weight, when the caller keeps it.
    """
    if log_step is None:
        safe = torch.as_tensor(bits, device=weight.device).expand(weight.shape[0]).clamp_min(2)
        log_step = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
        for b in torch.unique(safe).tolist():
            rows = safe == b
            log_step[rows] = init_step(weight[rows], int(b)).log().to(weight.dtype)
    if grid is None:
        grid = weight_grid(bits, weight)
    out = _QuantizeWeight.apply(weight, log_step, grid.lo, grid.hi, grid.grad_scale)
    return out if grid.live is None else out * grid.live


def weight_codes(weight: torch.Tensor, bits: torch.Tensor, log_step: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Integer codes (int32, ``weight``'s shape) and steps [C] with ``codes · step`` = :func:`quantize_weight`."""
    w = weight.detach()
    lo, hi = (_view(t.to(w.dtype), w.dim()) for t in weight_range(bits.clamp_min(2)))
    step = log_step.detach().exp()
    return _codes(w, _view(step, w.dim()), lo, hi).to(torch.int32), step


@functools.lru_cache(maxsize=None)
def _width_constants(bits: Tuple[int, ...], per_channel: int, dtype: torch.dtype, device: torch.device):
    """Per width: the grid's ends as Python numbers, the ends widened to the next float of ``dtype``
    (so ``hardtanh_backward``, which passes ``lo < v < hi``, passes ``lo <= v <= hi``), and LSQ's
    gradient scale ``1 / sqrt(n · Q_P)`` as a [1, B] tensor; built once per widths/dtype/device."""
    ends = [weight_range(b) for b in bits]
    open_ends = [(_next(float(lo), -math.inf, dtype), _next(float(hi), math.inf, dtype)) for lo, hi in ends]
    scale = torch.tensor([1.0 / math.sqrt(per_channel * max(hi, 1)) for _, hi in ends], dtype=dtype, device=device)
    return ends, open_ends, scale.reshape(1, -1)


class _MixWeights(torch.autograd.Function):
    """``Σ_b theta[:, b] · keep · Q_b(W)`` in one pass, each width with its own learned step.

    Every width is quantized in one ``[C, B, K]`` stack (K = weights per output channel, laid out so
    that each channel's B rows are one matrix), and each sum over widths or over a channel's weights
    is one batched matrix product: the mixture, ``<grad, codes_b>`` for the widths' probabilities and
    steps, and the masked gradient of the weights. Four passes over the stack forward and seven
    backward (it was fourteen with elementwise masks; on small networks these passes, not the
    convolutions, were most of a search step). The keep gate is applied inside, so a searchable
    layer's whole weight path is one autograd node.
    """

    @staticmethod
    def forward(ctx, weight, theta, keep, bits: Sequence[int], log_step):
        c = weight.shape[0]
        flat = weight.reshape(c, 1, -1)
        ends, open_ends, _ = _width_constants(tuple(bits), flat.shape[2], weight.dtype, weight.device)
        step = log_step.exp()  # [C, B]
        v = torch.div(flat, step.unsqueeze(2))  # [C, B, K]
        codes = torch.round(v)
        for b, (lo, hi) in enumerate(ends):
            codes[:, b].clamp_(lo, hi)  # = _codes, one width at a time with scalar ends
        mix = theta if keep is None else theta * keep.unsqueeze(1)
        out = torch.bmm((mix * step).unsqueeze(1), codes)  # Σ_b mix_b · s_b · codes_b
        ctx.save_for_backward(v, step, codes, theta, keep, mix)
        ctx.wshape, ctx.bits = weight.shape, tuple(bits)
        return out.reshape(weight.shape)

    @staticmethod
    def backward(ctx, grad):
        v, step, codes, theta, keep, mix = ctx.saved_tensors
        grad_w = grad_theta = grad_keep = grad_log = None
        c, n_bits, k = v.shape
        g = grad.reshape(c, k)
        _, open_ends, scale = _width_constants(ctx.bits, k, v.dtype, v.device)
        inside = None  # grad where the weight lies on width b's grid (straight through), else 0: [C, B, K]
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[4]:
            inside = torch.empty_like(v)
            for b, (lo, hi) in enumerate(open_ends):
                torch.ops.aten.hardtanh_backward.grad_input(g, v[:, b], lo, hi, grad_input=inside[:, b])
        if ctx.needs_input_grad[0]:
            grad_w = torch.bmm(mix.unsqueeze(1), inside).reshape(ctx.wshape)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_mix = torch.bmm(codes, g.unsqueeze(2)).squeeze(2) * step  # <grad, Q_b(W)> = s_b <grad, codes_b>
            if ctx.needs_input_grad[1]:
                grad_theta = grad_mix if keep is None else grad_mix * keep.unsqueeze(1)
            if ctx.needs_input_grad[2]:
                grad_keep = (grad_mix * theta).sum(1)
        if ctx.needs_input_grad[4]:
            # LSQ: d/ds of s · codes is codes - v inside the grid and codes outside it. Summed as
            # <codes - v, grad inside> + <codes, grad outside>: <codes, grad> - <v, grad inside> would
            # subtract two sums of up to 2^(b-1) · |grad| to get one of the rounding errors (|codes - v|
            # <= 1/2), losing about b bits of the step's gradient.
            rows = (c * n_bits, 1, k)
            near = torch.bmm((codes - v).reshape(rows), inside.reshape(c * n_bits, k, 1))
            outside = torch.bmm(codes.reshape(rows), (g.unsqueeze(1) - inside).reshape(c * n_bits, k, 1))
            grad_log = (near + outside).reshape(c, n_bits) * scale * step * mix
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
