"""Activation quantizers with a learnable clip: unsigned PACT and its signed twin.

Unsigned (after a non-negative producer): ``q(x) = round(clamp(x, 0, a) / s) · s`` with
``s = a / (2^b - 1)``. Signed: ``clamp(x, -a, a)`` and ``s = a / (2^(b-1) - 1)``. Rounding is
straight-through inside the clip range; the clip ``a`` gets PACT's gradient (the upstream
gradient of the clipped elements). With several candidate widths the output is the
probability-weighted mixture, and each probability gets ``<grad, q_b(x)>``.

Speed (this runs on every activation of every searchable layer, in every search step): all
candidate widths go through one autograd function with a hand-written backward. The input is
clamped once (every width shares the clip range) and each width is a vectorised multiply, round
and multiply-accumulate into the output; the backward builds the straight-through and PACT masks
with the fused ``hardtanh_backward`` and ``threshold_backward`` kernels and recomputes the codes
for ``<grad, q_b>`` from the input rather than keeping B copies of every activation alive (which
cost more in page faults than the recomputation). PyTorch's ``fake_quantize_per_tensor_affine``
gives the same codes bit for bit but is about ten times slower on CPU than this
clamp/multiply/round/multiply chain; ``torch.compile`` of the same function was slower too, and
needs a C++ toolchain at run time (``benchmarks/results/overhead.md``).
"""
from __future__ import annotations

import math
import struct
from typing import List, Sequence, Tuple

import torch

from .._constants import constant
from ._amp import fp32

_aten = torch.ops.aten


def act_levels(bits: int, signed: bool) -> tuple[int, int]:
    """(lowest, highest) integer code of a ``bits``-bit activation."""
    if signed:
        top = 2 ** (bits - 1) - 1
        return -top, top
    return 0, 2**bits - 1


def _f32(value: float) -> float:
    """``value`` rounded to the nearest float32 (a Python float)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _steps(clip: float, bits: Sequence[int], signed: bool) -> Tuple[List[float], List[float]]:
    """Step ``a / top`` of each width and its reciprocal, in float32 as the fake-quant kernel has them.

    Plain Python floats, no tensors: a float32 quotient computed in double and rounded to float32
    is the correctly rounded float32 quotient (53 ≥ 2·24 + 2 bits), so this is float32 division.
    """
    a = _f32(max(clip, 1e-8))
    steps = [_f32(a / act_levels(b, signed)[1]) for b in bits]
    return steps, [_f32(1.0 / s) for s in steps]


def _next(value: float, toward: float, dtype: torch.dtype) -> float:
    """The neighbour of ``value`` in ``dtype`` in the direction of ``toward``."""
    if not math.isfinite(value):
        return value
    if dtype == torch.float64:
        return math.nextafter(value, toward)
    if dtype == torch.float32:
        bits = struct.unpack("<i", struct.pack("<f", value))[0]
        if value == 0.0:
            return math.copysign(struct.unpack("<f", struct.pack("<i", 1))[0], toward)
        up = (toward > value) == (value > 0)
        return struct.unpack("<f", struct.pack("<i", bits + (1 if up else -1)))[0]
    return float(torch.nextafter(torch.tensor(value, dtype=dtype), torch.tensor(toward, dtype=dtype)))


def _device_steps(a: torch.Tensor, bits: Sequence[int], signed: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`_steps` as float32 tensors on ``a``'s device: the same numbers (IEEE float32 division
    is correctly rounded on every device), without reading the clip back to the host."""
    steps = a.float() / constant([act_levels(b, signed)[1] for b in bits], torch.float32, a.device)  # made once
    return steps, torch.ones_like(steps) / steps


class _ActQuant(torch.autograd.Function):
    """Mixture of fake-quantized copies of ``x`` over ``bits``; gradients as in the module docstring.

    The clip's scalars (range, steps) are Python floats on the CPU, where a handful of tensor ops per
    layer would cost more than the arithmetic, and 0-d tensors on an accelerator, where reading the
    clip back (``float(clip)``) would stall the stream once per layer per step (and under
    ``torch.compile``, where it would break the graph). Both give the same
    codes and gradients bit for bit (``tests/quant/test_fused_quantizers.py``).
    """

    @staticmethod
    def forward(ctx, x, clip, probs, bits: Sequence[int], signed: bool, on_device: bool):
        if on_device:
            a = clip.detach().reshape(()).float().clamp_min(1e-8)
            step, inv = _device_steps(a, bits, signed)
            lo = -a if signed else torch.zeros_like(a)
            clamped = torch.clamp(x, lo.to(x.dtype), a.to(x.dtype))
        else:
            a = float(clip)
            step, inv = _steps(a, bits, signed)
            top = max(a, 1e-8)
            clamped = x.clamp(-top if signed else 0.0, top)
        if len(bits) == 1:
            y = clamped.mul_(inv[0]).round_().mul_(step[0])
        else:
            # y = Σ_b (p_b · s_b) · round(clamped / s_b): one width at a time, the step folded into
            # the mixing weight, the last width rounded in place; only x is kept for the backward
            mix = probs.detach().to(x.dtype) * torch.as_tensor(step, dtype=x.dtype, device=x.device)
            y = torch.mul(clamped, inv[0]).round_().mul_(mix[0])
            scratch = torch.empty_like(clamped) if len(bits) > 2 else None
            for b in range(1, len(bits)):
                codes = clamped.mul_(inv[b]) if b == len(bits) - 1 else torch.mul(clamped, inv[b], out=scratch)
                y.addcmul_(codes.round_(), mix[b])
        ctx.clip_shape, ctx.signed, ctx.bits, ctx.on_device = clip.shape, signed, tuple(bits), on_device
        if on_device:
            ctx.save_for_backward(x, clip.detach().reshape(()).float())  # the clip itself: above, a is clamped
        else:
            ctx.clip = a
            ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.on_device:
            x, a = ctx.saved_tensors
        else:
            (x,) = ctx.saved_tensors
            a = ctx.clip
        grad_x = grad_clip = grad_probs = None
        if ctx.needs_input_grad[0]:
            grad_x = _pass_inside(grad, x, a, ctx.signed)
        if ctx.needs_input_grad[1]:
            g = _above(grad, x, a).sum()  # gradient of the elements above the clip
            if ctx.signed:
                g = g - _above(grad, x.neg(), a).sum()  # ... minus those below -a
            grad_clip = g.reshape(ctx.clip_shape).to(grad.dtype)
        if ctx.needs_input_grad[2] and len(ctx.bits) > 1:
            # <grad, q_b(x)> = s_b · <grad, round(clamp(x) / s_b)>: recomputing the codes (three
            # vectorised passes) is cheaper than keeping B copies of every activation alive
            if ctx.on_device:
                top = a.clamp_min(1e-8)
                step, inv = _device_steps(top, ctx.bits, ctx.signed)
                clamped = torch.clamp(x, (-top if ctx.signed else torch.zeros_like(top)).to(x.dtype), top.to(x.dtype))
            else:
                top = max(a, 1e-8)
                step, inv = _steps(a, ctx.bits, ctx.signed)
                clamped = x.clamp(-top if ctx.signed else 0.0, top)
            scratch = torch.empty_like(clamped)
            flat = grad.reshape(-1)
            dots = [torch.dot(torch.mul(clamped, i, out=scratch).round_().reshape(-1), flat) for i in inv]
            grad_probs = torch.stack(dots) * torch.as_tensor(step, dtype=grad.dtype, device=grad.device)
        return grad_x, grad_clip, grad_probs, None, None, None


def _pass_inside(grad: torch.Tensor, x: torch.Tensor, a, signed: bool) -> torch.Tensor:
    """``grad`` where ``lo <= x <= a`` (lo = -a signed, else 0), zero elsewhere: the straight-through mask."""
    if isinstance(a, torch.Tensor):
        a = a.to(x.dtype)
        return torch.where((x >= (-a if signed else 0.0)) & (x <= a), grad, 0.0)
    # hardtanh_backward zeroes where x <= lo or x >= hi; the neighbouring floats make the bounds
    # inclusive, so the gradient passes exactly where lo <= x <= a.
    lo = _next(-a if signed else 0.0, -math.inf, x.dtype)
    hi = _next(a, math.inf, x.dtype)
    return _aten.hardtanh_backward(grad, x, lo, hi)


def _above(grad: torch.Tensor, x: torch.Tensor, a) -> torch.Tensor:
    """``grad`` where ``x > a``, zero elsewhere."""
    if isinstance(a, torch.Tensor):
        return torch.where(x > a.to(x.dtype), grad, 0.0)
    return _aten.threshold_backward(grad, x, a)


@fp32  # AMP: the grid and the straight-through backward in fp32
def quantize_activation(
    x: torch.Tensor, clip: torch.Tensor, bits: Sequence[int], probs: torch.Tensor | None = None, signed: bool = False
) -> torch.Tensor:
    """Fake-quantize ``x`` at each width in ``bits`` and mix by ``probs`` (one width: no mixing)."""
    if probs is None and len(bits) > 1:
        probs = torch.ones(len(bits), device=x.device, dtype=x.dtype)
    # under torch.compile the clip stays a tensor on the CPU too: float(clip) would break the graph
    tensor_clip = x.device.type != "cpu" or torch.compiler.is_compiling()
    return _ActQuant.apply(x, clip, probs, tuple(bits), signed, tensor_clip)
