"""Operations, tensors and lifetimes of the integer network, from the classified graph.

:func:`structure` turns a traced network into a :class:`Structure`: the operations in execution
order, each tensor with its representation key and its size as a function of the kept channels
(``terms``), and which tensors share memory. Nothing here looks at weights or activation values;
``_integer_build`` fills in the numbers, ``jointopt.cost_models.ram`` sizes the same structure from layer
statistics. See :mod:`jointopt.export._integer_graph` for the rules.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from torch import fx

from ..errors import ExportError
from ._integer_graph import GNode, Terms, classify
from ._memory import plan_arena

REQUANTIZING = ("input", "layer", "add", "avgpool", "lut")  # can fuse a following clamp into their output range


@dataclass
class STensor:
    index: int
    node: str
    key: tuple  # ("layer", module path) | ("cal", node) | ("logits", node) | ("scratch", node)
    shape: Tuple[int, ...]
    dtype: str
    terms: Terms
    storage: int


@dataclass
class SOp:
    kind: str
    node: GNode
    inputs: List[int]
    outputs: List[int]
    keys: List[tuple]
    logits: Optional[int] = None
    scratch: Optional[int] = None
    bounds: Tuple[float, float] = (-math.inf, math.inf)  # fused clamp, in real units


@dataclass
class Structure:
    nodes: Dict[str, GNode]
    tensors: List[STensor]
    ops: List[SOp]
    output: int
    layers: List[str] = field(default_factory=list)  # module paths in execution order

    def storages(self) -> List[int]:
        return sorted({t.storage for t in self.tensors})

    def lifetimes(self) -> Dict[int, Tuple[int, int]]:
        """(first, last) operation index of every storage; the output lives past the last operation."""
        first: Dict[int, int] = {}
        last: Dict[int, int] = {}
        for i, op in enumerate(self.ops):
            for t in op.outputs + [x for x in (op.logits, op.scratch) if x is not None]:
                s = self.tensors[t].storage
                first.setdefault(s, i)
                last[s] = max(last.get(s, i), i)
            for t in op.inputs:
                s = self.tensors[t].storage
                last[s] = max(last.get(s, i), i)
        last[self.tensors[self.output].storage] = len(self.ops)
        return {s: (first[s], last[s]) for s in first}

    def numel(self, tensor: STensor, count: Callable[[str], float]):
        return sum(mult * (1 if source is None else count(source)) for source, mult in tensor.terms)

    def plan(self, count: Callable[[str], float]) -> Tuple[Dict[int, int], int]:
        """Arena offsets of every storage and the arena size, with channel counts from ``count``.

        ``count("out:NAME")`` is the number of output channels layer NAME keeps and
        ``count("scratch:NAME")`` its codes per output channel.
        """
        lives = self.lifetimes()
        storages = sorted(lives)
        sizes = [self.storage_bytes(s, count) for s in storages]
        offsets, arena = plan_arena([int(round(float(v))) for v in sizes], [lives[s] for s in storages])
        return dict(zip(storages, offsets)), arena

    def storage_bytes(self, storage: int, count: Callable[[str], float]):
        t = self.tensors[storage]
        return self.numel(t, count) * (4 if t.dtype == "int32" else 1)


def _terms(g: GNode, nodes: Dict[str, GNode]) -> Terms:
    if g.kind == "input":
        return ((None, float(math.prod(g.shape))),)
    if g.kind == "layer":
        channels = g.shape[0] if g.shape else 1
        return ((f"out:{g.target}", float(math.prod(g.shape)) / channels),)
    if g.kind == "concat":
        return tuple(t for i in g.inputs for t in nodes[i].terms)
    source = nodes[g.inputs[0]]
    if g.kind in ("avgpool", "maxpool", "pad"):
        # multiply first: (m · out) / in is exact when the result is a whole number, m · (out / in) is not
        return tuple((s, m * math.prod(g.shape) / math.prod(source.shape)) for s, m in source.terms)
    return source.terms


def _tensor_nodes(gm: fx.GraphModule, shapes: Dict[str, tuple]) -> Tuple[List[fx.Node], str]:
    out = None
    nodes = []
    for node in gm.graph.nodes:
        if node.op == "output":
            arg = node.args[0]
            if isinstance(arg, (tuple, list)) and len(arg) == 1:
                arg = arg[0]
            if not isinstance(arg, fx.Node) or arg.name not in shapes:
                raise ExportError("the integer runtime supports networks with one output tensor")
            out = arg.name
        elif node.name in shapes and node.op != "get_attr":
            nodes.append(node)
    return nodes, out


def structure(gm: fx.GraphModule, shapes: Dict[str, tuple], value_of: Callable) -> Structure:
    """The integer network's structure.

    Args:
        gm: a frozen (or searchable) network's traced module.
        shapes: per-sample shape of every tensor-valued node (nodes missing here are shape helpers).
        value_of: the concrete value of a non-tensor node (kernel sizes computed from shapes).
    """
    modules = dict(gm.named_modules())
    fx_nodes, output = _tensor_nodes(gm, shapes)
    names = set(shapes)
    nodes: Dict[str, GNode] = {}
    for node in fx_nodes:
        g = classify(node, modules, names, shapes, value_of)
        g.terms = _terms(g, nodes)
        nodes[g.name] = g
    consumers: Dict[str, List[str]] = {n: [] for n in nodes}
    for g in nodes.values():
        for i in dict.fromkeys(g.inputs):
            consumers[i].append(g.name)

    fused, bounds = {}, {}
    for g in nodes.values():  # a clamp whose input only feeds it becomes the producer's output range
        if g.kind != "clamp":
            continue
        src = g.inputs[0]
        root = fused.get(src, src)
        if len(consumers[src]) == 1 and src != output and nodes[root].kind in REQUANTIZING:
            fused[g.name] = root
            lo, hi = bounds.get(root, (-math.inf, math.inf))
            bounds[root] = (max(lo, g.params["bounds"][0]), min(hi, g.params["bounds"][1]))

    root = output
    while nodes[root].kind == "alias":
        root = nodes[root].inputs[0]
    output_key = ("logits", root) if nodes[root].kind == "layer" else ("cal", output)
    reps: Dict[str, List[tuple]] = {}
    for g in reversed(list(nodes.values())):
        keys: List[tuple] = []
        for c in consumers[g.name]:
            consumer = nodes[c]
            if consumer.kind == "layer":
                keys.append(("layer", consumer.target))
            elif consumer.kind in ("alias", "clamp", "maxpool", "concat", "pad"):
                keys.extend(reps[c])
            else:
                keys.append(("cal", g.name))
        if g.name == output:
            keys.append(output_key)
        reps[g.name] = list(dict.fromkeys(keys))
    return _emit(nodes, reps, fused, bounds, output, output_key)


def _emit(nodes, reps, fused, bounds, output, output_key) -> Structure:
    tensors: List[STensor] = []
    ops: List[SOp] = []
    where: Dict[Tuple[str, tuple], int] = {}

    def new(g: GNode, key, dtype="int8", alias_of=None, shape=None, terms=None) -> int:
        index = len(tensors)
        storage = tensors[alias_of].storage if alias_of is not None else index
        tensors.append(STensor(index, g.name, key, tuple(shape or g.shape), dtype, terms or g.terms, storage))
        where[(g.name, key)] = index
        return index

    for g in nodes.values():
        keys = reps[g.name]
        if not keys:
            continue  # computed but never used
        if g.kind in ("alias",) or g.name in fused:
            src = g.inputs[0]
            for key in keys:
                new(g, key, dtype="int32" if key[0] == "logits" else "int8", alias_of=where[(src, key)])
            continue
        if g.kind == "input":
            for key in keys:
                ops.append(SOp("quantize", g, [], [new(g, key)], [key], bounds=bounds.get(g.name, (-math.inf, math.inf))))
        elif g.kind in ("layer", "add", "avgpool"):
            if g.kind == "layer":
                inputs = [where[(g.inputs[0], ("layer", g.target))]]
            else:
                inputs = [where[(i, ("cal", i))] for i in g.inputs]
            op = SOp(g.kind, g, inputs, [], [], bounds=bounds.get(g.name, (-math.inf, math.inf)))
            for key in keys:
                if key[0] == "logits":
                    op.logits = new(g, key, dtype="int32")
                else:
                    op.outputs.append(new(g, key))
                    op.keys.append(key)
            if g.kind == "layer":
                op.scratch = new(g, ("scratch", g.name), shape=(0,), terms=((f"scratch:{g.target}", 1.0),))
            ops.append(op)
        elif g.kind == "lut":
            for key in keys:
                ops.append(SOp("lut", g, [where[(g.inputs[0], ("cal", g.inputs[0]))]], [new(g, key)], [key],
                               bounds=bounds.get(g.name, (-math.inf, math.inf))))
        else:  # clamp (not fused), maxpool, pad, concat: the same representation in and out
            for key in keys:
                inputs = [where[(i, key)] for i in g.inputs]
                ops.append(SOp(g.kind, g, inputs, [new(g, key)], [key]))
    out = where[(output, output_key)]
    layers = [op.node.target for op in ops if op.kind == "layer"]
    return Structure(nodes, tensors, ops, out, layers)
