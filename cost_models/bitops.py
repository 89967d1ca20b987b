"""Bit-operations: MACs × weight bits × activation bits."""
from __future__ import annotations

import torch

from jointopt.cost import CostModel, LayerStats


class BitOpsCost(CostModel):
    name = "bitops"
    unit = "bitop"
    description = "bit-operations per inference: MACs x weight bits x activation bits"
    display_unit = "Gbitop"
    display_scale = 1e-9

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        bits = torch.tensor(layer.weight_bits, dtype=layer.out_at_bits.dtype, device=layer.out_at_bits.device)
        return (layer.macs_at_bits() * bits).sum() * layer.mean_act_bits()
