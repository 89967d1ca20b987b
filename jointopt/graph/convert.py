"""``convert``: an ordinary network in, a searchable network out."""
from __future__ import annotations

import copy
import itertools
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import UnsupportedOpError
from ..nn import LayerGeometry
from ..nn.layers import SearchableLayer
from ..nn.selectors import GroupGate, SearchState
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
            every activation quantizer (use real data when you can). The clips of layers that read
            the network's input stay there (not trained): make the batch cover the input's range.
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
    explicit_padding(gm, space.exclude)
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
    network.to(_device_of(source, inputs))  # the selectors and clips made above start on the CPU
    for _, layer in network.searchable_layers():
        layer.bind(dict(network.gates.items()))
    _fix_data_clips(network, inputs)
    network.train(was_training)
    return network


def _device_of(model: nn.Module, inputs) -> torch.device:
    """Where the searchable network lives: with the model's weights (else with the example input)."""
    for tensor in itertools.chain(model.parameters(), model.buffers(), inputs):
        if isinstance(tensor, torch.Tensor):
            return tensor.device
    return torch.device("cpu")


def _fix_data_clips(network: SearchableNetwork, inputs) -> None:
    """Stop learning the input clip of every layer whose input carries no gradient (the network's
    input, or what only parameter-free or frozen operations made of it).

    PACT's gradient of a clip is the gradient of the inputs above it, so learning it would make such a
    layer compute the gradient of its whole input in every step only for this — on the quickstart's
    CNN a backward of 0.40 ms for the first convolution instead of 0.09 ms — while it is zero as long
    as no input exceeds the clip, which starts at the example batch's maximum (the quickstart's input
    clip never moved when it was learned). Inputs beyond it are clipped. Found by one float forward
    pass of two examples that records which layers' inputs require a gradient.
    """
    reads_grad, hooks = {}, []
    for name, layer in network.searchable_layers():
        hooks.append(layer.register_forward_pre_hook(
            lambda module, args, name=name: reads_grad.__setitem__(name, bool(args[0].requires_grad))))
    mode, training = network.mode, network.training
    try:
        with torch.enable_grad():
            network.eval().set_mode("float")(*(x[:2] if isinstance(x, torch.Tensor) else x for x in inputs))
    finally:
        for h in hooks:
            h.remove()
        network.set_mode(mode).train(training)
    for name, layer in network.searchable_layers():
        if not reads_grad.get(name, True):
            layer.act_clip.requires_grad_(False)


def _side_padding(module: nn.Module, name: str) -> Tuple[List[int], List[int]]:
    """(before, after) padding of each spatial dimension, as the module pads its input."""
    dims = len(module.kernel_size)
    if module.padding == "valid":
        return [0] * dims, [0] * dims
    if module.padding == "same":  # as PyTorch pads: the odd extra element goes after
        total = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]
        return [t // 2 for t in total], [t - t // 2 for t in total]
    if isinstance(module.padding, str):
        raise UnsupportedOpError(f"cannot convert {name!r}: padding={module.padding!r} is not a PyTorch padding")
    return list(module.padding), list(module.padding)


def explicit_padding(gm: fx.GraphModule, exclude: Sequence[str] = ()) -> None:
    """Give every Conv1d/Conv2d plain symmetric zero padding, so the searchable layer (which runs
    ``F.conv*(..., padding=...)``) computes exactly what the module computed.

    ``padding="same"``/``"valid"`` become numbers; padding the convolution cannot express itself
    (``padding_mode="reflect"``/``"replicate"``/``"circular"``, or the asymmetric padding of
    ``"same"`` with an even kernel) becomes an explicit ``F.pad`` node in front of it, which the
    graph analysis treats as channel-wise and the exports write as a pad operation.
    """
    modules = dict(gm.named_modules())
    changed = False
    for node in list(gm.graph.nodes):
        module = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(module, (nn.Conv1d, nn.Conv2d)) or node.target in exclude:
            continue
        before, after = _side_padding(module, node.target)
        mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
        if before == after and (mode == "constant" or not any(before)):
            if module.padding != tuple(before):
                module.padding, changed = tuple(before), True
            module.padding_mode = "zeros"
            continue
        pads = [p for b, a in zip(reversed(before), reversed(after)) for p in (b, a)]  # F.pad: last dimension first
        with gm.graph.inserting_before(node):
            padded = gm.graph.call_function(F.pad, (node.args[0], tuple(pads)), {"mode": mode})
        node.args = (padded,) + tuple(node.args[1:])
        module.padding, module.padding_mode, changed = (0,) * len(before), "zeros", True
    if changed:
        gm.graph.lint()
        gm.recompile()


def _replace_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)
