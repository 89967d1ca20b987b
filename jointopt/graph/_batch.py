"""The soft statistics of every searchable layer at once, for cost models with a vectorised form.

One search step evaluates the regulariser once; building a ``LayerStats`` per layer costs a few
dozen small tensor operations per layer, a visible part of the step on a CPU for networks with many
thin layers. :class:`BatchPlan` gathers, when the network is first costed, the per-layer constants
and index maps that turn all selector logits into a :class:`~jointopt.cost.LayerBatch` with a
handful of tensor operations; ``CostModel.batch_cost`` then costs the whole network in one
expression. ``jointopt.testing.check_batch_cost`` checks a model's vectorised form against its
per-layer one.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch

from ..cost import LayerBatch, LayerTable
from ..nn.layers import SearchableLayer


class BatchPlan:
    """Per-layer constants and index maps of one network, in one dtype and on one device.

    ``keep`` of every output channel of every layer is one gather from the concatenated keep
    probabilities of the prunable groups (non-prunable and ungated channels read a constant 1);
    ``out_at_bits`` is a [layers, channels] 0/1 matrix times the keep-weighted bit probabilities;
    ``kept_in`` is a [layers, gate channels] matrix (entries = flatten repeat) times the keep
    probabilities plus the constant inputs.
    """

    def __init__(self, named_layers: List[Tuple[str, SearchableLayer]], gates, device: torch.device,
                 dtype: torch.dtype):
        layers = [layer for _, layer in named_layers]
        self.layers = layers
        self.device, self.dtype = device, dtype
        self.gates = [g for g in gates if g.prunable]
        offset, start = 0, {}
        for gate in self.gates:
            start[id(gate)] = offset
            offset += gate.size
        one = offset  # index of the constant 1 appended after the gate probabilities
        like = dict(dtype=dtype, device=device)
        out_index, row_of = [], []
        kept_in = torch.zeros(len(layers), offset + 1, **like)
        const_in = torch.zeros(len(layers), **like)
        for row, layer in enumerate(layers):
            gate = layer.gate_of(layer.out_group)
            n = layer.geometry.out_channels
            base = start.get(id(gate)) if gate is not None else None
            out_index += list(range(base, base + n)) if base is not None else [one] * n
            row_of += [row] * n
            for seg in layer.in_segments:
                seg_gate = layer.gate_of(seg.group)
                if seg_gate is None:
                    const_in[row] += float(seg.size) * seg.repeat
                elif id(seg_gate) in start:
                    b = start[id(seg_gate)]
                    kept_in[row, b:b + seg_gate.size] += seg.repeat
                else:  # a group that cannot be pruned: all of it, always
                    const_in[row] += float(seg_gate.size) * seg.repeat
        self.out_index = torch.tensor(out_index, dtype=torch.long, device=device)
        self.out_rows = torch.zeros(len(layers), len(out_index), **like)
        self.out_rows[torch.tensor(row_of, device=device), torch.arange(len(out_index), device=device)] = 1.0
        self.kept_in, self.const_in = kept_in, const_in
        geometry = [layer.geometry for layer in layers]
        self.dense = torch.tensor([g.groups == 1 for g in geometry], **like)
        self.fan_const = torch.tensor([0.0 if g.groups == 1 else float(g.in_channels // g.groups) for g in geometry],
                                      **like)
        first = layers[0]
        self.table = LayerTable(
            names=tuple(name for name, _ in named_layers), kinds=tuple(g.kind for g in geometry),
            weight_bits=first.weight_bits, act_bits=first.act_bits,
            in_channels=torch.tensor([float(g.in_channels) for g in geometry], **like),
            out_channels=torch.tensor([float(g.out_channels) for g in geometry], **like),
            groups=torch.tensor([float(g.groups) for g in geometry], **like),
            kernel_numel=torch.tensor([float(math.prod(g.kernel_size)) if g.kernel_size else 1.0 for g in geometry],
                                      **like),
            out_numel=torch.tensor([float(math.prod(g.out_spatial)) if g.out_spatial else 1.0 for g in geometry],
                                   **like),
            weight_widths=torch.tensor(first.weight_bits, **like), act_widths=torch.tensor(first.act_bits, **like))
        # one activation width: the probabilities are the constant 1 (no selector to differentiate)
        self.fixed_act = torch.ones(len(layers), 1, **like) if len(first.act_bits) == 1 else None

    @staticmethod
    def applies(layers: List[SearchableLayer]) -> bool:
        """All layers share their weight and activation widths (so one [L, B] tensor holds them)."""
        return bool(layers) and all(l.weight_bits == layers[0].weight_bits and l.act_bits == layers[0].act_bits
                                    for l in layers)

    def batch(self, temperature: float) -> LayerBatch:
        """The soft allocation at ``temperature``, as ``SearchableLayer.stats`` computes it per layer."""
        t = temperature
        if self.gates:
            logits = torch.cat([g.logits for g in self.gates])
            keep = torch.cat([torch.sigmoid(logits / t), torch.ones(1, device=logits.device, dtype=logits.dtype)])
        else:
            keep = torch.ones(1, device=self.device, dtype=self.dtype)
        bit_logits = torch.cat([layer.bit_logits for layer in self.layers])
        probs = torch.softmax(bit_logits / t, dim=-1) * keep[self.out_index].unsqueeze(1)
        kept_in = self.kept_in @ keep + self.const_in
        return LayerBatch(self.table, kept_in=kept_in, fan_in=kept_in * self.dense + self.fan_const,
                          out_at_bits=self.out_rows @ probs, act_probs_fn=lambda: self.act_probs(t))

    def act_probs(self, temperature: float) -> torch.Tensor:
        if self.fixed_act is not None:
            return self.fixed_act
        return torch.softmax(torch.stack([l.act_logits for l in self.layers]) / temperature, dim=-1)


def batch_plan(network) -> Optional[BatchPlan]:
    """The network's plan, built on first use and again when its layers, dtype or device change;
    None when its layers do not share their widths."""
    named = network.searchable_layers()
    layers = [layer for _, layer in named]
    if not layers:
        return None
    logits = layers[0].bit_logits
    plan = network.__dict__.get("_batch_plan")
    if plan is None or plan.device != logits.device or plan.dtype != logits.dtype or layers != plan.layers:
        plan = BatchPlan(named, network.gates.values(), logits.device, logits.dtype) if BatchPlan.applies(layers) \
            else None
        object.__setattr__(network, "_batch_plan", plan)
    return plan
