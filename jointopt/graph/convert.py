"""``convert``: an ordinary network in, a searchable network out."""
from __future__ import annotations

import copy
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import fx, nn

from ..nn.layers import SearchableLayer
from ..nn.selectors import GroupGate, SearchState
from ..nn._op import LayerGeometry
from ..space import SearchSpace
from .analysis import analyze
from .fold import fold_bn as _fold_bn
from .fold import trace
from .network import SearchableNetwork


def _as_tuple(example_input) -> Tuple[torch.Tensor, ...]:
    return tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)


def _input_ranges(gm: fx.GraphModule, names: Sequence[str], inputs, signed: dict) -> dict:
    """Observed clip (max, or max |x| where signed) of each layer's input on ``inputs``."""
    ranges, hooks = {}, []
    modules = dict(gm.named_modules())
    for name in names:
        def hook(module, args, name=name):
            x = args[0].detach()
            value = x.abs().max() if signed[name] else x.clamp_min(0).max()
            ranges[name] = max(float(value), 1e-3)
        hooks.append(modules[name].register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            gm(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return ranges


def convert(model: nn.Module, example_input: Union[torch.Tensor, Tuple[torch.Tensor, ...]],
            space: Optional[SearchSpace] = None, *, fold_bn: bool = True) -> SearchableNetwork:
    """Make every Conv1d/Conv2d/Linear of ``model`` searchable.

    Args:
        model: any torch.fx-traceable network (it is copied, not modified). A trained network can
            be passed as it is: BatchNorms that follow a conv/linear are folded into it.
        example_input: a representative batch; it fixes the shapes and initialises the clip of
            every activation quantizer (use real data when you can).
        space: the choices (default: weights ``(0, 2, 4, 8)`` per channel, activations 8 bit).
        fold_bn: fold BatchNorm into the preceding layer (the weights that are quantized are
            the weights that are deployed).

    Returns:
        A :class:`SearchableNetwork` in ``soft`` mode and the model's train/eval state.
    """
    space = space or SearchSpace()
    inputs = _as_tuple(example_input)
    was_training = model.training
    source = copy.deepcopy(model).eval()
    gm = _fold_bn(source, inplace=True) if fold_bn else trace(source)
    analysis = analyze(gm, inputs, space.exclude)
    state = SearchState(mode="soft", sampling=space.sampling)
    prune = space.prune
    gates = {gid: GroupGate(info.size, prune and info.prunable, space.keep_init)
             for gid, info in analysis.groups.items()}
    signed = {name: info.act_signed for name, info in analysis.layers.items()}
    clips = _input_ranges(gm, list(analysis.layers), inputs, signed)
    for name, info in analysis.layers.items():
        module = gm.get_submodule(name)
        geometry = LayerGeometry.of(module, info.in_spatial, info.out_spatial)
        layer = SearchableLayer(module, geometry, space.nonzero_bits, space.act_bits, state, info.out_group,
                                info.in_segments, info.act_signed, clips[name])
        _replace_submodule(gm, name, layer)
    network = SearchableNetwork(gm, gates, state, analysis, space)
    for _, layer in network.searchable_layers():
        layer.bind(dict(network.gates.items()))
    network.train(was_training)
    return network


def _replace_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)
