"""Every hard topology and small zoo model: frozen → torch, onnx, npz, c → read back and run."""
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import jointopt
from jointopt.export import export, read_packed
from jointopt.export.verify import run_onnx
from jointopt.graph import frozen_cost
from jointopt.quant import quantize_weight
from export_cases import CASES, frozen_layers, mixed_frozen


def expected_bytes(frozen):
    """The stated rule, computed here from the frozen tensors: per layer ceil(Σ_c codes_per_channel · bits_c / 8)."""
    per_layer = {}
    for name, m in frozen_layers(frozen):
        bits = sum(m.weight[0].numel() * int(b) for b in m.bits)
        per_layer[name] = (bits, math.ceil(bits / 8))
    return per_layer


@pytest.mark.parametrize("name", CASES)
def test_round_trip_every_format(name, tmp_path):
    net, frozen, x = mixed_frozen(name)
    assert any(m.geometry.out_channels < t.geometry.out_channels
               for (_, m), (_, t) in zip(frozen_layers(frozen), net.searchable_layers())) or name == "grouped"
    result = export(frozen, tmp_path, x, reference=net)
    assert result.verification["ok"], result.report()
    with torch.no_grad():
        reference = frozen(x)

    # onnx: onnxruntime against the frozen network, checked here independently: the graph as written
    # (optimisations off) and with onnxruntime's defaults (Q/DQ fused into integer kernels)
    model = onnx.load(str(tmp_path / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version <= 13 and model.opset_import[0].version == 21
    scale = reference.abs().max().item()
    for optimize in (False, True):
        out = torch.from_numpy(run_onnx(tmp_path / "model.onnx", x, optimize=optimize))
        agreement = (out.argmax(1) == reference.argmax(1)).float().mean().item()
        max_diff = (out - reference).abs().max().item()
        print(f"{name} (optimize={optimize}): max |diff| {max_diff:.3g} of {scale:.3g}, top-1 agreement {agreement:.4f}")
        assert agreement >= 0.999
        assert max_diff < (0.05 if optimize else 0.02) * scale
    assert result.verification["onnx"]["max_abs_diff"] < 0.02 * scale

    # torch: the reloaded network is the same network
    loaded = jointopt.load(tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(x), reference)
    assert [(n, m.bits.tolist(), m.act_bits) for n, m in frozen_layers(loaded)] == \
        [(n, m.bits.tolist(), m.act_bits) for n, m in frozen_layers(frozen)]

    # npz: unpacking reproduces the codes; bytes follow the stated rule and bits equal the memory cost
    packed = {layer.name: layer for layer in read_packed(tmp_path / "model.packed.npz")}
    rule = expected_bytes(frozen)
    assert list(packed) == list(rule)
    for layer_name, module in frozen_layers(frozen):
        codes, scale = module.weight_codes()
        layer = packed[layer_name]
        assert np.array_equal(layer.codes(), codes.numpy())
        assert np.array_equal(layer.scale, scale.numpy())
        assert (layer.packed_bits, layer.weight.size) == rule[layer_name]
        assert torch.equal(torch.from_numpy(layer.dequantized()), quantize_weight(module.weight.detach(), module.bits, module.log_step.detach()))
    assert sum(bits for bits, _ in rule.values()) == frozen_cost(frozen, "memory").item()
    with np.load(tmp_path / "model.packed.npz") as npz:
        stored = sum(npz[f"{n}/weight"].nbytes for n in rule)
    assert stored == sum(b for _, b in rule.values())


@pytest.mark.parametrize("name", ["residual", "concat", "depthwise"])
def test_onnx_weights_keep_channel_order(name, tmp_path):
    """Read each layer's reassembled weight out of the ONNX graph: it must be Q_bits(W) in the original order."""
    _, frozen, x = mixed_frozen(name)
    export(frozen, tmp_path, x, "onnx", options=jointopt.export.ExportOptions(onnx_mixed="grouped"))
    model = onnx.load(str(tmp_path / "model.onnx"))
    layers = frozen_layers(frozen)
    assert any(len(set(m.bits.tolist())) > 1 for _, m in layers)  # groups really are re-assembled
    for layer_name, _ in layers:
        model.graph.output.append(onnx.ValueInfoProto(name=f"{layer_name}.weight"))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = session.run([f"{n}.weight" for n, _ in layers], {"input": x[:1].numpy()})
    for (layer_name, module), weight in zip(layers, outputs):
        assert torch.equal(torch.from_numpy(weight), quantize_weight(module.weight.detach(), module.bits, module.log_step.detach())), layer_name
    kinds = {t.data_type for t in model.graph.initializer if t.name.rsplit(".", 1)[-1] in ("w2", "w4", "w8")}
    assert kinds <= {onnx.TensorProto.UINT8, onnx.TensorProto.INT4} and onnx.TensorProto.INT4 in kinds


def test_low_bit_activations_match_fake_quant(tmp_path):
    """2- and 4-bit activations: INT8/UINT8 containers narrowed by Clip give PyTorch's fake-quant result."""
    space = jointopt.SearchSpace(act_bits=(2, 4, 8))
    for act, bits in (([5.0, 0.0, 0.0], 2), ([0.0, 5.0, 0.0], 4)):
        _, frozen, x = mixed_frozen("concat", space=space, act_logits=act)
        assert {m.act_bits for _, m in frozen_layers(frozen)} == {bits}
        assert {m.act_signed for _, m in frozen_layers(frozen)} == {True, False}
        result = export(frozen, tmp_path / str(bits), x, "onnx")
        model = onnx.load(str(tmp_path / str(bits) / "model.onnx"))
        assert sum(n.op_type == "Clip" and n.name.endswith(".x.clip") for n in model.graph.node) == \
            len(frozen_layers(frozen))
        with torch.no_grad():
            reference = frozen(x)
        out = torch.from_numpy(run_onnx(tmp_path / str(bits) / "model.onnx", x, optimize=False))
        assert (out - reference).abs().max().item() < 1e-4, bits
        assert result.verification["onnx"]["top1_agreement"] >= 0.999


@pytest.mark.skipif(tuple(int(p) for p in ort.__version__.split(".")[:2]) < (1, 24),
                    reason="native INT2 (opset 25, IR 13) needs onnxruntime >= 1.24")
def test_native_int2_option(tmp_path):
    _, frozen, x = mixed_frozen("residual")
    assert any((m.bits == 2).any() for _, m in frozen_layers(frozen))
    result = export(frozen, tmp_path, x, "onnx", options=jointopt.export.ExportOptions(int2="native",
                                                                                        onnx_mixed="grouped"))
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert model.opset_import[0].version == 25
    assert onnx.TensorProto.INT2 in {t.data_type for t in model.graph.initializer}
    onnx.checker.check_model(model, full_check=True)
    out = torch.from_numpy(run_onnx(tmp_path / "model.onnx", x, optimize=False))
    with torch.no_grad():
        assert (out - frozen(x)).abs().max().item() < 1e-4
    assert result.verification["onnx"]["ok"]


def test_export_leaves_the_network_as_it_was(tmp_path):
    _, frozen, x = mixed_frozen("chain")
    frozen.train()
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    export(frozen, tmp_path, x, "onnx,npz")
    assert frozen.training
    assert all(torch.equal(before[k], v) for k, v in frozen.state_dict().items())
    assert all(m.quantize for _, m in frozen_layers(frozen))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.packed.npz", "summary.txt", "verify.json"]


def test_reloaded_network_exports_the_same_packed_bytes(tmp_path):
    _, frozen, x = mixed_frozen("temporal")
    export(frozen, tmp_path / "a", x, "torch,npz")
    export(jointopt.load(tmp_path / "a" / "model.json"), tmp_path / "b", x, "npz")
    a, b = read_packed(tmp_path / "a" / "model.packed.npz"), read_packed(tmp_path / "b" / "model.packed.npz")
    assert [(l.name, l.weight.tobytes(), l.scale.tobytes()) for l in a] == \
        [(l.name, l.weight.tobytes(), l.scale.tobytes()) for l in b]


def test_summary_counts_kept_channels_and_bits(tmp_path):
    net, frozen, x = mixed_frozen("residual")
    result = export(frozen, tmp_path, x, "npz", reference=net)
    rows = {r["layer"]: r for r in result.summary}
    for row in net.summary():
        mine = rows[row["layer"]]
        assert (mine["kept"], mine["total"], mine["bits"]) == (row["kept"], row["total"], row["bits"])
    text = (tmp_path / "summary.txt").read_text()
    assert "kept/total" in text and f"{sum(r['weight_bytes'] for r in result.summary):,}" in text


def test_verification_failure_is_an_error(tmp_path, monkeypatch):
    from jointopt.export import verify

    _, frozen, x = mixed_frozen("chain")
    monkeypatch.setattr(verify, "layer_memory_bits", lambda f: {n: 1 for n, _ in frozen_layers(f)})
    with pytest.raises(jointopt.ExportError, match="verification failed"):
        export(frozen, tmp_path, x, "npz")
    assert (tmp_path / "verify.json").exists()


def all_eight_bit(frozen):
    """The same pruned network with every kept channel at 8 bits (for size comparisons)."""
    import copy

    from jointopt.quant import init_step

    other = copy.deepcopy(frozen)
    with torch.no_grad():
        for _, m in frozen_layers(other):
            m.bits.fill_(8)
            m.log_step.copy_(init_step(m.weight.detach(), 8).log().reshape(m.log_step.shape))
    return other


@pytest.mark.parametrize("name", ["chain", "depthwise", "flatten_linear", "dscnn"])
def test_mixed_width_onnx_is_not_larger_than_the_8_bit_one(name, tmp_path):
    """Small mixed layers pay more for Concat + Gather + per-width nodes than the narrow codes save:
    onnx_mixed="smallest" stores them in one UINT8 initializer, never larger than the 8-bit file."""
    from jointopt.export import ExportOptions

    _, frozen, x = mixed_frozen(name)
    sizes, outputs = {}, {}
    for mode in ("smallest", "grouped", "uint8"):
        export(frozen, tmp_path / mode, x, "onnx", options=ExportOptions(onnx_mixed=mode))
        sizes[mode] = (tmp_path / mode / "model.onnx").stat().st_size
        outputs[mode] = run_onnx(tmp_path / mode / "model.onnx", x, optimize=False)
    export(all_eight_bit(frozen), tmp_path / "eight", x, "onnx")
    eight = (tmp_path / "eight" / "model.onnx").stat().st_size
    assert sizes["smallest"] <= min(sizes["grouped"], sizes["uint8"], eight), (sizes, eight)
    assert np.array_equal(outputs["grouped"], outputs["uint8"]) and np.array_equal(outputs["smallest"], outputs["uint8"])
    # the default (grouped) file carries no dead weight: no zero points of 0, int32 channel order,
    # no intermediate shapes
    export(frozen, tmp_path / "default", x, "onnx")
    model = onnx.load(str(tmp_path / "default" / "model.onnx"))
    inits = {t.name: t for t in model.graph.initializer}
    assert (tmp_path / "default" / "model.onnx").stat().st_size == sizes["grouped"]
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits and len(node.input) == 3:  # a weight
            assert onnx.numpy_helper.to_array(inits[node.input[2]]).any(), node.name
    orders = [t for name, t in inits.items() if name.endswith(".order")]
    assert orders and all(t.data_type == onnx.TensorProto.INT32 for t in orders)
    assert len(model.graph.value_info) == 0
