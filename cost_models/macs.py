"""MACs: multiply-accumulates per inference, linear in kept outputs and kept inputs."""
from __future__ import annotations

import torch

from jointopt.cost import CostModel, LayerBatch, LayerStats


class MacsCost(CostModel):
    """Σ over layers of expected kept outputs × kept inputs per output × kernel size × output positions.

    Bit-widths do not change it; pruning an output channel lowers it in the layer and, through the
    consumers' kept inputs, in every layer that reads the channel.
    """

    name = "macs"
    unit = "MAC"
    description = "multiply-accumulates per inference (bit-widths ignored)"
    display_unit = "MMAC"
    display_scale = 1e-6

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        return layer.macs_at_bits().sum()

    def batch_cost(self, batch: LayerBatch) -> torch.Tensor:
        """:meth:`layer_cost` summed over every layer, in one expression."""
        return (batch.kept_out * batch.fan_in * batch.kernel_numel * batch.out_numel).sum()
