"""Bit-operations: MACs × weight bits × activation bits."""
from __future__ import annotations

import torch

from jointopt.cost import CostModel, LayerBatch, LayerStats

from ._common import widths_like


class BitOpsCost(CostModel):
    """Σ over weight widths ``b`` of MACs at ``b`` × ``b`` × expected activation bits.

    A common proxy for the energy of a bit-serial or bit-scalable datapath.
    """

    name = "bitops"
    unit = "bitop"
    description = "bit-operations per inference: MACs x weight bits x activation bits"
    display_unit = "Gbitop"
    display_scale = 1e-9

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        bits = widths_like(layer, layer.weight_bits)
        return (layer.macs_at_bits() * bits).sum() * layer.mean_act_bits()

    def batch_cost(self, batch: LayerBatch) -> torch.Tensor:
        """:meth:`layer_cost` summed over every layer, in one expression."""
        macs = batch.fan_in * batch.kernel_numel * batch.out_numel  # per kept output channel
        return (batch.out_at_bits @ batch.weight_widths * macs * batch.mean_act_bits()).sum()
