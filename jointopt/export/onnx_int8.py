"""The ``onnx_int8`` format: the integer program as ONNX integer operators (QOperator form).

onnxruntime runs it with its integer kernels as written — no Q/DQ fusion is needed:
``QuantizeLinear`` for the input, ``QLinearConv`` for every Conv/Linear output that is requantized
(one per output scale), ``ConvInteger`` + int32 bias for a network output produced by a layer (the
logits are ``float(acc) · scale[c]``, as in the C runtime), ``com.microsoft`` ``QLinearAdd`` /
``QLinearAveragePool`` / ``QLinearGlobalAveragePool``, ``MaxPool``, ``Clip`` and ``Concat`` on
uint8, and a ``Gather`` from a 256-entry table for elementwise functions.

Numbers: every activation is UINT8 with zero point ``zero + 128`` (the C runtime's int8 code plus
128), every weight UINT8 with zero point 128 per output channel. 2- and 4-bit channels are stored
in 8-bit containers (their codes are valid 8-bit codes), so the file is not smaller than an int8
model; the packed formats (``c``, ``npz``) hold the savings. Unsigned 8-bit weights keep
onnxruntime's uint8 x uint8 path, which is exact: its uint8 x int8 kernels on AVX2 CPUs without VNNI
add pairs of products in 16 bits and saturate for weights beyond ±64 (issue 18, item 1).
onnxruntime rounds a requantization as ``round(acc · s_in · s_w / s_out)`` in float (ties to even)
and quantizes the input as ``round(x / s)``; the C runtime uses the fixed-point multiplier, so
codes next to a rounding tie may differ by one between the two (``verify.json`` reports it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np

from .._files import atomic_write_bytes
from ..errors import ExportError
from .integer import (AddOp, AvgPoolOp, ClampOp, ConcatOp, ConvOp, IntegerProgram, LutOp, MaxPoolOp, PadOp,
                      QuantizeOp)

OPSET = 13
MS_DOMAIN = "com.microsoft"
IR_VERSION = 8  # loads in every onnxruntime since 1.10


class _Graph:
    def __init__(self, program: IntegerProgram):
        from onnx import TensorProto, helper, numpy_helper

        self.p, self.h, self.nh, self.TP = program, helper, numpy_helper, TensorProto
        self.nodes, self.inits = [], []
        self.counter = 0
        self.cache = {}

    def name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.inits.append(self.nh.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: List[str], outputs: List[str] = None, domain: str = "", **attrs) -> str:
        outputs = outputs or [self.name(op.lower())]
        self.nodes.append(self.h.make_node(op, inputs, outputs, name=self.name(op), domain=domain or None, **attrs))
        return outputs[0]

    def tensor(self, index: int) -> str:
        return f"t{self.p.tensors[index].storage}"

    def qparams(self, index: int):
        t = self.p.tensors[index]
        key = ("q", t.storage)
        if key not in self.cache:
            self.cache[key] = (self.const("scale", np.float32(t.scale)), self.const("zero", np.uint8(t.zero + 128)))
        return self.cache[key]

    def reshape(self, source: str, shape, output: str = None) -> str:
        return self.node("Reshape", [source, self.const("shape", np.array((-1, *shape), np.int64))],
                         [output] if output else None)

    def clip(self, source: str, lo: int, hi: int, index: int, output: str) -> str:
        t = self.p.tensors[index]
        if lo <= t.lo and hi >= t.hi and lo <= -128 and hi >= 127:
            return self.node("Identity", [source], [output])
        return self.node("Clip", [source, self.const("lo", np.uint8(lo + 128)), self.const("hi", np.uint8(hi + 128))],
                         [output])

    def planar(self, index: int, shape) -> str:
        """Tensor ``index`` shaped ``shape``: one ONNX value per storage, reshaped for an alias (a flatten)."""
        root = self.p.tensors[self.p.tensors[index].storage]
        return self.tensor(index) if tuple(root.shape) == tuple(shape) else self.reshape(self.tensor(index), shape)

    def read(self, index: int) -> str:
        return self.planar(index, self.p.tensors[index].shape)

    def out(self, index: int, produced: str, shape) -> None:
        """Give ``produced`` (shaped ``shape``) the tensor's name, reshaping when its shape differs."""
        t = self.p.tensors[index]
        if tuple(t.shape) == tuple(shape):
            self.node("Identity", [produced], [self.tensor(index)])
        else:
            self.reshape(produced, t.shape, self.tensor(index))

    # -- operations ----------------------------------------------------------------------------
    def quantize(self, op: QuantizeOp, x: str) -> None:
        s, z = self.qparams(op.output)
        q = self.node("QuantizeLinear", [x, s, z])
        self.clip(q, op.lo, op.hi, op.output, self.tensor(op.output))

    def conv(self, op: ConvOp) -> None:
        x = self.planar(op.input, op.in_shape)
        xs, xz = self.qparams(op.input) if op.heads else (None, self.qparams(op.input)[1])
        codes = op.codes().astype(np.int64)
        w = self.const("weight", (codes + 128).astype(np.uint8))
        c = op.out_shape[0]
        wz = self.const("weight_zero", np.full(c, 128, np.uint8))
        attrs = dict(kernel_shape=list(op.kernel), strides=list(op.stride), dilations=list(op.dilation),
                     pads=[op.padding[0], op.padding[1], op.padding[0], op.padding[1]], group=op.groups)
        for head in op.heads:
            steps = self._steps(op, head)
            ws = self.const("weight_scale", steps)
            ys, yz = self.qparams(head.tensor)
            bias = self.const("bias", op.bias.astype(np.int32))
            y = self.node("QLinearConv", [x, xs, xz, w, ws, wz, ys, yz, bias], **attrs)
            clipped = self.clip(y, head.lo, head.hi, head.tensor, self.name("clipped"))
            self.out(head.tensor, clipped, op.out_shape)
        if op.logits is not None:
            acc = self.node("ConvInteger", [x, w, xz, self.const("weight_zero", np.uint8(128))], **attrs)
            acc = self.node("Add", [acc, self.const("bias", op.bias.astype(np.int32).reshape(1, c, 1, 1))])
            real = self.node("Cast", [acc], to=self.TP.FLOAT)
            scale = np.asarray(self.p.tensors[op.logits].scale, np.float32).reshape(-1)[:c].reshape(1, c, 1, 1)
            self.reshape(self.node("Mul", [real, self.const("scale", scale)]), (self.p.tensors[op.logits].numel,),
                         "logits")

    def _steps(self, op: ConvOp, head) -> np.ndarray:
        """Per-channel weight scales that make ``s_in · s_w / s_out`` the head's multiplier."""
        s_in = float(self.p.tensors[op.input].scale)
        s_out = float(self.p.tensors[head.tensor].scale)
        factor = head.mult.astype(np.float64) / 2.0 ** head.shift.astype(np.float64)
        return (factor * s_out / s_in).astype(np.float32)

    def add(self, op: AddOp) -> None:
        a, b = self.read(op.a), self.read(op.b)
        (as_, az), (bs, bz) = self.qparams(op.a), self.qparams(op.b)
        for head in op.heads:
            cs, cz = self.qparams(head.tensor)
            y = self.node("QLinearAdd", [a, as_, az, b, bs, bz, cs, cz], domain=MS_DOMAIN)
            self.clip(y, head.lo, head.hi, head.tensor, self.tensor(head.tensor))

    def avgpool(self, op: AvgPoolOp) -> None:
        x = self.planar(op.input, op.in_shape)
        xs, xz = self.qparams(op.input)
        glob = tuple(op.kernel) == tuple(op.in_shape[1:]) and not any(op.padding)
        for head in op.heads:
            ys, yz = self.qparams(head.tensor)
            if glob:
                y = self.node("QLinearGlobalAveragePool", [x, xs, xz, ys, yz], domain=MS_DOMAIN, channels_last=0)
            else:
                y = self.node("QLinearAveragePool", [x, xs, xz, ys, yz], domain=MS_DOMAIN,
                              kernel_shape=list(op.kernel), strides=list(op.stride), count_include_pad=1,
                              pads=[op.padding[0], op.padding[1], op.padding[0], op.padding[1]])
            clipped = self.clip(y, head.lo, head.hi, head.tensor, self.name("clipped"))
            self.out(head.tensor, clipped, op.out_shape)

    def op(self, op, x: str) -> None:
        if isinstance(op, QuantizeOp):
            self.quantize(op, x)
        elif isinstance(op, ConvOp):
            self.conv(op)
        elif isinstance(op, AddOp):
            self.add(op)
        elif isinstance(op, AvgPoolOp):
            self.avgpool(op)
        elif isinstance(op, MaxPoolOp):
            y = self.node("MaxPool", [self.planar(op.input, op.in_shape)], kernel_shape=list(op.kernel),
                          strides=list(op.stride), dilations=list(op.dilation),
                          pads=[op.padding[0], op.padding[1], op.padding[0], op.padding[1]])
            self.out(op.output, y, op.out_shape)
        elif isinstance(op, PadOp):
            if op.mode == "circular":
                raise ExportError(f"padding {op.name!r} is circular, which ONNX Pad has no mode for at opset {OPSET}; "
                                  "export the c format for this network")
            top, bottom, left, right = op.pads
            pads = self.const("pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
            fill = self.qparams(op.input)[1]
            mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[op.mode]
            y = self.node("Pad", [self.planar(op.input, op.in_shape), pads, fill], mode=mode)
            self.out(op.output, y, op.out_shape)
        elif isinstance(op, ClampOp):
            self.clip(self.read(op.input), op.lo, op.hi, op.output, self.tensor(op.output))
        elif isinstance(op, ConcatOp):
            self.node("Concat", [self.read(i) for i in op.inputs], [self.tensor(op.output)], axis=1)
        elif isinstance(op, LutOp):
            table = self.const("table", (op.table.astype(np.int64) + 128).astype(np.uint8))
            index = self.node("Cast", [self.read(op.input)], to=self.TP.INT32)
            self.node("Gather", [table, index], [self.tensor(op.output)], axis=0)


def write_onnx_int8(program: IntegerProgram, path, metadata: Dict[str, str] = None) -> Path:
    """Write ``program`` as an ONNX model of integer operators to ``path``."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(program)
    x = "input"
    for op in program.ops:
        g.op(op, x)
    out = program.tensors[program.output]
    if out.dtype == "int32":
        g.node("Identity", ["logits"], ["output"])
    else:
        s, z = g.qparams(out.index)
        g.node("Flatten", [g.node("DequantizeLinear", [g.read(out.index), s, z])], ["output"], axis=1)
    used = {name for node in g.nodes for name in node.input}
    g.inits = [t for t in g.inits if t.name in used]
    batch = "N"
    graph = helper.make_graph(
        g.nodes, "jointopt_int8",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [batch, *program.input_shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, out.numel])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
                              producer_name="jointopt")
    model.ir_version = IR_VERSION
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, model.SerializeToString())
    return path


def verify_onnx_int8(path, program: IntegerProgram, expected, x) -> dict:
    """onnxruntime (default optimisations, one thread) vs the integer reference and the frozen network."""
    import onnxruntime as ort

    from .integer import run_reference

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.detach().cpu().float().numpy()})[0]
    from .c_export import MIN_AGREEMENT, compare

    reference, _ = run_reference(program, x)
    frozen = expected.detach().cpu().float().reshape(len(x), -1).numpy()
    ops = sorted({node.op_type for node in _load(path).graph.node})
    result = compare(got, frozen)
    result.update(equal_to_reference=float((got == reference).all(1).mean()),
                  max_abs_diff_reference=float(np.abs(got - reference).max(initial=0)), operators=ops)
    result["ok"] = result["decisive_agreement"] >= MIN_AGREEMENT
    return result


def _load(path):
    import onnx

    return onnx.load(str(path))



def export_onnx_int8(program: IntegerProgram, path, x, expected, metadata: str = "", preprocessing=None):
    """Write ``program`` (the integer form of the frozen network that gave ``expected`` on ``x``) as ONNX, verify it.

    ``metadata`` (JSON text) and ``preprocessing`` (the header's record) go into the metadata properties;
    the graph takes the normalised input.
    """
    import json

    flat = {"jointopt.metadata": metadata or "{}", "jointopt.preprocessing": json.dumps(preprocessing)}
    path = write_onnx_int8(program, path, flat)
    return path, verify_onnx_int8(path, program, expected, x)


def report_line(check: dict) -> str:
    """The ``onnx_int8`` line of the export's verification report, from its check."""
    if "skipped" in check:
        return f"onnx_int8  skipped: {check['skipped']}"
    return (f"onnx_int8  onnxruntime integer kernels ({', '.join(o for o in check['operators'] if o.startswith('QLinear'))}) "
            f"on {check['samples']} samples: equal to the C runtime's logits on {100 * check['equal_to_reference']:.1f} %, "
            f"top-1 agreement with PyTorch {100 * check['top1_agreement']:.2f} %  {'ok' if check['ok'] else 'FAILED'}")
