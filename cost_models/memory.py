"""Memory: bits of the stored conv/linear weights (per-channel bit-widths, pruned channels free)."""
from __future__ import annotations

import torch

from jointopt.cost import CostModel, LayerStats


class MemoryCost(CostModel):
    """Σ over kept weights of their bit-width, in bits (displayed in kB = 1000 bytes)."""

    name = "memory"
    unit = "bit"
    description = "weight storage: sum over kept weights of their bits (kB = 1000 bytes)"
    display_unit = "kB"
    display_scale = 1 / 8000

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        bits = torch.tensor(layer.weight_bits, dtype=layer.out_at_bits.dtype, device=layer.out_at_bits.device)
        return (layer.weights_at_bits() * bits).sum()
