"""The ``onnx`` format: the float graph of the frozen network, with its weights as low-bit integers.

How it is built (no exporter writes 4-bit fake quantization):

1. ``torch.onnx.export`` (TorchScript exporter) of the frozen network with quantization switched
   off: every Conv/Linear weight is then a float initializer named ``<layer>.weight``.
2. Each such initializer is replaced by integers, one initializer per bit-width group (a tensor
   has one element type): ``INT8``, ``INT4`` (opset 21) and 2-bit codes in ``INT4`` containers
   (default) or native ``INT2`` (opset 25, ``int2="native"``), each followed by
   ``DequantizeLinear`` per output channel (axis 0, zero point 0). The groups are put back in
   the original channel order with ``Concat`` + ``Gather``, whose output takes the name
   ``<layer>.weight`` — so every consumer of the weight is unchanged and channel order is
   preserved.
3. The data input of each Conv/Gemm/MatMul gets ``[Clip →] QuantizeLinear → DequantizeLinear`` at
   the layer's activation bits, in a UINT8 (unsigned) or INT8 (signed) container; the ``Clip`` to
   ``[lo·s, hi·s]`` narrows the range where the container is wider than the searched width (every
   width below 8, and the symmetric signed range), so the result equals PyTorch's fake quantizer.
"""
from __future__ import annotations

import copy
import io
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Union

import numpy as np
import torch

from ..errors import ExportError
from ..nn.frozen import FrozenLayer
from ..quant.packing import pack_codes
from .packing import PackedLayer

EXPORT_OPSET = 20  # the TorchScript exporter's newest opset; the model is converted up afterwards
INT2_MODES = ("native", "int4")
MAX_IR_VERSION = 13  # onnxruntime 1.31 loads IR <= 13


def opset_for(layers: List[PackedLayer], int2: str = "int4", opset=None) -> int:
    """Opset the export uses: 25 when native INT2 tensors are needed, else 21 (INT4); at least ``opset``."""
    need = 25 if int2 == "native" and any((l.bits <= 2).any() for l in layers) else 21
    if opset is not None and opset < need:
        raise ExportError(f"opset {opset} cannot hold these weights: INT4 needs opset 21, INT2 opset 25 "
                          "(or int2='int4' to store 2-bit codes in INT4 containers)")
    return max(need, opset or need)


def _container(bits: int, int2: str):
    from onnx import TensorProto

    if bits <= 2 and int2 == "native":
        return TensorProto.INT2, 2
    if bits <= 4:
        return TensorProto.INT4, 4
    if bits <= 8:
        return TensorProto.INT8, 8
    if bits <= 16:
        return TensorProto.INT16, 16
    raise ExportError(f"{bits}-bit weights have no ONNX integer container (at most 16 bits)")


def _int_tensor(name: str, codes: np.ndarray, dtype, width: int):
    from onnx import helper

    flat = codes.reshape(1, -1).astype(np.int64)
    if width in (2, 4):  # ONNX packs sub-byte integers LSB-first, as jointopt.quant.packing does
        raw = pack_codes(flat, [width]).tobytes()
    else:
        raw = flat.astype(np.int8 if width == 8 else "<i2").tobytes()  # ONNX raw data is little-endian
    return helper.make_tensor(name, dtype, list(codes.shape), vals=raw, raw=True)


def _weight_nodes(layer: PackedLayer, int2: str):
    """Initializers and nodes that compute ``<layer>.weight`` from integer groups."""
    from onnx import helper, numpy_helper

    name, codes = layer.name, layer.codes()
    inits, nodes, outputs, order = [], [], [], []
    for b in sorted(set(layer.bits.tolist()), reverse=True):
        index = np.flatnonzero(layer.bits == b)
        dtype, width = _container(int(b), int2)
        base = f"{name}.weight/int{b}"
        inits += [_int_tensor(f"{base}/codes", codes[index], dtype, width),
                  numpy_helper.from_array(layer.scale[index].astype(np.float32), f"{base}/scale"),
                  _int_tensor(f"{base}/zero_point", np.zeros(len(index), np.int64), dtype, width)]
        out = f"{name}.weight" if len(layer.bits) == len(index) else f"{base}/dequantized"
        nodes.append(helper.make_node("DequantizeLinear", [f"{base}/codes", f"{base}/scale", f"{base}/zero_point"],
                                      [out], name=f"{base}/DequantizeLinear", axis=0))
        outputs.append(out)
        order.extend(index.tolist())
    if len(outputs) > 1:
        position = np.empty(len(order), np.int64)
        position[np.asarray(order)] = np.arange(len(order))  # where original channel c sits after Concat
        inits.append(numpy_helper.from_array(position, f"{name}.weight/order"))
        nodes += [helper.make_node("Concat", outputs, [f"{name}.weight/grouped"], name=f"{name}.weight/Concat", axis=0),
                  helper.make_node("Gather", [f"{name}.weight/grouped", f"{name}.weight/order"], [f"{name}.weight"],
                                   name=f"{name}.weight/Gather", axis=0)]
    return inits, nodes


def _act_nodes(layer: PackedLayer, source: str):
    """``[Clip →] QuantizeLinear → DequantizeLinear`` of ``source``; returns (inits, nodes, output)."""
    from onnx import TensorProto, helper

    lo, hi = layer.act_range
    base = f"{layer.name}/act"
    wide = layer.act_bits > 8
    if layer.act_signed:
        ctype, cmin, cmax = (TensorProto.INT16, -2**15, 2**15 - 1) if wide else (TensorProto.INT8, -128, 127)
    else:
        ctype, cmin, cmax = (TensorProto.UINT16, 0, 2**16 - 1) if wide else (TensorProto.UINT8, 0, 255)
    scale = np.float32(layer.act_scale)
    inits = [helper.make_tensor(f"{base}/scale", TensorProto.FLOAT, [], [float(scale)]),
             helper.make_tensor(f"{base}/zero_point", ctype, [], [0])]
    nodes, x = [], source
    if (lo, hi) != (cmin, cmax):
        inits += [helper.make_tensor(f"{base}/min", TensorProto.FLOAT, [], [float(np.float32(lo) * scale)]),
                  helper.make_tensor(f"{base}/max", TensorProto.FLOAT, [], [float(np.float32(hi) * scale)])]
        nodes.append(helper.make_node("Clip", [x, f"{base}/min", f"{base}/max"], [f"{base}/clipped"],
                                      name=f"{base}/Clip"))
        x = f"{base}/clipped"
    nodes += [helper.make_node("QuantizeLinear", [x, f"{base}/scale", f"{base}/zero_point"], [f"{base}/quantized"],
                               name=f"{base}/QuantizeLinear"),
              helper.make_node("DequantizeLinear", [f"{base}/quantized", f"{base}/scale", f"{base}/zero_point"],
                               [f"{base}/dequantized"], name=f"{base}/DequantizeLinear")]
    return inits, nodes, f"{base}/dequantized"


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


def write_onnx(frozen, layers: List[PackedLayer], example: torch.Tensor, path: Union[str, Path],
               int2: str = "int4", opset=None, metadata: dict | None = None) -> Path:
    """Export ``frozen`` (whose packed layers are ``layers``) to ``path``; returns the path."""
    import onnx
    from onnx import helper, version_converter

    if int2 not in INT2_MODES:
        raise ExportError(f"int2={int2!r}; choose one of {', '.join(INT2_MODES)}")
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
        inits, weight_nodes = _weight_nodes(layer, int2)
        new_inits += inits
        head += weight_nodes
        i, index = _compute_node(weight, nodes, consumers)
        inits, act_nodes, out = _act_nodes(layer, nodes[i].input[index])
        new_inits += inits
        before[i] += act_nodes
        nodes[i].input[index] = out
    ordered = head + [n for i, node in enumerate(nodes) for n in before[i] + [node]]
    graph.ClearField("node")
    graph.node.extend(ordered)
    graph.initializer.extend(new_inits)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", target))
    model.ir_version = min(helper.find_min_ir_version_for(list(model.opset_import)), MAX_IR_VERSION)
    model.producer_name = "jointopt"
    from .. import __version__

    model.producer_version = __version__
    for key, value in (metadata or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=str(key), value=str(value)))
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx raises ValidationError / InferenceError
        raise ExportError(f"the generated ONNX model fails onnx.checker: {exc}") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path
