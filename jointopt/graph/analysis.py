"""Trace-level analysis: which channels are coupled, what is searchable, what is excluded and why.

Every tensor's channel dimension (dim 1) is described as a list of :class:`Segment` — runs of
channels that come from one *channel group*. A Conv/Linear starts a new group; a residual add or
an elementwise product *unites* the groups of its operands (their channels must be pruned
together); a concatenation lists its inputs' segments one after the other; a flatten multiplies a
segment's width by the spatial size; a depthwise conv passes its input's groups through.
"""
from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import fx, nn

from ..cost import is_depthwise
from ..errors import UnsupportedOpError
from ..nn.layers import Segment
from . import _ops as ops


@dataclass
class LayerInfo:
    """A Conv/Linear node the search will wrap."""

    name: str  # qualified module name
    node: str
    out_group: str
    in_segments: List[Segment]
    act_signed: bool
    in_spatial: Tuple[int, ...]
    out_spatial: Tuple[int, ...]
    note: str = ""


@dataclass
class GroupInfo:
    """A set of output channels that are kept or pruned together."""

    id: str
    size: int
    producers: List[str] = field(default_factory=list)  # layers writing these channels
    consumers: List[str] = field(default_factory=list)  # layers reading them
    couplings: List[str] = field(default_factory=list)  # why producers were united
    fixed: List[str] = field(default_factory=list)  # why the group cannot be pruned

    @property
    def prunable(self) -> bool:
        return not self.fixed


@dataclass
class Analysis:
    layers: Dict[str, LayerInfo]
    groups: Dict[str, GroupInfo]
    excluded: Dict[str, str]  # layer name -> reason
    reshapes: Dict[str, List[Segment]]  # reshape/view node -> output segments (rewritten on freeze)


class _UnionFind:
    def __init__(self):
        self.parent: Dict[str, str] = {}

    def add(self, x: str) -> None:
        self.parent.setdefault(x, x)

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # keep the earlier-created group as the representative: stable names
            first, second = sorted((ra, rb), key=lambda g: self.order[g])
            self.parent[second] = first
            return first
        return ra


class _Analyzer:
    def __init__(self, gm: fx.GraphModule, exclude: Sequence[str]):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.exclude = set(exclude)
        self.uf = _UnionFind()
        self.uf.order = {}
        self.sizes: Dict[str, int] = {}
        self.fixed: Dict[str, List[str]] = {}
        self.couplings: Dict[str, List[str]] = {}
        self.producers: Dict[str, List[str]] = {}
        self.consumers: Dict[str, List[str]] = {}
        self.chan: Dict[fx.Node, Optional[List[Segment]]] = {}
        self.nonneg: Dict[fx.Node, bool] = {}
        self.layers: Dict[str, LayerInfo] = {}
        self.excluded: Dict[str, str] = {}
        self.reshapes: Dict[str, List[Segment]] = {}

    # -- groups -----------------------------------------------------------------------------------
    def new_group(self, gid: str, size: int) -> str:
        self.uf.add(gid)
        self.uf.order[gid] = len(self.uf.order)
        self.sizes[gid] = size
        return gid

    def fix(self, segments: Optional[List[Segment]], reason: str) -> None:
        for seg in segments or []:
            if seg.group is not None:
                self.fixed.setdefault(seg.group, []).append(reason)

    def unite(self, a: List[Segment], b: List[Segment], why: str) -> None:
        if [(s.size, s.repeat) for s in a] == [(s.size, s.repeat) for s in b]:
            for sa, sb in zip(a, b):
                if sa.group is None or sb.group is None:
                    self.fix([sa, sb], f"{why} with the network input")
                else:
                    self.couplings.setdefault(sa.group, []).append(why)
                    self.uf.union(sa.group, sb.group)
        else:
            self.fix(a + b, f"{why} joins tensors whose channels come from differently sized groups")

    # -- helpers ----------------------------------------------------------------------------------
    def shape(self, node) -> Optional[Tuple[int, ...]]:
        meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def error(self, node: fx.Node, what: str) -> UnsupportedOpError:
        return UnsupportedOpError(
            f"cannot convert node {node.name!r} ({what}): {ops.SUPPORTED_HELP}. "
            "Make it a module and pass exclude=[...] to leave a layer out, or rewrite the op."
        )

    def tensor_args(self, node: fx.Node) -> List[fx.Node]:
        out = []
        for a in node.all_input_nodes:
            if self.shape(a) is not None and self.chan.get(a) is not None:
                out.append(a)
        return out

    # -- main walk --------------------------------------------------------------------------------
    def run(self) -> Analysis:
        for node in self.gm.graph.nodes:
            self.visit(node)
        return self.finish()

    def visit(self, node: fx.Node) -> None:
        shape = self.shape(node)
        if node.op == "placeholder":
            if shape is not None and len(shape) >= 2:
                gid = self.new_group(f"input_{node.name}", shape[1])
                self.fix([Segment(gid, shape[1])], "network input")
                self.chan[node] = [Segment(gid, shape[1])]
                self.nonneg[node] = False
            return
        if node.op == "output":
            for arg in node.all_input_nodes:
                self.fix(self.chan.get(arg), "reaches the network output")
            return
        if node.op == "get_attr" or shape is None:
            self.chan[node] = None
            return
        if node.op == "call_module":
            self.visit_module(node, self.modules[node.target], shape)
        else:
            self.visit_function(node, node.target, shape)

    def visit_module(self, node: fx.Node, module: nn.Module, shape) -> None:
        src = node.args[0] if node.args else None
        in_chan = self.chan.get(src)
        if isinstance(module, ops.SEARCHABLE_MODULES):
            self.visit_layer(node, module, shape, in_chan)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            self.fix(in_chan, f"BatchNorm {node.target!r} does not directly follow a conv/linear and cannot be folded")
            self.pass_through(node, src)
            self.nonneg[node] = False
        elif type(module) in ops.ACTIVATION:
            self.activation(node, src, *ops.ACTIVATION[type(module)])
        elif isinstance(module, ops.PASS_MODULES):
            self.pass_through(node, src)
        elif isinstance(module, nn.Flatten):
            self.reshape(node, src, shape)
        elif isinstance(module, nn.Softmax):
            self.fix(in_chan, f"softmax {node.target!r} mixes channels")
            self.pass_through(node, src)
        else:
            raise self.error(node, f"module {node.target!r} of type {type(module).__name__}")

    def visit_layer(self, node, module, shape, in_chan) -> None:
        name = node.target
        in_shape = self.shape(node.args[0])
        if isinstance(module, nn.Linear) and len(in_shape) != 2:
            raise self.error(node, f"Linear {name!r} applied to a {len(in_shape)}-D tensor; only [batch, features] is supported")
        if in_chan is None:
            raise self.error(node, f"{type(module).__name__} {name!r} whose input has no channel structure")
        out_c = shape[1]
        groups = getattr(module, "groups", 1)
        in_c = in_shape[1]
        if name in self.exclude:
            self.excluded[name] = "excluded by the user"
            self.fix(in_chan, f"feeds excluded layer {name!r}")
            gid = self.new_group(node.name, out_c)
            self.fix([Segment(gid, out_c)], f"written by excluded layer {name!r}")
            self.chan[node] = [Segment(gid, out_c)]
            self.nonneg[node] = False
            return
        note = ""
        if is_depthwise(in_c, out_c, groups):  # channel i in -> channel i out: one group on both sides
            out_segments = list(in_chan)
            for seg in in_chan:
                if seg.group is not None:
                    self.couplings.setdefault(seg.group, []).append(f"depthwise conv {name!r} keeps its input's channels")
            note = "depthwise: shares its producer's channel group"
        else:
            gid = self.new_group(node.name, out_c)
            out_segments = [Segment(gid, out_c)]
            if groups > 1:
                reason = (f"grouped convolution {name!r} (groups={groups}): pruning would break the group "
                          "structure, so only bit-widths are searched")
                self.fix(in_chan, reason)
                self.fix(out_segments, reason)
                note = f"grouped (groups={groups}): bit-width search only"
        out_group = out_segments[0].group if len(out_segments) == 1 else None
        if len(out_segments) != 1 or out_segments[0].repeat != 1:
            # a depthwise conv fed by a concatenation: keep its channels fixed
            self.fix(out_segments, f"depthwise conv {name!r} reads a concatenation")
        for seg in in_chan:
            if seg.group is not None:
                self.consumers.setdefault(seg.group, []).append(name)
        if out_group is not None:
            self.producers.setdefault(out_group, []).append(name)
        self.layers[name] = LayerInfo(name, node.name, out_group, list(in_chan), not self.nonneg.get(node.args[0], False),
                                      tuple(in_shape[2:]), tuple(shape[2:]), note)
        self.chan[node] = out_segments
        self.nonneg[node] = False

    def visit_function(self, node: fx.Node, target, shape) -> None:
        key = target
        src = node.args[0] if node.args else None
        if key in ops.ACTIVATION:
            self.activation(node, src, *ops.ACTIVATION[key])
        elif key in ops.PASS_FUNCTIONS or key in ops.PASS_METHODS:
            self.pass_through(node, src)
        elif key in ops.ADD_LIKE or key in ops.MUL_LIKE:
            self.elementwise(node, key in ops.ADD_LIKE)
        elif key in ops.DIV_LIKE:
            self.divide(node)
        elif key in ops.CAT:
            self.cat(node, shape)
        elif key in ops.RESHAPE:
            self.reshape(node, src, shape)
        elif key in ops.REDUCE:
            self.reduce(node, src, shape)
        elif key in ("clamp", torch.clamp, "clamp_min"):
            low = node.kwargs.get("min", node.args[1] if len(node.args) > 1 else None)
            if isinstance(low, (int, float)) and low > 0:
                self.fix(self.chan.get(src), f"clamp {node.name!r} maps 0 to {low}")
            self.pass_through(node, src)
            self.nonneg[node] = isinstance(low, (int, float)) and low >= 0
        elif key in (torch.softmax, torch.log_softmax, "softmax", "log_softmax",
                     torch.nn.functional.softmax, torch.nn.functional.log_softmax):
            self.fix(self.chan.get(src), f"softmax {node.name!r} mixes channels")
            self.pass_through(node, src)
        else:
            raise self.error(node, f"{node.op} {ops.describe_target(target)}")

    # -- node kinds -------------------------------------------------------------------------------
    def pass_through(self, node, src) -> None:
        self.chan[node] = self.chan.get(src)
        self.nonneg[node] = self.nonneg.get(src, False)

    def activation(self, node, src, nonneg: bool, zero_at_zero: bool) -> None:
        if not zero_at_zero:
            self.fix(self.chan.get(src), f"{node.name!r} maps 0 to a non-zero value, so a pruned channel would still "
                                         "contribute")
        self.chan[node] = self.chan.get(src)
        self.nonneg[node] = nonneg or (self.nonneg.get(src, False) and node.target in ("relu",))

    def elementwise(self, node, additive: bool) -> None:
        tensors = self.tensor_args(node)
        others = [a for a in node.args if not (isinstance(a, fx.Node) and a in tensors)]
        if not tensors:
            self.chan[node] = None
            return
        base = self.chan[tensors[0]]
        kind = "residual add" if additive else "elementwise product"
        for other in tensors[1:]:
            self.unite(base, self.chan[other], f"{kind} at {node.name!r}")
        if additive:
            consts = [a for a in others if not (isinstance(a, (int, float)) and a == 0)]
            if consts:
                for t in tensors:
                    self.fix(self.chan[t], f"{node.name!r} adds a constant or parameter, so a pruned channel is not zero")
        self.chan[node] = base
        subtracts = node.target in ("sub", "sub_") or getattr(node.target, "__name__", "") in ("sub", "isub")
        self.nonneg[node] = all(self.nonneg.get(t, False) for t in tensors) and not subtracts

    def divide(self, node) -> None:
        """``a / b``: a pruned channel of ``a`` stays zero, one of ``b`` would divide by zero.

        The channels of ``a`` and ``b`` are coupled (as in a product) and ``b``'s are never pruned,
        so the hard-mode network computes what the frozen one computes (no 0 / 0).
        """
        numerator = node.args[0] if node.args else node.kwargs.get("input")
        denominator = node.args[1] if len(node.args) > 1 else node.kwargs.get("other")
        tensors = self.tensor_args(node)
        if not tensors:
            self.chan[node] = None
            return
        if isinstance(denominator, fx.Node) and denominator in tensors:
            self.fix(self.chan.get(denominator), f"{node.name!r} divides by it, so a pruned channel would divide by zero")
        base = self.chan.get(tensors[0])
        for other in tensors[1:]:
            self.unite(base, self.chan[other], f"division at {node.name!r}")
        self.chan[node] = base
        operands = (numerator, denominator)
        self.nonneg[node] = all(self.nonneg.get(a, False) if isinstance(a, fx.Node) else
                                isinstance(a, (int, float)) and a >= 0 for a in operands)

    def cat(self, node, shape) -> None:
        tensors = node.args[0]
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        rank = len(shape)
        dim = dim % rank
        chans = [self.chan.get(t) for t in tensors]
        if any(c is None for c in chans):
            raise self.error(node, "torch.cat of a tensor without channel structure")
        if dim == 1:
            self.chan[node] = [seg for c in chans for seg in c]
        elif dim == 0:
            raise self.error(node, "torch.cat along the batch dimension")
        else:
            for c in chans[1:]:
                self.unite(chans[0], c, f"concatenation along dim {dim} at {node.name!r}")
            self.chan[node] = chans[0]
        self.nonneg[node] = all(self.nonneg.get(t, False) for t in tensors)

    def reshape(self, node, src, shape) -> None:
        in_shape = self.shape(src)
        chan = self.chan.get(src)
        if chan is None or in_shape is None:
            raise self.error(node, "reshape of a tensor without channel structure")
        self.nonneg[node] = self.nonneg.get(src, False)
        if len(shape) >= 2 and shape[1] == in_shape[1] and shape[0] == in_shape[0]:
            self.chan[node] = chan
        elif len(shape) == 2 and shape[0] == in_shape[0] and shape[1] == math.prod(in_shape[1:]):
            spatial = math.prod(in_shape[2:])
            self.chan[node] = [Segment(s.group, s.size, s.repeat * spatial) for s in chan]
        else:
            raise self.error(node, f"reshape from {list(in_shape)} to {list(shape)} mixes channels with other dimensions")
        if node.op != "call_module":
            self.reshapes[node.name] = self.chan[node]

    def reduce(self, node, src, shape) -> None:
        in_shape = self.shape(src)
        dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        if dims is None:
            raise self.error(node, "reduction over every dimension")
        dims = {d % len(in_shape) for d in ((dims,) if isinstance(dims, int) else dims)}
        if 1 in dims or 0 in dims:
            raise self.error(node, f"reduction over dimension(s) {sorted(dims)} (channels or batch)")
        self.pass_through(node, src)

    def finish(self) -> Analysis:
        find = self.uf.find
        groups: Dict[str, GroupInfo] = {}
        for gid in self.sizes:
            root = find(gid)
            info = groups.setdefault(root, GroupInfo(root, self.sizes[root]))
            info.producers += self.producers.get(gid, [])
            info.consumers += self.consumers.get(gid, [])
            info.couplings += self.couplings.get(gid, [])
            info.fixed += self.fixed.get(gid, [])
        for info in groups.values():
            for attr in ("producers", "consumers", "couplings", "fixed"):
                setattr(info, attr, list(dict.fromkeys(getattr(info, attr))))

        def remap(segs):
            return [Segment(find(s.group) if s.group is not None else None, s.size, s.repeat) for s in segs]

        for layer in self.layers.values():
            layer.out_group = find(layer.out_group) if layer.out_group is not None else None
            layer.in_segments = remap(layer.in_segments)
        reshapes = {k: remap(v) for k, v in self.reshapes.items()}
        return Analysis(self.layers, groups, self.excluded, reshapes)


def analyze(gm: fx.GraphModule, example_inputs: Tuple[torch.Tensor, ...], exclude: Sequence[str] = ()) -> Analysis:
    """Propagate shapes with ``example_inputs`` and build the channel groups of ``gm``."""
    from torch.fx.passes.shape_prop import ShapeProp

    # ShapeProp prints the traceback of a failing node itself: keep it off the terminal, say it in one line
    with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
        try:
            ShapeProp(gm).propagate(*example_inputs)
        except Exception as exc:
            cause = exc.__cause__ or exc
            shapes = [list(x.shape) for x in example_inputs if isinstance(x, torch.Tensor)]
            first = (str(cause).strip().splitlines() or [""])[0]
            raise UnsupportedOpError(f"the model does not run on an input of shape "
                                     f"{shapes[0] if len(shapes) == 1 else shapes}: {type(cause).__name__}: {first}; "
                                     "check the input shape (inspect --input-shape, or the data set the config names)"
                                     ) from exc
    unknown = set(exclude) - {n for n, m in gm.named_modules() if isinstance(m, ops.SEARCHABLE_MODULES)}
    if unknown:
        layers = sorted(n for n, m in gm.named_modules() if isinstance(m, ops.SEARCHABLE_MODULES))
        raise UnsupportedOpError(f"exclude names {sorted(unknown)} are not Conv/Linear layers of the model; "
                                 f"its layers are: {', '.join(layers)}")
    return _Analyzer(gm, exclude).run()
