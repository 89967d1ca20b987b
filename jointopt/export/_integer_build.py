"""Frozen network + calibration batch → :class:`~jointopt.export.integer.IntegerProgram`.

The structure comes from :mod:`._integer_plan`; this module fills in the numbers:

* a layer's input scale is its activation quantizer's step (``FrozenLayer.act_scale``, float32,
  as the fake quantizer computes it) and its clip;
* a *calibrated* scale (inputs of adds, average pools, tables and of a non-layer output) covers
  the range that value takes on the calibration batch in the fake-quantized network:
  ``max|v| / 127`` when it goes negative, else ``max v / 255`` with zero point -128;
* weight codes and steps come from ``FrozenLayer.weight_codes()``; biases are rounded to int32 in
  units of ``input scale · step[c]``;
* every rescaling is a fixed-point multiplier (:mod:`._fixed_point`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
import torch
from torch import fx

from ..errors import ExportError
from ..quant import act_levels
from ..quant.packing import pack_codes
from ._fixed_point import add_multipliers, f32, quantize_multipliers, round_to_codes
from ._integer_plan import SOp, Structure, structure
from .integer import (AddOp, AvgPoolOp, ClampOp, ConcatOp, ConvOp, Head, IntegerProgram, LutOp, MaxPoolOp, PadOp,
                      QTensor, QuantizeOp)
from ._integer_graph import planar

SUPPORTED_BITS = (2, 4, 8)


@dataclass(frozen=True)
class Rep:
    """How a tensor holds real values: ``real = (q - zero) · scale``, ``q`` in ``[lo, hi]``."""

    scale: float
    inv: float
    zero: int
    lo: int
    hi: int
    lo_real: float
    hi_real: float

    def code(self, value: float) -> int:
        """The stored code of a real bound, rounded as the quantizer rounds (infinite: the range end)."""
        if value == math.inf:
            return self.hi
        if value == -math.inf:
            return self.lo
        q = int(round_to_codes(np.array([value], np.float32), self.lo_real, self.hi_real, self.inv)[0]) + self.zero
        return min(max(q, self.lo), self.hi)


def _rep(amax: float, bits: int, signed: bool, step: float = None) -> Rep:
    lo, top = act_levels(bits, signed)
    a = f32(max(amax, 1e-8))
    step = f32(a / top) if step is None else step
    inv = f32(1.0 / step)
    if signed:
        return Rep(step, inv, 0, lo, top, -a, a)
    return Rep(step, inv, -128, -128, -128 + top, 0.0, a)


def layer_rep(layer) -> Rep:
    """The representation a FrozenLayer's activation quantizer reads its input in."""
    step = f32(layer.act_scale())  # float32 step of the fake quantizer: f32(clip / top)
    return _rep(float(layer.act_clip.detach()), int(layer.act_bits), bool(layer.act_signed), step)


def calibrate(gm: fx.GraphModule, x: torch.Tensor):
    """Shapes, (min, max) of every tensor node on ``x``, the values of the shape helpers, the output."""
    shapes: Dict[str, tuple] = {}
    ranges: Dict[str, Tuple[float, float]] = {}
    values: Dict[str, object] = {}
    batch = x.shape[0]

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            result = super().run_node(n)
            if isinstance(result, torch.Tensor) and result.is_floating_point() and result.dim() >= 1 \
                    and result.shape[0] == batch and n.op != "get_attr":
                shapes[n.name] = tuple(result.shape[1:])
                ranges[n.name] = (float(result.min()), float(result.max()))
            else:
                values[n.name] = result
            return result

    with torch.no_grad():
        out = Recorder(gm).run(x)
    return shapes, ranges, values, out


def _lut_function(node: fx.Node, modules, values, data: str):
    def apply(t: torch.Tensor) -> torch.Tensor:
        if node.op == "call_module":
            return modules[node.target](t)
        pick = lambda n: t if n.name == data else values[n.name]
        args, kwargs = fx.node.map_arg(node.args, pick), fx.node.map_arg(node.kwargs, pick)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        return node.target(*args, **kwargs)

    return apply


class _Builder:
    def __init__(self, gm, st: Structure, ranges, values):
        self.gm, self.st, self.ranges, self.values = gm, st, ranges, values
        self.modules = dict(gm.named_modules())
        self.fx_nodes = {n.name: n for n in gm.graph.nodes}
        self.reps: Dict[tuple, Rep] = {}
        self.tensors = []
        self.notes = []

    def rep(self, key) -> Rep:
        if key not in self.reps:
            if key[0] == "layer":
                self.reps[key] = layer_rep(self.modules[key[1]])
            else:
                lo, hi = self.ranges[key[1]]
                signed = lo < 0
                self.reps[key] = _rep(max(abs(lo), abs(hi)) if signed else hi, 8, signed)
        return self.reps[key]

    def make_tensors(self) -> None:
        for t in self.st.tensors:
            if t.key[0] == "scratch":  # one output row of int32 accumulators, then one channel's codes
                layer = self.modules[self.st.nodes[t.node].target]
                shape = (4 * planar(self.st.nodes[t.node].shape)[2] + int(np.prod(layer.weight.shape[1:])),)
                self.tensors.append(QTensor(t.index, f"{t.node}@scratch", shape, "int8", 1.0, 0, -128, 127, t.storage))
            elif t.key[0] == "logits":
                self.tensors.append(QTensor(t.index, f"{t.node}@out", t.shape, "int32", np.ones(1, np.float32), 0, 0, 0,
                                            t.storage))
            else:
                r = self.rep(t.key)
                label = f"layer:{t.key[1]}" if t.key[0] == "layer" else "cal"
                self.tensors.append(QTensor(t.index, f"{t.node}@{label}", t.shape, "int8", r.scale, r.zero, r.lo, r.hi,
                                            t.storage))

    def heads(self, op: SOp, factors) -> list:
        """One Head per output; ``factors(rep)`` → the real multiplier(s) from the int32 value to codes."""
        out = []
        for tensor, key in zip(op.outputs, op.keys):
            r = self.rep(key)
            lo, hi = max(r.lo, r.code(op.bounds[0])), min(r.hi, r.code(op.bounds[1]))
            mult, shift = quantize_multipliers(np.asarray(factors(r), dtype=np.float64))
            out.append(Head(tensor, mult, shift, r.zero, lo, hi))
        return out

    def conv(self, op: SOp) -> ConvOp:
        g = op.node
        layer = self.modules[g.target]
        geometry = g.params["geometry"]
        codes, steps = layer.weight_codes()
        codes = codes.detach().cpu().numpy().astype(np.int64)
        steps = steps.detach().cpu().double().numpy().reshape(-1)
        bits = layer.bits.detach().cpu().numpy().astype(np.uint8)
        bad = sorted(set(bits.tolist()) - set(SUPPORTED_BITS))
        if bad:
            raise ExportError(f"layer {g.target!r} has {bad}-bit weights; the C runtime supports 2, 4 and 8 bits")
        if isinstance(geometry.padding, str):
            raise ExportError(f"layer {g.target!r} uses padding={geometry.padding!r}; export needs numeric padding")
        in_rep = self.rep(("layer", g.target))
        s_in = np.float64(in_rep.scale)
        bias = layer.bias.detach().cpu().double().numpy() if layer.bias is not None else np.zeros(len(bits))
        bias_q = np.rint(bias / (s_in * steps))
        reach = max(abs(in_rep.lo - in_rep.zero), abs(in_rep.hi - in_rep.zero))
        bound = np.abs(bias_q) + reach * np.abs(codes.reshape(len(bits), -1)).sum(1)
        if not np.all(np.isfinite(bound)) or bound.max(initial=0) >= 2**31:
            raise ExportError(f"layer {g.target!r}: its int32 accumulator could overflow (bound {bound.max():.3g}); its "
                              "bias is far larger than input scale x weight step — fine-tune with a larger activation clip")
        heads = self.heads(op, lambda r: s_in * steps * np.float64(r.inv))
        logits = None
        if op.logits is not None:
            logits = op.logits
            self.tensors[logits].scale = (np.float32(in_rep.scale) * steps.astype(np.float32)).astype(np.float32)
        kind = geometry.kind
        if kind == "linear":
            kernel, stride, padding, dilation = (1, 1), (1, 1), (0, 0), (1, 1)
        else:
            two = (lambda v: (1, int(v[0]))) if kind == "conv1d" else (lambda v: (int(v[0]), int(v[1])))
            kernel, stride = two(geometry.kernel_size), two(geometry.stride)
            padding, dilation = (two(geometry.padding) if kind == "conv2d" else (0, int(geometry.padding[0]))), \
                two(geometry.dilation)
        in_shape = planar(self.st.nodes[g.inputs[0]].shape)
        if kind == "linear" and self.st.nodes[g.inputs[0]].shape != (in_shape[0],):
            raise ExportError(f"linear layer {g.target!r} is applied to a tensor of shape "
                              f"{self.st.nodes[g.inputs[0]].shape}; the integer runtime runs Linear on vectors")
        return ConvOp(g.target, kind, op.inputs[0], heads, logits, in_shape, planar(g.shape), int(geometry.groups),
                      kernel, stride, padding, dilation, pack_codes(codes.reshape(len(bits), -1), bits), bits,
                      bias_q.astype(np.int64).astype(np.int32), op.scratch)

    def add(self, op: SOp) -> AddOp:
        a, b = (self.tensors[i] for i in op.inputs)
        heads = []
        for tensor, key in zip(op.outputs, op.keys):
            r = self.rep(key)
            m_a, m_b, shift = add_multipliers(float(a.scale) * r.inv, float(b.scale) * r.inv)
            lo, hi = max(r.lo, r.code(op.bounds[0])), min(r.hi, r.code(op.bounds[1]))
            heads.append(Head(tensor, np.array([m_a], np.int32), np.array([shift], np.int8), r.zero, lo, hi,
                              np.array([m_b], np.int32)))
        return AddOp(op.node.name, op.inputs[0], op.inputs[1], heads)

    def lut(self, op: SOp) -> LutOp:
        g = op.node
        source = self.tensors[op.inputs[0]]
        r = self.rep(op.keys[0])
        codes = np.arange(-128, 128, dtype=np.int64)
        real = ((codes - source.zero).astype(np.float32) * np.float32(source.scale)).astype(np.float32)
        fn = _lut_function(self.fx_nodes[g.name], self.modules, self.values, g.inputs[0])
        with torch.no_grad():
            y = fn(torch.from_numpy(real)).float().numpy()
        lo_real, hi_real = max(r.lo_real, op.bounds[0]), min(r.hi_real, op.bounds[1])
        table = np.clip(round_to_codes(y, lo_real, hi_real, r.inv) + r.zero, r.lo, r.hi).astype(np.int8)
        return LutOp(g.name, op.inputs[0], op.outputs[0], table)

    def op(self, op: SOp):
        g = op.node
        if op.kind == "quantize":
            r = self.rep(op.keys[0])
            lo_real, hi_real = f32(max(r.lo_real, op.bounds[0])), f32(min(r.hi_real, op.bounds[1]))
            return QuantizeOp(g.name, op.outputs[0], lo_real, hi_real, r.inv, r.zero, r.lo, r.hi)
        if op.kind == "layer":
            return self.conv(op)
        if op.kind == "add":
            return self.add(op)
        if op.kind == "lut":
            return self.lut(op)
        in_shape = planar(self.st.nodes[g.inputs[0]].shape)
        p = g.params
        if op.kind == "avgpool":
            source = self.tensors[op.inputs[0]]
            n = p["kernel"][0] * p["kernel"][1]
            heads = self.heads(op, lambda r: [float(source.scale) / n * r.inv])
            return AvgPoolOp(g.name, op.inputs[0], heads, p["kernel"], p["stride"], p["padding"], in_shape, planar(g.shape))
        if op.kind == "maxpool":
            return MaxPoolOp(g.name, op.inputs[0], op.outputs[0], p["kernel"], p["stride"], p["padding"], p["dilation"],
                             in_shape, planar(g.shape))
        if op.kind == "pad":
            return PadOp(g.name, op.inputs[0], op.outputs[0], p["pads"], p["mode"], in_shape, planar(g.shape))
        if op.kind == "clamp":
            r = self.rep(op.keys[0])
            lo, hi = p["bounds"]
            return ClampOp(g.name, op.inputs[0], op.outputs[0], max(r.lo, r.code(lo)), min(r.hi, r.code(hi)))
        if op.kind == "concat":
            return ConcatOp(g.name, list(op.inputs), op.outputs[0])
        raise ExportError(f"no integer operation for {op.kind!r}")  # pragma: no cover


def build_program(frozen, example) -> IntegerProgram:
    """The integer program of ``frozen``, with calibrated scales from the batch ``example``.

    Raises:
        ExportError: the network contains an operation the integer runtime does not run, a weight
            width other than 2/4/8, or numbers that do not fit the fixed-point formats.
    """
    from .manifest import check_frozen

    gm = check_frozen(frozen)
    x = example.detach().float().cpu() if isinstance(example, torch.Tensor) else torch.as_tensor(example).float()
    was_training = gm.training
    gm.eval()
    try:
        shapes, ranges, values, _ = calibrate(gm, x)
        value_of = lambda n: values.get(n.name, torch.empty(0))
        st = structure(gm, shapes, value_of)
        b = _Builder(gm, st, ranges, values)
        b.make_tensors()
        ops = [b.op(op) for op in st.ops]
    finally:
        gm.train(was_training)
    program = IntegerProgram(b.tensors, ops, tuple(x.shape[1:]), st.output)
    counts = {f"out:{op.name}": op.out_shape[0] for op in program.conv_ops()}
    counts.update({f"scratch:{op.name}": op.codes_per_channel + 4 * op.out_shape[2] for op in program.conv_ops()})
    offsets, program.arena_bytes = st.plan(counts.__getitem__)
    for t in program.tensors:
        t.offset = offsets.get(t.storage, -1)
        if round(st.numel(st.tensors[t.index], counts.__getitem__)) != t.numel:
            raise ExportError(f"internal: size of {t.name} from channel counts differs from its shape {t.shape}")
    program.notes = [f"{len([k for k in b.reps if k[0] == 'cal'])} tensors use scales calibrated on "
                     f"{x.shape[0]} samples (inputs of adds, average pools, tables and the output)"]
    return program
