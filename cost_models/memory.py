"""Memory: bits of the stored conv/linear weights (per-channel bit-widths, pruned channels free).

``memory`` counts the weights only — the figure papers report, and what the packed export stores
as weight codes, to the bit. The per-output-channel bias and quantization scale are overhead,
reported separately by :meth:`MemoryCost.breakdown` and added to the cost by
``MemoryCost(include_overhead=True)``, registered as ``memory_total``.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch

from jointopt.cost import CostModel, LayerBatch, LayerStats
from jointopt.errors import ConfigError

from ._common import widths_like


class MemoryCost(CostModel):
    """Σ over kept weights of their bit-width, in bits (displayed in kB = 1000 bytes).

    Args:
        include_overhead: also count, per kept output channel, one bias of ``bias_bits`` and one
            weight scale of ``scale_bits`` (every searchable layer has both once BatchNorm is folded).
        bias_bits: storage of one bias value.
        scale_bits: storage of one per-channel weight scale.
    """

    name = "memory"
    unit = "bit"
    description = "weight storage: sum over kept weights of their bits (kB = 1000 bytes)"
    display_unit = "kB"
    display_scale = 1 / 8000

    def __init__(self, include_overhead: bool = False, bias_bits: int = 32, scale_bits: int = 32):
        if bias_bits < 0 or scale_bits < 0:
            raise ConfigError(f"bias_bits={bias_bits}, scale_bits={scale_bits}: storage sizes must be >= 0")
        self.include_overhead = bool(include_overhead)
        self.bias_bits = int(bias_bits)
        self.scale_bits = int(scale_bits)

    def weight_bits(self, layer: LayerStats) -> torch.Tensor:
        """Expected bits of the layer's stored weights."""
        return (layer.weights_at_bits() * widths_like(layer, layer.weight_bits)).sum()

    def overhead_bits(self, layer: LayerStats) -> Dict[str, torch.Tensor]:
        """Expected bits of the layer's biases and per-channel scales (one each per kept output)."""
        kept = layer.kept_out
        return {"bias": kept * self.bias_bits, "scale": kept * self.scale_bits}

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        cost = self.weight_bits(layer)
        if self.include_overhead:
            cost = cost + sum(self.overhead_bits(layer).values())
        return cost

    def batch_cost(self, batch: LayerBatch) -> torch.Tensor:
        """:meth:`layer_cost` summed over every layer, in one expression."""
        cost = (batch.out_at_bits @ batch.weight_widths * batch.fan_in * batch.kernel_numel).sum()
        if self.include_overhead:
            cost = cost + batch.out_at_bits.sum() * float(self.bias_bits + self.scale_bits)
        return cost

    def breakdown(self, layers: Sequence[LayerStats]) -> Dict[str, float]:
        """Network totals in bits: ``weights``, ``bias``, ``scale`` and their sum ``total``."""
        parts = {"weights": 0.0, "bias": 0.0, "scale": 0.0}
        for layer in layers:
            parts["weights"] += float(self.weight_bits(layer).detach())
            for key, value in self.overhead_bits(layer).items():
                parts[key] += float(value.detach())
        parts["total"] = parts["weights"] + parts["bias"] + parts["scale"]
        return parts

    def format(self, value: float) -> str:
        """kB as in the papers; MB (1000 kB) from 10,000 kB on, so ResNet-18 reads 11.26 MB."""
        kilobytes = float(value) * self.display_scale
        if abs(kilobytes) >= 10_000:
            return f"{kilobytes / 1000:,.4g} MB"
        return super().format(value)

    def __repr__(self) -> str:
        extra = f", bias_bits={self.bias_bits}, scale_bits={self.scale_bits}" if self.include_overhead else ""
        return f"{type(self).__name__}(include_overhead={self.include_overhead}{extra})"


class MemoryTotalCost(MemoryCost):
    """Weights plus per-channel bias and scale: what the deployed layer parameters occupy."""

    name = "memory_total"
    description = "weight storage plus per-channel bias and scale (32 bit each), kB = 1000 bytes"

    def __init__(self, bias_bits: int = 32, scale_bits: int = 32):
        super().__init__(include_overhead=True, bias_bits=bias_bits, scale_bits=scale_bits)
