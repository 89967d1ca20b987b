"""The structure of the integer network: which operations and tensors a traced network needs.

This part depends only on the graph (the topology, which modules are Conv/Linear layers and the
tensor shapes), never on weights or activation ranges, so the ``ram`` cost model can compute,
from layer statistics, the very arena the export allocates.

**Nodes.** Every fx node that computes a tensor is classified (:func:`classify`): ``input``,
``layer`` (a Conv/Linear), ``alias`` (flatten/view/dropout: no data change in NCHW order),
``clamp`` (ReLU, ReLU6, Hardtanh, clamp with constants), ``maxpool``, ``avgpool`` (incl. mean and
adaptive pooling), ``pad`` (zeros, reflect, replicate, circular), ``add`` (two tensors),
``concat`` (channels) and ``lut`` (any other elementwise function of one tensor, tabulated).

**Representations.** A value may be needed at several scales. A layer reads its input at its own
activation quantizer's scale (``layer:NAME``); an add, an average pool, a table or the network
output read a scale calibrated for that value (``cal``); a network output produced by a layer is
kept as int32 accumulators (``logits``). Clamps, max pools, aliases and concatenations pass the
representations their consumers need back to their inputs, so a value feeding two layers is
requantized from the int32 accumulator twice (once per scale) rather than rounded twice (a pad, like a
max pool, copies codes and passes them back too). A clamp
whose input has no other consumer is fused into the producer's output range.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import ExportError

Terms = Tuple[Tuple[Optional[str], float], ...]  # numel = Σ multiplier · channels(layer); None = constant


@dataclass
class GNode:
    """One tensor-valued fx node as the integer network sees it."""

    name: str
    kind: str
    inputs: List[str]
    shape: Tuple[int, ...]
    params: dict = field(default_factory=dict)
    terms: Terms = ()
    target: str = ""  # module path of a layer


def _is_layer(module) -> bool:
    from ..nn.frozen import FrozenLayer
    from ..nn.layers import SearchableLayer

    return isinstance(module, (FrozenLayer, SearchableLayer))


_ALIAS_MODULES = (nn.Identity, nn.Flatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
_LUT_MODULES = (nn.Hardswish, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Hardsigmoid, nn.ELU, nn.CELU,
                nn.SELU, nn.Softplus, nn.Mish, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink)
_ALIAS_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, F.dropout, F.dropout1d, F.dropout2d}
_ALIAS_METHODS = {"view", "reshape", "flatten", "contiguous", "clone", "detach", "squeeze", "unsqueeze", "view_as",
                  "reshape_as", "float", "dropout"}
_CLAMP_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.hardtanh, torch.clamp, torch.clip}
_LUT_FUNCTIONS = {F.hardswish, F.silu, F.gelu, F.leaky_relu, F.sigmoid, torch.sigmoid, torch.tanh, F.tanh,
                  F.hardsigmoid, F.elu, torch.neg, operator.neg, torch.exp, torch.abs}
_ARITHMETIC = {operator.add, operator.iadd, torch.add, operator.sub, operator.isub, torch.sub, operator.mul,
               operator.imul, torch.mul, operator.truediv, torch.div}
_SHAPE_FUNCTIONS = {getattr, operator.getitem, operator.mul, operator.floordiv, operator.add, operator.sub, len}
_AVG = {F.avg_pool1d: 1, F.avg_pool2d: 2, F.adaptive_avg_pool1d: 1, F.adaptive_avg_pool2d: 2}
_MAX = {F.max_pool1d: 1, F.max_pool2d: 2, F.adaptive_max_pool1d: 1, F.adaptive_max_pool2d: 2}


def _pair(value, dims: int, fill: int) -> Tuple[int, int]:
    values = list(value) if isinstance(value, (tuple, list)) else [value] * dims
    values = [fill if v is None else int(v) for v in values]
    return (1, values[0]) if dims == 1 else (values[0], values[1])


def _spatial(shape: Tuple[int, ...]) -> Tuple[int, int]:
    """(H, W) of a per-sample shape in the planar convention."""
    rest = shape[1:]
    return (rest[0], rest[1]) if len(rest) == 2 else (1, rest[0]) if len(rest) == 1 else (1, 1)


def planar(shape: Tuple[int, ...]) -> Tuple[int, int, int]:
    """(C, H, W): a Conv1d tensor has H = 1, a vector H = W = 1."""
    if len(shape) > 3:
        raise ExportError(f"tensors of rank {len(shape) + 1} are not supported by the integer runtime (at most [N, C, H, W])")
    return (shape[0],) + _spatial(shape) if shape else (1, 1, 1)


def _args(node: fx.Node, names: List[str], value_of: Callable) -> dict:
    """Positional and keyword arguments of ``node`` by name, nodes replaced by their values."""
    out = {}
    for i, a in enumerate(node.args[1:], 1):
        if i < len(names):
            out[names[i]] = a
    out.update(node.kwargs)
    return {k: fx.node.map_arg(v, value_of) for k, v in out.items()}


def _pool_params(kind: str, node: fx.Node, module, dims: int, in_shape, out_shape, value_of) -> dict:
    """kernel / stride / padding / dilation of a pooling node, in (H, W) form."""
    h, w = _spatial(in_shape)
    adaptive = (module is not None and "Adaptive" in type(module).__name__) or \
        (module is None and "adaptive" in getattr(node.target, "__name__", ""))
    if adaptive:
        out_size = module.output_size if module is not None else _args(node, ["input", "output_size"], value_of)["output_size"]
        oh, ow = _pair(out_size, dims, None) if dims == 2 else (1, _pair(out_size, 1, None)[1])
        oh, ow = oh or h, ow or w
        if h % oh or w % ow:
            raise ExportError(f"adaptive pooling {node.name!r} from {h}x{w} to {oh}x{ow} has unequal windows; the integer "
                              "runtime supports output sizes that divide the input size")
        return {"kernel": (h // oh, w // ow), "stride": (h // oh, w // ow), "padding": (0, 0), "dilation": (1, 1)}
    if module is not None:
        p = {k: getattr(module, k, None) for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                                   "count_include_pad", "divisor_override")}
    else:
        names = ["input", "kernel_size", "stride", "padding"] + (
            ["ceil_mode", "count_include_pad", "divisor_override"] if kind == "avgpool" else ["dilation", "ceil_mode"])
        p = _args(node, names, value_of)
    if p.get("ceil_mode") or p.get("divisor_override"):
        raise ExportError(f"pooling {node.name!r} uses ceil_mode or divisor_override, which the integer runtime does "
                          "not support")
    kernel = _pair(p["kernel_size"], dims, 1)
    padding = _pair(p.get("padding") or 0, dims, 0)
    if kind == "avgpool" and p.get("count_include_pad") is False and any(padding):
        raise ExportError(f"average pooling {node.name!r} with count_include_pad=False and padding is not supported")
    stride = _pair(p.get("stride") or p["kernel_size"], dims, 1)
    dilation = _pair(p.get("dilation") or 1, dims, 1)
    return {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}


def _reduce_params(node: fx.Node, in_shape, value_of) -> dict:
    """``x.mean(dims)`` / ``x.amax(dims)`` over spatial dimensions as a pooling window."""
    args = _args(node, ["input", "dim", "keepdim"], value_of)
    dims = args.get("dim")
    rank = len(in_shape) + 1
    dims = [dims] if isinstance(dims, int) else list(dims) if dims is not None else list(range(rank))
    dims = sorted(d % rank for d in dims)
    if not dims or dims[0] < 2:
        raise ExportError(f"{node.name!r} reduces over the batch or channel dimension; the integer runtime only "
                          "averages or takes maxima over spatial dimensions")
    h, w = _spatial(in_shape)
    spatial = list(range(2, rank))
    kh = h if (len(spatial) == 2 and spatial[0] in dims) else 1
    kw = w if spatial and spatial[-1] in dims else 1
    return {"kernel": (kh, kw), "stride": (kh, kw), "padding": (0, 0), "dilation": (1, 1)}


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_params(node: fx.Node, in_shape, value_of) -> dict:
    """``F.pad`` of the spatial dimensions as (top, bottom, left, right) and a mode."""
    args = _args(node, ["input", "pad", "mode", "value"], value_of)
    pad, mode = [int(p) for p in args["pad"]], args.get("mode", "constant")
    spatial = len(in_shape) - 1
    if mode not in PAD_MODES or len(pad) > 2 * spatial or any(p < 0 for p in pad) or (args.get("value") or 0) != 0:
        raise ExportError(f"padding {node.name!r} (pad={pad}, mode={mode!r}, value={args.get('value')}): the integer "
                          "runtime pads spatial dimensions by >= 0 with zeros, reflect, replicate or circular")
    pad = pad + [0] * (2 * spatial - len(pad))  # F.pad lists the last dimension first
    left, right = pad[0], pad[1]
    top, bottom = (pad[2], pad[3]) if spatial == 2 else (0, 0)
    return {"pads": (top, bottom, left, right), "mode": mode}


def _clamp_bounds(node: fx.Node, module, value_of) -> Tuple[float, float]:
    if module is not None:
        if isinstance(module, nn.ReLU):
            return 0.0, math.inf
        return float(module.min_val), float(module.max_val)  # Hardtanh and ReLU6
    target = node.target
    if target in (F.relu, torch.relu, "relu", "relu_"):
        return 0.0, math.inf
    if target is F.relu6:
        return 0.0, 6.0
    if target is F.hardtanh:
        args = _args(node, ["input", "min_val", "max_val"], value_of)
        return float(args.get("min_val", -1.0)), float(args.get("max_val", 1.0))
    args = _args(node, ["input", "min", "max"], value_of)
    lo, hi = args.get("min"), args.get("max")
    if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
        raise ExportError(f"clamp {node.name!r} has tensor bounds; the integer runtime needs constant bounds")
    return (-math.inf if lo is None else float(lo)), (math.inf if hi is None else float(hi))


def _data_inputs(node: fx.Node, tensors: set) -> List[str]:
    found: List[str] = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n.name) if n.name in tensors else None)
    return found


def classify(node: fx.Node, modules: Dict[str, nn.Module], tensors: set, shapes: Dict[str, tuple],
             value_of: Callable) -> GNode:
    """The integer-network view of one tensor-valued fx node.

    Raises:
        ExportError: the node computes something the integer runtime cannot (the message names it).
    """
    module = modules.get(node.target) if node.op == "call_module" else None
    inputs = _data_inputs(node, tensors)
    shape = shapes[node.name]
    in_shape = shapes[inputs[0]] if inputs else ()
    target = node.target
    what = f"{node.op} {target if node.op != 'call_module' else type(module).__name__}"

    def make(kind, **params):
        return GNode(node.name, kind, inputs, shape, params)

    if node.op == "placeholder":
        return GNode(node.name, "input", [], shape)
    if module is not None:
        if _is_layer(module):
            g = GNode(node.name, "layer", inputs, shape, {"geometry": module.geometry})
            g.target = node.target
            return g
        if isinstance(module, _ALIAS_MODULES):
            return make("alias")
        if isinstance(module, (nn.ReLU, nn.Hardtanh)):
            return make("clamp", bounds=_clamp_bounds(node, module, value_of))
        if isinstance(module, _LUT_MODULES):
            return make("lut")
        for kind, classes in (("maxpool", (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)),
                              ("avgpool", (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d))):
            if isinstance(module, classes):
                dims = 1 if type(module).__name__.endswith("1d") else 2
                return make(kind, **_pool_params(kind, node, module, dims, in_shape, shape, value_of))
    elif node.op == "call_function":
        if target in _ALIAS_FUNCTIONS:
            return make("alias")
        if target in _CLAMP_FUNCTIONS:
            return make("clamp", bounds=_clamp_bounds(node, None, value_of))
        if target in _LUT_FUNCTIONS:
            return make("lut")
        if target in (torch.cat, torch.concat):
            dim = _args(node, ["tensors", "dim"], value_of).get("dim", 0)
            if dim % (len(shape) + 1) != 1:
                raise ExportError(f"concatenation {node.name!r} along dimension {dim}: the integer runtime "
                                  "concatenates channels (dim=1) only")
            return make("concat")
        if target in _ARITHMETIC:
            return _arithmetic(node, inputs, shape, shapes, target)
        if target in _AVG:
            return make("avgpool", **_pool_params("avgpool", node, None, _AVG[target], in_shape, shape, value_of))
        if target in _MAX:
            return make("maxpool", **_pool_params("maxpool", node, None, _MAX[target], in_shape, shape, value_of))
        if target is torch.mean:
            return make("avgpool", **_reduce_params(node, in_shape, value_of))
        if target is F.pad:
            return make("pad", **_pad_params(node, in_shape, value_of))
        if target is torch.amax:
            return make("maxpool", **_reduce_params(node, in_shape, value_of))
    elif node.op == "call_method":
        if target in _ALIAS_METHODS:
            return GNode(node.name, "alias", inputs[:1], shape)
        if target in ("relu", "relu_", "clamp", "clamp_"):
            return make("clamp", bounds=_clamp_bounds(node, None, value_of))
        if target in ("sigmoid", "tanh", "neg", "abs", "exp"):
            return make("lut")
        if target in ("add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"):
            base = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}
            return _arithmetic(node, inputs, shape, shapes, base[target.rstrip("_")])
        if target == "mean":
            return make("avgpool", **_reduce_params(node, in_shape, value_of))
        if target == "amax":
            return make("maxpool", **_reduce_params(node, in_shape, value_of))
    raise ExportError(f"the integer runtime cannot run {node.name!r} ({what}); supported: Conv1d/Conv2d/Linear, "
                      "ReLU/ReLU6/Hardtanh/clamp, elementwise activations, add, channel concatenation, max/average/"
                      "global pooling, mean, padding, flatten/view")


def _arithmetic(node, inputs, shape, shapes, target) -> GNode:
    if len(inputs) == 1:
        return GNode(node.name, "lut", inputs, shape)  # tensor with a constant: elementwise
    if target in (operator.add, operator.iadd, torch.add) and len(inputs) == 2 and "alpha" not in node.kwargs:
        if shapes[inputs[0]] != shapes[inputs[1]]:
            raise ExportError(f"add {node.name!r} broadcasts {shapes[inputs[0]]} with {shapes[inputs[1]]}; the integer "
                              "runtime adds tensors of equal shapes only")
        return GNode(node.name, "add", inputs, shape)
    raise ExportError(f"{node.name!r} ({getattr(target, '__name__', target)} of two tensors) is not supported by the "
                      "integer runtime: it adds tensors of equal shapes, and applies elementwise functions of one tensor")
