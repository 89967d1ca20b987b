"""``freeze``: the argmax choice of a searchable network as an ordinary, smaller network."""
from __future__ import annotations

import copy
from typing import List

import torch
from torch import fx, nn

from ..cost import LayerStats
from ..nn.frozen import FrozenLayer
from ..nn.layers import SearchableLayer


def freeze(network) -> fx.GraphModule:
    """Remove pruned channels and fix every choice.

    For each searchable layer: output channels whose group is pruned are removed, input channels
    (features, after a flatten) fed by pruned channels are removed, the order of what remains is
    preserved, and the chosen per-channel weight bits and the layer's activation bits are fixed.
    A depthwise layer keeps exactly its kept channels (``groups`` shrinks with them). Shapes
    written literally in ``view``/``reshape`` calls are rewritten. The result, in eval mode,
    computes what ``network`` computes in ``hard`` mode.
    """
    gm = copy.deepcopy(network.net)
    gates = dict(network.gates.items())
    layers = dict(network.searchable_layers())
    for name, layer in layers.items():
        _replace(gm, name, _freeze_layer(layer))
    _rewrite_reshapes(gm, network.analysis.reshapes, gates)
    gm.recompile()
    gm.train(network.training)
    return gm


def _freeze_layer(layer: SearchableLayer) -> FrozenLayer:
    g = layer.geometry
    out_mask = layer.out_mask()
    weight = layer.weight.detach()[out_mask]
    bias = None if layer.bias is None else layer.bias.detach()[out_mask]
    in_channels, groups = g.in_channels, g.groups
    if g.groups == 1:
        in_mask = layer.in_mask()
        weight = weight[:, in_mask]
        in_channels = int(in_mask.sum())
    elif g.depthwise:  # input channel i is output channel i: groups shrink with the kept channels
        in_channels = groups = int(out_mask.sum())
    geometry = g.with_channels(in_channels, int(out_mask.sum()), groups)
    bits = layer.hard_bits()[out_mask]
    return FrozenLayer(geometry, weight, bias, bits, layer.hard_act_bits(), layer.act_signed,
                       float(layer.act_clip.detach()), layer.weight_bits, layer.act_bits,
                       log_step=layer.hard_log_steps()[out_mask], learn_clip=layer.act_clip.requires_grad)


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def _rewrite_reshapes(gm: fx.GraphModule, reshapes, gates) -> None:
    for node in gm.graph.nodes:
        if node.name not in reshapes or node.op == "call_module":
            continue
        kept = 0
        for seg in reshapes[node.name]:
            gate = gates.get(seg.group)
            n = int(gate.hard_mask().sum()) if gate is not None else seg.size
            kept += n * seg.repeat
        target = node.target
        if target in ("view", "reshape") or target is torch.reshape:
            shape = list(node.args[1]) if len(node.args) == 2 and isinstance(node.args[1], (list, tuple)) \
                else list(node.args[1:])
            meta = node.meta.get("tensor_meta")
            if len(shape) >= 2:
                shape[1] = kept
                for i in range(2, len(shape)):
                    if isinstance(shape[i], int) and meta is not None:
                        shape[i] = int(meta.shape[i])
                node.args = (node.args[0], *shape)


def frozen_layer_stats(frozen: nn.Module) -> List[LayerStats]:
    """Hard statistics of every fixed-precision layer of a frozen network (exact counts)."""
    return [m.stats(name) for name, m in frozen.named_modules() if isinstance(m, FrozenLayer)]


def frozen_cost(frozen: nn.Module, model) -> torch.Tensor:
    from ..cost import get_cost_model

    return get_cost_model(model).network_cost(frozen_layer_stats(frozen))
