"""The ``onnx`` format: the float graph of the frozen network, with its weights as low-bit integers.

How it is built (no exporter writes 4-bit fake quantization):

1. ``torch.onnx.export`` (TorchScript exporter) of the frozen network with quantization switched
   off: every Conv/Linear weight is then a float initializer named ``<layer>.weight``.
2. Each such initializer is replaced by integers, one initializer per bit-width group (a tensor
   has one element type), each followed by ``DequantizeLinear`` per output channel (axis 0):
   8-bit codes as ``UINT8`` with zero point 128 (``code + 128``: every code of the full grid
   −128..127 fits), 4-bit codes as ``INT4`` (opset 21), 2-bit codes in ``INT4`` containers
   (default) or as native ``INT2`` (opset 25, ``int2="native"``), zero point 0 (omitted). The
   groups are put back in the original channel order with ``Concat`` + ``Gather`` (int32
   indices), whose output takes the name ``<layer>.weight`` — so every consumer of the weight is
   unchanged and channel order is preserved. (``mixed="uint8"``/``"smallest"``: a mixed layer in
   one UINT8 initializer instead, always / where that is smaller; see :func:`_weight_nodes`.)
3. The data input of each Conv/Gemm/MatMul gets ``[Clip →] QuantizeLinear → DequantizeLinear`` at
   the layer's activation bits, in a UINT8 (unsigned) or INT8 (signed) container; the ``Clip`` to
   ``[lo·s, hi·s]`` narrows the range where the container is wider than the searched width (every
   width below 8, and the symmetric signed range), so the result equals PyTorch's fake quantizer.
4. With a known :class:`~.preprocessing.Preprocessing` and ``normalize=True``, the graph input is
   the raw data (named ``raw``) followed by ``Sub(mean) → Mul(inv_std)`` per channel, computed in
   float32 exactly as the training pipeline computes it; the preprocessing is also in the model's
   metadata (``jointopt.preprocessing``, JSON) either way.

Why 8-bit weights are unsigned: onnxruntime's default graph optimisations fuse a Q/DQ'd Conv (or
Gemm) into an integer kernel (``QLinearConv``/``QGemm``). With uint8 activations and int8
weights, its x86 kernels on AVX2 CPUs without VNNI add pairs of uint8 × int8 products in
saturating 16-bit arithmetic (``vpmaddubsw``), which is wrong as soon as a pair exceeds 32767
(255 · 127 · 2 does): measured on trained networks, up to 9 % of the top-1 classes changed.
With uint8 weights the fused kernel is the uint8 × uint8 one, which widens to 16 bits before
multiplying and is exact on every x86 CPU.
"""
from __future__ import annotations

import copy
import io
import json
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch

from .._files import atomic_write_bytes
from ..errors import ExportError
from ..nn.frozen import FrozenLayer
from ..quant.packing import pack_codes
from .packing import PackedLayer
from .preprocessing import FORMULA, Preprocessing

EXPORT_OPSET = 20  # the TorchScript exporter's newest opset; the model is converted up afterwards
INT2_MODES = ("native", "int4")
MIXED_MODES = ("smallest", "grouped", "uint8")  # how a layer of several widths is stored
MAX_IR_VERSION = 13  # never above what onnxruntime 1.31 loads; opset 21 itself needs only IR 10
UINT8_OFFSET = 128  # 8-bit weight codes are stored as code + 128 in UINT8 (see the module docstring)
RAW_INPUT = "raw"


def opset_for(layers: List[PackedLayer], int2: str = "int4", opset=None) -> int:
    """Opset the export uses: 25 when native INT2 tensors are needed, else 21 (INT4); at least ``opset``."""
    need = 25 if int2 == "native" and any((l.bits <= 2).any() for l in layers) else 21
    if opset is not None and opset < need:
        raise ExportError(f"opset {opset} cannot hold these weights: INT4 needs opset 21, INT2 opset 25 "
                          "(or int2='int4' to store 2-bit codes in INT4 containers)")
    return max(need, opset or need)


def _container(bits: int, int2: str):
    """(ONNX element type, container width, zero point) of ``bits``-bit weight codes."""
    from onnx import TensorProto

    if bits <= 2 and int2 == "native":
        if not hasattr(TensorProto, "INT2"):
            import onnx

            raise ExportError(f"int2='native' needs onnx >= 1.20 (INT2 tensors), this is onnx {onnx.__version__}; "
                              "upgrade onnx or export with int2='int4'")
        return TensorProto.INT2, 2, 0
    if bits <= 4:
        return TensorProto.INT4, 4, 0
    if bits <= 8:
        return TensorProto.UINT8, 8, UINT8_OFFSET
    if bits <= 16:
        return TensorProto.INT16, 16, 0
    raise ExportError(f"{bits}-bit weights have no ONNX integer container (at most 16 bits)")


def _int_tensor(name: str, codes: np.ndarray, dtype, width: int, offset: int = 0):
    from onnx import helper

    flat = codes.reshape(1, -1).astype(np.int64)
    if width in (2, 4):  # ONNX packs sub-byte integers LSB-first, as jointopt.quant.packing does
        raw = pack_codes(flat, [width]).tobytes()
    elif offset:
        raw = (flat + offset).astype(np.uint8).tobytes()
    else:
        raw = flat.astype(np.int8 if width == 8 else "<i2").tobytes()  # ONNX raw data is little-endian
    return helper.make_tensor(name, dtype, list(codes.shape), vals=raw, raw=True)


def _dequantize(name: str, base: str, codes: np.ndarray, scale: np.ndarray, out: str, bits: int, int2: str):
    """One integer initializer ``base`` (+ ``.scale``, ``.zp`` where not 0) and its per-channel DequantizeLinear."""
    from onnx import helper, numpy_helper

    dtype, width, offset = _container(bits, int2)
    inits = [_int_tensor(base, codes, dtype, width, offset),
             numpy_helper.from_array(scale.astype(np.float32), f"{base}.scale")]
    inputs = [base, f"{base}.scale"]
    if offset:  # zero point 0 is the default: only the offset one is stored
        inits.append(_int_tensor(f"{base}.zp", np.zeros(len(codes), np.int64), dtype, width, offset))
        inputs.append(f"{base}.zp")
    return inits, [helper.make_node("DequantizeLinear", inputs, [out], name=f"{base}.dq", axis=0)]


def _grouped(layer: PackedLayer, codes: np.ndarray, int2: str):
    """One integer initializer per width, Concat, and Gather back into channel order."""
    from onnx import helper, numpy_helper

    name = layer.name
    inits, nodes, outputs, order = [], [], [], []
    for b in sorted(set(layer.bits.tolist()), reverse=True):
        index = np.flatnonzero(layer.bits == b)
        out = f"{name}.weight" if len(layer.bits) == len(index) else f"{name}.w{b}.dq"
        more_inits, more_nodes = _dequantize(name, f"{name}.w{b}", codes[index], layer.scale[index], out, int(b), int2)
        inits, nodes = inits + more_inits, nodes + more_nodes
        outputs.append(out)
        order.extend(index.tolist())
    if len(outputs) > 1:
        position = np.empty(len(order), np.int32)
        position[np.asarray(order)] = np.arange(len(order))  # where original channel c sits after Concat
        inits.append(numpy_helper.from_array(position, f"{name}.w.order"))
        nodes += [helper.make_node("Concat", outputs, [f"{name}.w.cat"], name=f"{name}.w.cat", axis=0),
                  helper.make_node("Gather", [f"{name}.w.cat", f"{name}.w.order"], [f"{name}.weight"],
                                   name=f"{name}.w.order", axis=0)]
    return inits, nodes


def _weight_nodes(layer: PackedLayer, int2: str, mixed: str = "grouped"):
    """Initializers and nodes that compute ``<layer>.weight`` (exactly ``code · scale`` per channel).

    A layer of one width is one initializer ``<layer>.w<bits>`` (+ ``.scale``, ``.zp``). A layer of
    several widths is stored ``mixed="grouped"`` (default): one initializer per width, then Concat
    and Gather (indices ``<layer>.w.order``) back into channel order; or ``"uint8"``: one UINT8
    initializer ``<layer>.wq`` holding every code in an 8-bit container; or ``"smallest"``:
    whichever of the two is smaller (for small layers the extra nodes and indices outweigh the
    narrower containers).

    Why grouped is the default: onnxruntime cannot fuse it into an integer kernel, so the layer
    runs in float on exactly these weights. A single UINT8 initializer it does fuse, and the fused
    kernel quantizes the bias at ``input scale × weight scale``, which for 2- and 4-bit channels
    is coarse enough to move outputs by a code: measured on trained networks, 99.7 % top-1
    agreement with its default settings instead of 100 %. (Dequantizing with Cast/Sub/Mul is no
    way out: onnxruntime folds it into float weights and re-quantizes those to int8 itself.)
    """
    codes = layer.codes()
    grouped = _grouped(layer, codes, int2)
    if len(set(layer.bits.tolist())) == 1 or mixed == "grouped":
        return grouped
    single = _dequantize(layer.name, f"{layer.name}.wq", codes, layer.scale, f"{layer.name}.weight", 8, int2)
    size = lambda parts: sum(p.ByteSize() for group in parts for p in group)
    return single if mixed == "uint8" or size(single) <= size(grouped) else grouped


def _act_nodes(layer: PackedLayer, source: str):
    """``[Clip →] QuantizeLinear → DequantizeLinear`` of ``source`` (tensors ``<layer>.x.*``); returns
    (inits, nodes, output)."""
    from onnx import TensorProto, helper

    lo, hi = layer.act_range
    base = f"{layer.name}.x"
    wide = layer.act_bits > 8
    if layer.act_signed:
        ctype, cmin, cmax = (TensorProto.INT16, -2**15, 2**15 - 1) if wide else (TensorProto.INT8, -128, 127)
    else:
        ctype, cmin, cmax = (TensorProto.UINT16, 0, 2**16 - 1) if wide else (TensorProto.UINT8, 0, 255)
    scale = np.float32(layer.act_scale)
    inits = [helper.make_tensor(f"{base}.scale", TensorProto.FLOAT, [], [float(scale)]),
             helper.make_tensor(f"{base}.zp", ctype, [], [0])]
    nodes, x = [], source
    if (lo, hi) != (cmin, cmax):
        inits += [helper.make_tensor(f"{base}.min", TensorProto.FLOAT, [], [float(np.float32(lo) * scale)]),
                  helper.make_tensor(f"{base}.max", TensorProto.FLOAT, [], [float(np.float32(hi) * scale)])]
        nodes.append(helper.make_node("Clip", [x, f"{base}.min", f"{base}.max"], [f"{base}.clip"],
                                      name=f"{base}.clip"))
        x = f"{base}.clip"
    nodes += [helper.make_node("QuantizeLinear", [x, f"{base}.scale", f"{base}.zp"], [f"{base}.q"],
                               name=f"{base}.q"),
              helper.make_node("DequantizeLinear", [f"{base}.q", f"{base}.scale", f"{base}.zp"],
                               [f"{base}.dq"], name=f"{base}.dq")]
    return inits, nodes, f"{base}.dq"


def _float_graph(frozen, example: torch.Tensor):
    import onnx

    model = copy.deepcopy(frozen).eval()
    for m in model.modules():
        if isinstance(m, FrozenLayer):
            m.quantize = False
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=EXPORT_OPSET,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=False)
    return onnx.load_from_string(buffer.getvalue())


def _compute_node(weight: str, nodes: list, consumers: Dict[str, list]):
    """Index of the Conv/Gemm/MatMul using ``weight`` (maybe through a Transpose) and of its data input."""
    path, frontier = {weight}, [weight]
    while frontier:
        tensor = frontier.pop()
        for i in consumers.get(tensor, []):
            node = nodes[i]
            if node.op_type in ("Conv", "Gemm", "MatMul"):
                data = [k for k, name in enumerate(node.input) if name not in path and k < 2]
                return i, data[0]
            if node.op_type in ("Transpose", "Identity", "Reshape"):
                path.update(node.output)
                frontier.extend(node.output)
    raise ExportError(f"cannot find the Conv/Gemm/MatMul that uses {weight!r} in the exported ONNX graph")


def _normalization(graph, pre: Preprocessing) -> list:
    """Make the graph input the raw data: ``raw → Sub(mean) → Mul(inv_std) → input`` (float32, per channel)."""
    from onnx import helper, numpy_helper

    data = graph.input[0]
    shape = (1, pre.channels) + (1,) * (len(pre.layout) - 2)
    graph.initializer.extend([numpy_helper.from_array(np.asarray(pre.mean, np.float32).reshape(shape), "preprocess/mean"),
                              numpy_helper.from_array(np.asarray(pre.inv_std, np.float32).reshape(shape),
                                                      "preprocess/inv_std")])
    nodes = [helper.make_node("Sub", [RAW_INPUT, "preprocess/mean"], ["preprocess/centered"], name="preprocess/Sub"),
             helper.make_node("Mul", ["preprocess/centered", "preprocess/inv_std"], [data.name], name="preprocess/Mul")]
    data.name = RAW_INPUT
    data.doc_string = f"raw data ({pre.raw_dtype} values as float32); the graph normalises it: {pre.describe()}"
    return nodes


def _metadata(model, metadata: dict, pre: Optional[Preprocessing], normalize: bool) -> None:
    import onnx

    entries = {"jointopt.metadata": json.dumps(metadata or {}, default=str)}
    if pre is not None:
        entries["jointopt.preprocessing"] = json.dumps({**pre.to_dict(), "in_graph": normalize})
        entries["jointopt.input"] = (f"raw data in {pre.layout}; the graph applies {FORMULA}" if normalize else
                                     f"normalised data in {pre.layout}: {FORMULA} (see jointopt.preprocessing)")
    else:
        entries["jointopt.input"] = "what the PyTorch network takes (the preprocessing was not given to the export)"
    for key, value in entries.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))


def write_onnx(frozen, layers: List[PackedLayer], example: torch.Tensor, path: Union[str, Path],
               int2: str = "int4", opset=None, metadata: dict | None = None,
               preprocessing: Optional[Preprocessing] = None, normalize: bool = True, mixed: str = "grouped") -> Path:
    """Export ``frozen`` (whose packed layers are ``layers``) to ``path``; returns the path.

    Args:
        metadata: JSON-able facts, stored as the ``jointopt.metadata`` property.
        preprocessing: recorded as ``jointopt.preprocessing``; with ``normalize`` the graph takes
            raw data (input ``raw``) and normalises it itself.
        mixed: storage of layers with several widths (see :func:`_weight_nodes`).
    """
    import onnx
    from onnx import helper, version_converter

    if int2 not in INT2_MODES:
        raise ExportError(f"int2={int2!r}; choose one of {', '.join(INT2_MODES)}")
    if mixed not in MIXED_MODES:
        raise ExportError(f"mixed={mixed!r}; choose one of {', '.join(MIXED_MODES)}")
    target = opset_for(layers, int2, opset)
    model = version_converter.convert_version(_float_graph(frozen, example), target)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    nodes = [onnx.NodeProto() for _ in graph.node]
    for copy_, node in zip(nodes, graph.node):
        copy_.CopyFrom(node)
    consumers = defaultdict(list)
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers[name].append(i)
    new_inits, head, before = [], [], defaultdict(list)
    for layer in layers:
        weight = f"{layer.name}.weight"
        if weight not in initializers:
            raise ExportError(f"the ONNX exporter did not keep {weight!r} as an initializer; cannot quantize it")
        graph.initializer.remove(initializers[weight])
        inits, weight_nodes = _weight_nodes(layer, int2, mixed)
        new_inits += inits
        head += weight_nodes
        i, index = _compute_node(weight, nodes, consumers)
        inits, act_nodes, out = _act_nodes(layer, nodes[i].input[index])
        new_inits += inits
        before[i] += act_nodes
        nodes[i].input[index] = out
    ordered = head + [n for i, node in enumerate(nodes) for n in before[i] + [node]]
    if preprocessing is not None and normalize:
        ordered = _normalization(graph, preprocessing) + ordered
    graph.ClearField("node")
    graph.ClearField("value_info")  # intermediate shapes: onnxruntime infers them
    graph.node.extend(ordered)
    graph.initializer.extend(new_inits)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", target))
    model.ir_version = min(helper.find_min_ir_version_for(list(model.opset_import)), MAX_IR_VERSION)
    model.producer_name = "jointopt"
    from .. import __version__

    model.producer_version = __version__
    _metadata(model, metadata, preprocessing, normalize)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx raises ValidationError / InferenceError
        raise ExportError(f"the generated ONNX model fails onnx.checker: {exc}") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, model.SerializeToString())
    return path
