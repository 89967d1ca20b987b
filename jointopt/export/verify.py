"""Checks run on every export: each file is read back and compared with the frozen network.

* ``onnx``: onnxruntime (CPU, one thread) on a batch vs the frozen PyTorch network: max / mean
  absolute difference of the outputs and top-1 agreement.
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

from ..graph.freeze import frozen_layer_stats
from .packing import PackedLayer, pack_network


def compare_outputs(reference: torch.Tensor, other) -> dict:
    """Max / mean absolute difference and top-1 agreement of two [N, classes] outputs."""
    ref = reference.detach().cpu().float().reshape(reference.shape[0], -1)
    out = torch.as_tensor(np.asarray(other), dtype=torch.float32).reshape(ref.shape)
    diff = (ref - out).abs()
    agree = (ref.argmax(1) == out.argmax(1)).float().mean().item() if ref.shape[1] > 1 else 1.0
    return {"samples": int(ref.shape[0]), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "output_max_abs": float(ref.abs().max()), "top1_agreement": agree}


def run_onnx(path, x: torch.Tensor, threads: int = 1, optimize: bool = True) -> np.ndarray:
    """Output of the ONNX model at ``path`` on ``x`` with onnxruntime's CPU provider.

    ``optimize=False`` disables onnxruntime's graph optimisations (which fuse Q/DQ pairs into
    integer kernels): the output is then the ONNX graph's own float semantics.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.detach().cpu().float().numpy()})[0]


def verify_onnx(path, expected: torch.Tensor, x: torch.Tensor, min_agreement: float) -> dict:
    """onnxruntime vs PyTorch, twice.

    The pass/fail comparison runs the graph as written (onnxruntime's graph optimisations off): it
    must reach ``min_agreement`` top-1 agreement. With onnxruntime's default optimisations, Q/DQ
    pairs around a Conv/Gemm are fused into integer kernels (int32 bias, requantized outputs),
    which moves a few activations by one code; that run is reported under ``"optimized"``.
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    result = compare_outputs(expected, run_onnx(path, x, optimize=False))
    try:
        optimized = compare_outputs(expected, run_onnx(path, x))
    except Exception as exc:  # onnxruntime raises its own exception types
        if not any(t.data_type == onnx.TensorProto.INT2 for t in model.graph.initializer):
            raise
        optimized = {"error": str(exc).splitlines()[0][:200], "note": (
            "onnxruntime 1.31 rejects native INT2 weights under its default graph optimisations (its Q/DQ fusion "
            "makes a QLinearConv, which has no int2 kernel); export with int2='int4' for a model it runs as it is")}
    result.update(optimized=optimized, opset=int(model.opset_import[0].version), ir_version=int(model.ir_version),
                  checker="passed", min_agreement=min_agreement, ok=result["top1_agreement"] >= min_agreement)
    return result


def verify_torch(manifest, expected: torch.Tensor, x: torch.Tensor) -> dict:
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
