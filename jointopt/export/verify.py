"""Checks run on every export: each file is read back and compared with the frozen network.

* ``onnx``: onnxruntime (CPU, one thread) on a batch vs the frozen PyTorch network, with graph
  optimisations off and with onnxruntime's default settings: max / mean absolute difference of the
  outputs and top-1 agreement (both must reach the threshold), and the integer kernels formed.
* ``torch``: :func:`jointopt.load` of the manifest, same batch: the outputs must be identical.
* ``npz``: the packed codes, scales and biases read back from the file equal the frozen network's,
  and every layer's packed weights take exactly the ``memory`` cost model's bits
  (``Σ_c codes_per_channel · bits[c]``) and ``ceil(bits / 8)`` bytes.
* ``c``: the arrays in the header text equal the packed bytes, bits and offsets.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from ..errors import ExportError
from ..graph.freeze import frozen_layer_stats
from .packing import PackedLayer, pack_network


def compare_outputs(reference: torch.Tensor, other, tie: float = 0.0) -> dict:
    """Max / mean absolute difference and top-1 agreement of two [N, classes] outputs.

    With ``tie > 0`` also ``near_ties``: samples whose top-1 class differs but where the reference
    itself hardly decides (its margin between the two classes is at most ``tie`` × its largest
    |output|), and ``decisive_agreement``: the agreement counting those as agreeing.
    """
    ref = reference.detach().cpu().float().reshape(reference.shape[0], -1)
    out = torch.as_tensor(np.asarray(other), dtype=torch.float32).reshape(ref.shape)
    diff = (ref - out).abs()
    top, other_top = ref.argmax(1), out.argmax(1)
    same = top == other_top if ref.shape[1] > 1 else torch.ones(len(ref), dtype=torch.bool)
    result = {"samples": int(ref.shape[0]), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
              "output_max_abs": float(ref.abs().max()), "top1_agreement": same.float().mean().item()}
    if tie > 0:
        rows = torch.arange(len(ref))
        margin = ref[rows, top] - ref[rows, other_top]
        near = ~same & (margin <= tie * result["output_max_abs"])
        result.update(near_ties=int(near.sum()), tie_tolerance=tie, decisive_agreement=(same | near).float().mean().item())
    return result


MIN_ONNXRUNTIME = "1.19"  # the oldest that runs the default export (INT4 weights, opset 21, IR 10); see README
# onnxruntime's integer kernels that Q/DQ fusion forms (the rest of an optimised graph runs in float)
INTEGER_KERNELS = ("QLinearConv", "QGemm", "QLinearMatMul", "MatMulInteger", "ConvInteger", "MatMulIntegerToFloat",
                   "DynamicQuantizeMatMul", "MatMulNBits", "QLinearAdd", "QLinearMul", "QLinearConcat",
                   "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearSigmoid", "QLinearLeakyRelu")
_WEIGHT_INPUT = {"QLinearConv": 3, "QGemm": 3, "QLinearMatMul": 3, "MatMulInteger": 1, "ConvInteger": 1}


def run_onnx(path, x: torch.Tensor, threads: int = 1, optimize: bool = True, save_optimized=None) -> np.ndarray:
    """Output of the ONNX model at ``path`` on ``x`` with onnxruntime's CPU provider.

    ``optimize=True`` runs with onnxruntime's default settings (``ORT_ENABLE_ALL``: Q/DQ pairs
    fused into integer kernels where onnxruntime can); ``optimize=False`` disables graph
    optimisations, so the output is the ONNX graph's own float semantics. ``save_optimized``: a
    path where onnxruntime writes the graph it actually runs.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if save_optimized is not None:
        options.optimized_model_filepath = str(save_optimized)
        options.log_severity_level = 3  # it warns that an ORT_ENABLE_ALL graph is machine-specific; we only read it
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.detach().cpu().float().numpy()})[0]


def integer_kernels(optimized_path) -> dict:
    """The integer kernels in an onnxruntime-optimised graph: counts by kind, and those that
    multiply uint8 activations by int8 weights (saturating on x86 CPUs without VNNI)."""
    import onnx

    model = onnx.load(str(optimized_path), load_external_data=False)
    types = {t.name: t.data_type for t in model.graph.initializer}
    counts, signed = {}, []
    for node in model.graph.node:
        if node.op_type in INTEGER_KERNELS:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            k = _WEIGHT_INPUT.get(node.op_type)
            if k is not None and len(node.input) > k and types.get(node.input[k]) == onnx.TensorProto.INT8:
                signed.append(node.name or node.op_type)
    return {"counts": counts, "int8_weight_kernels": signed}


def verify_onnx(path, expected: torch.Tensor, x: torch.Tensor, min_agreement: float, tie: float = 0.02) -> dict:
    """onnxruntime vs PyTorch, twice; both runs must reach ``min_agreement`` top-1 agreement.

    First the graph as written (graph optimisations off), then with onnxruntime's default settings
    — what a deployment gets without configuring anything — where Q/DQ pairs around a Conv/Gemm
    may be fused into integer kernels (int32 bias, requantized outputs: a few activations move by
    one code). That can flip a sample PyTorch itself hardly decides; such near ties (margin at most
    ``tie`` × the largest |output|) are counted apart, every other flip counts against the
    agreement. The kernels onnxruntime formed are recorded (``optimized["kernels"]``).
    """
    import tempfile

    import onnx

    model = onnx.load(str(path), load_external_data=False)
    try:
        result = compare_outputs(expected, run_onnx(path, x, optimize=False))
    except Exception as exc:  # onnxruntime raises its own exception types; too old a version is the usual cause
        import onnxruntime

        raise ExportError(f"onnxruntime {onnxruntime.__version__} cannot run the exported {str(path)!r} (opset "
                          f"{model.opset_import[0].version}, IR {model.ir_version}): {str(exc).splitlines()[0][-160:]}; "
                          f"jointopt's ONNX needs onnxruntime >= {MIN_ONNXRUNTIME} (>= 1.24 with int2='native')") from None
    result["ok"] = result["top1_agreement"] >= min_agreement
    try:
        with tempfile.TemporaryDirectory() as tmp:
            saved = Path(tmp) / "optimized.onnx"
            optimized = compare_outputs(expected, run_onnx(path, x, save_optimized=saved), tie)
            optimized["kernels"] = integer_kernels(saved)
        optimized["ok"] = optimized["decisive_agreement"] >= min_agreement
    except Exception as exc:  # onnxruntime raises its own exception types
        if not any(t.data_type == onnx.TensorProto.INT2 for t in model.graph.initializer):
            raise
        optimized = {"error": str(exc).splitlines()[0][:200], "note": (
            "onnxruntime rejects native INT2 weights under its default graph optimisations (its Q/DQ fusion "
            "makes a QLinearConv, which has no int2 kernel); export with int2='int4' for a model it runs as it is"),
            "ok": None}
    result.update(optimized=optimized, opset=int(model.opset_import[0].version), ir_version=int(model.ir_version),
                  checker="passed", min_agreement=min_agreement,
                  input=model.graph.input[0].name, ok=result["ok"] and optimized["ok"] is not False)
    return result


def verify_torch(manifest, expected: torch.Tensor, x: torch.Tensor) -> dict:
    """Rebuild the network from the exported ``manifest`` and compare its outputs on ``x`` with ``expected``."""
    from .torch_format import load

    with torch.no_grad():
        result = compare_outputs(expected, load(manifest)(x))
    result["ok"] = result["max_abs_diff"] == 0.0
    return result


def layer_memory_bits(frozen) -> Dict[str, int]:
    """The ``memory`` cost model's bits for each FrozenLayer of ``frozen``."""
    from ..cost import get_cost_model

    model = get_cost_model("memory")
    return {s.name: int(round(float(model.layer_cost(s)))) for s in frozen_layer_stats(frozen)}


def verify_sizes(frozen, layers: List[PackedLayer]) -> dict:
    """Packed bits and bytes of every layer against the memory cost model, to the bit."""
    from ..graph.freeze import frozen_cost

    expected = layer_memory_bits(frozen)
    rows, ok = [], True
    for layer in layers:
        want = expected.get(layer.name)
        want_bytes = -(-want // 8) if want is not None else None
        good = layer.packed_bits == want and int(layer.weight.size) == want_bytes
        ok &= good
        rows.append({"layer": layer.name, "packed_bits": layer.packed_bits, "memory_bits": want,
                     "bytes": int(layer.weight.size), "expected_bytes": want_bytes, "ok": good})
    total_bits = sum(l.packed_bits for l in layers)
    cost = int(round(float(frozen_cost(frozen, "memory"))))
    return {"rule": "bytes per layer = ceil(memory cost bits of the layer / 8); bits are exact",
            "packed_bits": total_bits, "memory_cost_bits": cost, "packed_bytes": sum(r["bytes"] for r in rows),
            "memory_cost_bytes_ceil_per_layer": sum(r["expected_bytes"] or 0 for r in rows),
            "layers": rows, "ok": bool(ok and total_bits == cost and len(layers) == len(expected))}


def verify_packed(path, frozen) -> dict:
    """The packed ``.npz`` read back: codes, scales, biases, activation scales equal the network's."""
    from .npz_format import read_packed

    stored = {l.name: l for l in read_packed(path)}
    mismatches = []
    for layer in pack_network(frozen):
        other = stored.pop(layer.name, None)
        if other is None:
            mismatches.append(f"{layer.name}: missing")
            continue
        codes, _ = dict(frozen.named_modules())[layer.name].weight_codes()
        checks = {"codes": np.array_equal(other.codes(), codes.numpy()), "bits": np.array_equal(other.bits, layer.bits),
                  "scale": np.array_equal(other.scale, layer.scale), "bias": np.array_equal(other.bias, layer.bias),
                  "act_scale": np.float32(other.act_scale) == np.float32(layer.act_scale)}
        mismatches += [f"{layer.name}: {k}" for k, good in checks.items() if not good]
    mismatches += [f"{name}: not in the network" for name in stored]
    result = verify_sizes(frozen, read_packed(path))
    result.update(codes_match=not mismatches, mismatches=mismatches, ok=result["ok"] and not mismatches)
    return result


def _c_array(text: str, name: str) -> List[int]:
    match = re.search(rf"\b{re.escape(name)}\[\d+\][^=]*=\s*\{{([^}}]*)\}}", text)
    if match is None:
        return None
    return [int(v.strip().rstrip("uU"), 0) for v in match.group(1).replace("\n", " ").split(",") if v.strip()]


def verify_header(path, layers: List[PackedLayer], prefix: str) -> dict:
    """The header's weight, bits and offset arrays, parsed back from the text, equal the packed layers."""
    from .c_format import c_identifier

    text = Path(path).read_text()
    lower = c_identifier(prefix).lower()
    mismatches = []
    for i, layer in enumerate(layers):
        for field, want in (("weight", layer.weight), ("bits", layer.bits), ("bit_offset", layer.bit_offsets)):
            if _c_array(text, f"{lower}_l{i}_{field}") != np.asarray(want).tolist():
                mismatches.append(f"{layer.name}: {field}")
    return {"layers": len(layers), "mismatches": mismatches, "ok": not mismatches}
