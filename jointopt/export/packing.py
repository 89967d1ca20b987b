"""A frozen network's layers as packed integers: what the ``npz`` and ``c`` formats store.

Each :class:`PackedLayer` holds the weight codes bit-packed at their per-channel widths (layout:
:mod:`jointopt.quant.packing`), the per-channel weight scales (``weight = code · scale``, zero point
0), the float bias, and the input-activation quantizer (``x_q = clamp(round(x / act_scale), lo, hi)``
with zero point 0; ``lo, hi = 0, 2^b - 1`` unsigned or ``±(2^(b-1) - 1)`` signed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np
import torch

from ..nn import LayerGeometry
from ..nn.frozen import FrozenLayer
from ..quant import act_levels
from ..quant.packing import channel_bit_offsets, pack_codes, packed_bits, unpack_codes
from .manifest import check_frozen, frozen_layers


@dataclass
class PackedLayer:
    """One Conv/Linear of a frozen network in integer form.

    Attributes:
        name: the layer's module path.
        geometry: kind, channels (kept ones only), kernel, stride, padding, dilation, groups.
        weight_shape: shape of the unpacked codes, ``[out, in / groups, *kernel]``.
        bits: weight bits of each output channel (uint8 [out]).
        weight: the packed codes (uint8).
        scale: per-output-channel weight scale (float32 [out]).
        bias: float32 [out] (zeros when ``has_bias`` is False).
        act_bits, act_signed, act_scale: the input-activation quantizer.
        weight_bits: the non-zero widths the search could choose (``bits`` are among them).
    """

    name: str
    geometry: LayerGeometry
    weight_shape: tuple
    bits: np.ndarray
    weight: np.ndarray
    scale: np.ndarray
    bias: np.ndarray
    has_bias: bool
    act_bits: int
    act_signed: bool
    act_scale: float
    weight_bits: tuple = ()

    @property
    def codes_per_channel(self) -> int:
        """Weights per output channel (C_in / groups x kernel, or the inputs of a Linear)."""
        return int(np.prod(self.weight_shape[1:]))

    @property
    def packed_bits(self) -> int:
        """Meaningful bits of the packed weights: Σ_c codes_per_channel · bits[c] (the memory cost)."""
        return packed_bits(self.bits, self.codes_per_channel)

    @property
    def bit_offsets(self) -> np.ndarray:
        """Where each output channel's codes start in the packed bit stream (bits, one per channel)."""
        return channel_bit_offsets(self.bits, self.codes_per_channel)

    @property
    def act_range(self) -> tuple:
        """The input activation codes ``(lo, hi)`` this layer's quantizer produces."""
        return act_levels(self.act_bits, self.act_signed)

    def codes(self) -> np.ndarray:
        """The unpacked integer codes (int32, ``weight_shape``)."""
        return unpack_codes(self.weight, self.bits, self.codes_per_channel).reshape(self.weight_shape)

    def dequantized(self) -> np.ndarray:
        """``codes · scale`` per channel: the weights the frozen network computes with (float32)."""
        shape = (-1,) + (1,) * (len(self.weight_shape) - 1)
        return self.codes().astype(np.float32) * self.scale.reshape(shape)


def act_scale32(layer: FrozenLayer) -> float:
    """The activation scale exactly as the fake-quantizer computes it (float32 arithmetic)."""
    _, hi = act_levels(layer.act_bits, layer.act_signed)
    return float(layer.act_clip.detach().float().clamp_min(1e-8) / hi)


def pack_layer(name: str, layer: FrozenLayer) -> PackedLayer:
    """One frozen layer as integer codes bit-packed per channel width, with its scales and bias."""
    codes, scale = layer.weight_codes()
    codes = codes.cpu().numpy()
    bits = layer.bits.cpu().numpy().astype(np.uint8)
    bias = layer.bias.detach().cpu().float().numpy() if layer.bias is not None else np.zeros(len(bits), np.float32)
    return PackedLayer(name, layer.geometry, tuple(codes.shape), bits,
                       pack_codes(codes.reshape(codes.shape[0], -1), bits),
                       scale.detach().cpu().float().numpy(), bias.astype(np.float32), layer.bias is not None,
                       layer.act_bits, layer.act_signed, act_scale32(layer),
                       tuple(sorted({int(b) for b in layer.weight_bits if b > 0} | set(bits.tolist()))))


def pack_network(frozen) -> List[PackedLayer]:
    """Every FrozenLayer of ``frozen`` in execution order, packed."""
    check_frozen(frozen)
    with torch.no_grad():
        return [pack_layer(name, layer) for name, layer in frozen_layers(frozen)]
