"""Quantizers stay in fp32 under mixed precision (AMP).

Under ``torch.autocast`` a quantizer would otherwise compute in bf16/fp16 (its einsum is on
autocast's low-precision list, and its input is the low-precision output of the previous
convolution): the grid would be off by the half type's rounding, and the custom backward would
meet gradients of another dtype than its saved tensors. :func:`fp32` runs the wrapped quantizer
with autocast off on fp32 tensors; the convolution after it casts for itself. Outside autocast,
on fp32 tensors, it adds one check and nothing else.
"""
from __future__ import annotations

import functools

import torch


def _low(t) -> bool:
    return isinstance(t, torch.Tensor) and t.dtype in (torch.float16, torch.bfloat16)


def fp32(quantizer):
    """Decorate a quantizer whose first argument is the tensor it quantizes."""

    @functools.wraps(quantizer)
    def run(x, *args, **kwargs):
        kind = x.device.type
        if not (torch.is_autocast_enabled(kind) or _low(x) or any(map(_low, args)) or any(map(_low, kwargs.values()))):
            return quantizer(x, *args, **kwargs)
        cast = lambda t: t.float() if _low(t) else t
        with torch.autocast(kind, enabled=False):
            return quantizer(cast(x), *map(cast, args), **{k: cast(v) for k, v in kwargs.items()})

    return run
