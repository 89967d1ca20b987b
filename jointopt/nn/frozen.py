"""The fixed-precision layer a frozen network is made of (fake-quant form, fine-tunable)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ..cost import LayerStats
from ..quant import WeightGrid, act_levels, init_step, quantize_activation, quantize_weight, weight_grid
from ..quant import weight_codes as _codes_and_steps
from ._op import LayerGeometry, run_op


class FrozenLayer(nn.Module):
    """A Conv1d/Conv2d/Linear with fixed per-output-channel weight bits and fixed input-activation bits.

    Pruned channels are physically absent: ``weight`` has only the kept output and input channels.
    The forward pass fake-quantizes with a learned step per channel (``log_step``, see
    :mod:`jointopt.quant`), so quantization-aware fine-tuning can continue and trains the steps too;
    the integer codes are :meth:`weight_codes`.

    Args:
        log_step: [C] log of the initial weight step per channel; default: each channel's
            error-minimising step.
        learn_clip: train the input quantizer's clip (False for a layer that reads the network's
            input: see :func:`jointopt.convert`).
    """

    def __init__(self, geometry: LayerGeometry, weight: torch.Tensor, bias, bits: torch.Tensor, act_bits: int,
                 act_signed: bool, act_clip: float, weight_bits: Sequence[int], act_choices: Sequence[int] = (),
                 log_step: Optional[torch.Tensor] = None, learn_clip: bool = True):
        super().__init__()
        self.geometry = geometry
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.register_buffer("bits", bits.detach().to(torch.int64).clone())
        if log_step is None:
            log_step = torch.zeros(self.bits.shape, dtype=self.weight.dtype, device=self.weight.device)
            for b in torch.unique(self.bits).tolist():
                rows = self.bits == b
                if b > 0 and bool(rows.any()):
                    log_step[rows] = init_step(self.weight.detach()[rows], int(b)).log().to(log_step.dtype)
        self.log_step = nn.Parameter(log_step.detach().to(self.weight.dtype).reshape(self.bits.shape).clone())
        self.act_bits = int(act_bits)
        self.act_signed = bool(act_signed)
        self.act_clip = nn.Parameter(torch.tensor(float(act_clip), device=self.weight.device), requires_grad=learn_clip)
        self.weight_bits = tuple(weight_bits)  # the search's candidate widths, for cost statistics
        self.act_choices = tuple(act_choices) or (self.act_bits,)
        self.quantize = True
        self._grid: Optional[Tuple[tuple, WeightGrid]] = None  # (what it was built for, the grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.quantize:
            return run_op(self.geometry, x, self.weight, self.bias)
        x = quantize_activation(x, self.act_clip, (self.act_bits,), None, self.act_signed)
        return run_op(self.geometry, x, quantize_weight(self.weight, self.bits, self.log_step, self.grid()), self.bias)

    def grid(self) -> WeightGrid:
        """The weight grid of ``bits``, rebuilt only when the bits (the tensor or its contents), the
        weight's dtype, device or shape change: a fine-tuning step does not rebuild it."""
        key = (self.bits, self.bits._version, self.weight.dtype, self.weight.device, self.weight.shape)
        cached = self._grid
        if cached is None or cached[0][0] is not key[0] or cached[0][1:] != key[1:]:
            self._grid = cached = (key, weight_grid(self.bits, self.weight))
        return cached[1]

    def weight_codes(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Integer weight codes [C, ...] (int32) and per-channel steps [C]; the forward uses codes · step."""
        return _codes_and_steps(self.weight, self.bits, self.log_step)

    def act_scale(self) -> float:
        """Scale of the input-activation quantizer (real value = code · scale)."""
        _, hi = act_levels(self.act_bits, self.act_signed)
        return float(self.act_clip.detach().clamp_min(1e-8)) / hi

    def stats(self, name: str = "") -> LayerStats:
        g = self.geometry
        dtype = self.weight.dtype
        counts = torch.tensor([float((self.bits == b).sum()) for b in self.weight_bits], dtype=dtype)
        fan_in = torch.tensor(float(self.weight.shape[1]), dtype=dtype)
        kept_in = torch.tensor(float(g.in_channels), dtype=dtype)
        act_bits = self.act_choices
        act_probs = torch.tensor([1.0 if b == self.act_bits else 0.0 for b in act_bits])
        return LayerStats(name, g.kind, g.in_channels, g.out_channels, g.kernel_size, g.stride, g.groups,
                          g.in_spatial, g.out_spatial, self.weight_bits, act_bits, kept_in, fan_in, counts,
                          act_probs.to(dtype), g.depthwise)

    def extra_repr(self) -> str:
        g = self.geometry
        hist = {b: int((self.bits == b).sum()) for b in sorted(set(self.bits.tolist()))}
        return f"{g.kind}, {g.in_channels}->{g.out_channels}, bits={hist}, act_bits={self.act_bits}"
