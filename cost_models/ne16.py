"""NE16: analytical tile model of a bit-serial convolution accelerator, in cycles.

NE16 reads 8-bit activations in input tiles of 5×5×16 (3×3 mode) and writes output tiles of
3×3×32. Its weights are processed bit-serially in 3×3 mode. A layer runs as loops over
``ceil(Ho/3)·ceil(Wo/3)`` spatial tiles × ``ceil(Cout/32)`` output-channel tiles ×
``ceil(Cin/16)`` input-channel tiles; per (spatial, output, input) tile it loads the input tile,
offsets the weights and runs one matrix-vector step, and per (spatial, output) tile it
normalises/quantizes and streams the result out. With ``k`` the number of output channels in the
tile (32 in a full tile, the remainder in the last one) and ``b`` the weight width:

=====================  =======================================================================
step                   cycles
=====================  =======================================================================
load input tile        3×3 and depthwise: 6 + 5·5·ceil(16·8/256); 1×1: 10 + 3·3·ceil(16·8/256)
weight offset          6 (depthwise: 6 + k)
matrix-vector          3×3 and depthwise: 6 + k·b; 1×1: 6 + k (the bits of a 1×1 weight run in parallel)
update indices         2
normalise/quantize     9 + k  (32-bit per-channel scale through 4 multipliers)
stream out             3 + 3·3·ceil(32·8/256) + 1
=====================  =======================================================================

Memory moves 256 bits per cycle (load and stream out above); weights stream during the
matrix-vector step and add nothing. Because ``k`` enters linearly and Σ k over a job's output tiles
is its channel count, the cost is linear in the (soft) channel counts plus tile overheads whose
counts go through ``ceil`` with a straight-through gradient.

How layers map onto the engine:

* Each weight-width group of a layer runs as its own job (its channels, all kept input channels).
* 1×1 convolutions and Linear layers (a 1×1 output) use 1×1 mode; 3×3 convolutions use 3×3 mode.
  Larger or non-square kernels are split into pieces, each a full job over the same output
  tiles: either ``ceil(kh/3)·ceil(kw/3)`` zero-padded 3×3 pieces, or ``floor(kh/3)·floor(kw/3)``
  3×3 pieces plus one 1×1 piece per remaining tap — whichever is cheaper. Conv1d is a 1-row Conv2d.
* Depthwise convolutions use the depthwise mode: tiles of 16 channels, no input-channel loop,
  kernels padded to 3×3 pieces.
* A grouped convolution runs as ``groups`` convolutions of ``out/groups`` channels each.
* Stride only enters through the output size (strided mode).
* Activations are 8-bit on NE16: narrower activation widths are costed as 8 bits (the data are
  stored in bytes), wider ones raise :class:`~jointopt.errors.ConfigError`. With
  ``strict_act_bits=True`` any non-8-bit width that can be chosen is an error.
* Weight widths 2–8 run as they are, 1-bit weights as 2-bit; wider ones are an error.
* During the search the counts are expectations, so every weight-width group with a non-zero
  expected count pays its tile overheads; at the frozen (hard) allocation empty groups cost 0.
"""
from __future__ import annotations

import math
from typing import List, Tuple

import torch

from jointopt.cost import CostModel, LayerStats
from jointopt.errors import ConfigError

from ._common import is_absent, kernel_plane, next_width, out_plane, ste_ceil


class Ne16Cost(CostModel):
    """Cycles per inference on NE16 from its tile schedule (see the module docstring).

    Args:
        strict_act_bits: raise instead of costing narrower activation widths as 8 bits.
    """

    name = "ne16"
    unit = "cycle"
    description = "latency of the NE16 bit-serial accelerator (analytical tile model, 8-bit activations)"
    display_unit = "M cycles"
    display_scale = 1e-6

    # hardware constants; a subclass can change them to model a variant of the engine
    IN_TILE: Tuple[int, int, int] = (5, 5, 16)
    OUT_TILE: Tuple[int, int, int] = (3, 3, 32)
    DW_CHANNELS = 16
    FIFO = 6
    LOAD_1X1 = 10
    UPDATE_IDX = 2
    NQ_BASE = 9
    NQ_SCALE_BITS = 32
    MULTIPLIERS = 4
    STREAMOUT_BASE = 4
    MEMORY_BITS = 256
    ACT_BITS = 8
    WEIGHT_WIDTHS = (2, 3, 4, 5, 6, 7, 8)

    def __init__(self, strict_act_bits: bool = False):
        self.strict_act_bits = bool(strict_act_bits)

    # -- per-step latencies --------------------------------------------------------------------
    def load_cycles(self, mode: str) -> int:
        beats = math.ceil(self.IN_TILE[2] * self.ACT_BITS / self.MEMORY_BITS)
        if mode == "1x1":
            return self.LOAD_1X1 + self.OUT_TILE[0] * self.OUT_TILE[1] * beats
        return self.FIFO + self.IN_TILE[0] * self.IN_TILE[1] * beats

    def streamout_cycles(self, depth: int) -> int:
        beats = math.ceil(depth * self.ACT_BITS / self.MEMORY_BITS)
        return self.STREAMOUT_BASE + self.OUT_TILE[0] * self.OUT_TILE[1] * beats

    @property
    def nq_per_channel(self) -> float:
        return self.NQ_SCALE_BITS / 8 / self.MULTIPLIERS

    # -- jobs ----------------------------------------------------------------------------------
    def job_cycles(self, mode: str, channels: torch.Tensor, bits: int, fan_in: torch.Tensor,
                   spatial_tiles: int, groups: int = 1) -> torch.Tensor:
        """Cycles of one job: ``channels`` output channels at ``bits`` in ``mode`` (3x3, 1x1, dw)."""
        if mode == "dw":
            tiles = ste_ceil(channels / self.DW_CHANNELS)
            fixed = (self.load_cycles("dw") + self.FIFO + self.FIFO + self.UPDATE_IDX + self.NQ_BASE
                     + self.streamout_cycles(self.DW_CHANNELS))
            per_channel = 1 + bits + self.nq_per_channel  # weight offset k, matrix-vector k·b, normquant k
            return spatial_tiles * (tiles * fixed + channels * per_channel)
        out_tiles = groups * ste_ceil(channels / (groups * self.OUT_TILE[2]))
        in_tiles = ste_ceil(fan_in / self.IN_TILE[2])
        inner_fixed = self.load_cycles(mode) + self.FIFO + self.FIFO + self.UPDATE_IDX
        inner_per_channel = bits if mode == "3x3" else 1
        outer_fixed = self.NQ_BASE + self.streamout_cycles(self.OUT_TILE[2])
        inner = in_tiles * (out_tiles * inner_fixed + channels * inner_per_channel)
        return spatial_tiles * (inner + out_tiles * outer_fixed + channels * self.nq_per_channel)

    @staticmethod
    def pieces(kernel: Tuple[int, int], depthwise: bool) -> List[Tuple[int, int]]:
        """Ways to run a kernel as (number of 3×3 pieces, number of 1×1 pieces)."""
        kh, kw = kernel
        if depthwise:
            return [(math.ceil(kh / 3) * math.ceil(kw / 3), 0)]
        if (kh, kw) == (3, 3):
            return [(1, 0)]
        if (kh, kw) == (1, 1):
            return [(0, 1)]
        full = (kh // 3) * (kw // 3)
        return [(math.ceil(kh / 3) * math.ceil(kw / 3), 0), (full, kh * kw - 9 * full)]

    # -- the layer -----------------------------------------------------------------------------
    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        self._check_act_bits(layer)
        ho, wo = out_plane(layer)
        spatial_tiles = math.ceil(ho / self.OUT_TILE[0]) * math.ceil(wo / self.OUT_TILE[1])
        depthwise = layer.depthwise
        groups = 1 if depthwise else layer.groups
        options = []
        for n3, n1 in self.pieces(kernel_plane(layer), depthwise):
            total = torch.zeros((), dtype=layer.out_at_bits.dtype, device=layer.out_at_bits.device)
            for i, width in enumerate(layer.weight_bits):
                channels = layer.out_at_bits[i]
                if is_absent(channels):
                    continue  # an empty width group is no job at all
                bits = next_width(width, self.WEIGHT_WIDTHS, "weights", self.name)
                if depthwise:
                    total = total + n3 * self.job_cycles("dw", channels, bits, layer.fan_in, spatial_tiles)
                    continue
                if n3:
                    total = total + n3 * self.job_cycles("3x3", channels, bits, layer.fan_in, spatial_tiles, groups)
                if n1:
                    total = total + n1 * self.job_cycles("1x1", channels, bits, layer.fan_in, spatial_tiles, groups)
            options.append(total)
        return options[0] if len(options) == 1 else torch.minimum(options[0], options[1])

    def _check_act_bits(self, layer: LayerStats) -> None:
        for j, a in enumerate(layer.act_bits):
            if a == self.ACT_BITS or is_absent(layer.act_probs[j]):
                continue
            if a > self.ACT_BITS or self.strict_act_bits:
                raise ConfigError(
                    f"cost model 'ne16': layer {layer.name or '?'} may use {a}-bit activations, but NE16 "
                    f"takes {self.ACT_BITS}-bit activations only; search act_bits=(8,)"
                    + ("" if a > self.ACT_BITS else " or use Ne16Cost(strict_act_bits=False)")
                )

    def __repr__(self) -> str:
        return f"Ne16Cost(strict_act_bits={self.strict_act_bits})"
