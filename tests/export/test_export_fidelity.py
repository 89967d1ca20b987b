"""The ONNX export on TRAINED networks: right under onnxruntime's default settings, and verify says so.

onnxruntime's default optimisations fuse Q/DQ'd convolutions into integer kernels; with int8
weights those are the uint8 × int8 kernels that saturate on AVX2 CPUs without VNNI (wrong on up to
9 % of a trained network's test samples, measured under emulation: benchmarks/export_fidelity.py).
The export stores 8-bit weights as uint8 (zero point 128), so every fused kernel is uint8 × uint8,
which is exact on every x86 CPU; these tests check that structurally (on any CPU) and check the
default-settings outputs on this one.
"""
import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

import jointopt
from jointopt.errors import ExportError
from jointopt.export import export
from jointopt.export import verify as verify_module
from jointopt.export.verify import run_onnx
from export_cases import frozen_layers

# onnxruntime forms integer kernels from opset-21 Q/DQ graphs from 1.23 on (1.19-1.22 run them in float)
FUSES = tuple(int(p) for p in ort.__version__.split(".")[:2]) >= (1, 23)


@pytest.fixture(scope="module")
def trained():
    """digits_cnn trained for 300 steps on scikit-learn's digits (about 97 % test accuracy)."""
    torch.manual_seed(0)
    data = jointopt.get_dataset("digits")
    model = jointopt.create_model("digits_cnn")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    steps = 0
    while steps < 300:
        for x, y in data.batches("train", 32, shuffle=True, generator=generator, drop_last=True):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if steps == 300:
                break
    model.eval()
    val = next(iter(data.batches("val", 256)))[0]
    test_x = torch.cat([x for x, _ in data.batches("test", 512)])
    with torch.no_grad():
        accuracy = (model(test_x).argmax(1) == data.test.y).float().mean().item()
    assert accuracy > 0.9, accuracy  # really trained
    return model, data, val, test_x


def frozen_at(model, val, bits=None, seed=0):
    """All channels kept; every layer at ``bits`` (8: the integer-kernel path) or a random mix."""
    net = jointopt.convert(model, val)
    g = torch.Generator().manual_seed(seed)
    for _, layer in net.searchable_layers():
        if bits is None:
            layer.bit_logits.data = torch.randn(layer.bit_logits.shape, generator=g) * 2
        else:
            layer.bit_logits.data.fill_(-10.0)
            layer.bit_logits.data[..., list(net.space.nonzero_bits).index(bits)] = 10.0
    for gate in net.gates.values():
        gate.logits.data.fill_(10.0)
    return net.eval().set_mode("hard").freeze().eval()


def optimized_graph(path, tmp_path):
    """The graph onnxruntime runs with its default settings (read independently of jointopt's verify)."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return onnx.load(str(tmp_path / "optimized.onnx"))


def integer_weight_types(model):
    """Element type of the weight input of every QLinearConv / QGemm onnxruntime formed."""
    types = {t.name: t.data_type for t in model.graph.initializer}
    return collections.Counter(onnx.TensorProto.DataType.Name(types.get(n.input[3], 0))
                               for n in model.graph.node if n.op_type in ("QLinearConv", "QGemm"))


@pytest.mark.parametrize("bits", [8, None], ids=["all 8 bit", "mixed"])
def test_default_settings_agree_on_a_trained_network(trained, tmp_path, bits):
    model, data, val, test_x = trained
    frozen = frozen_at(model, val, bits)
    result = export(frozen, tmp_path, val, "onnx", preprocessing=data)
    path = tmp_path / "model.onnx"
    kernels = integer_weight_types(optimized_graph(path, tmp_path))
    if bits == 8 and FUSES:
        assert sum(kernels.values()) >= 2  # the fused integer path really is exercised
    assert "INT8" not in kernels, kernels  # no uint8 x int8 kernel: those saturate on AVX2 without VNNI
    raw = data.test.x.float()
    with torch.no_grad():
        expected = frozen(test_x)
    for optimize in (True, False):
        out = torch.from_numpy(run_onnx(path, raw, optimize=optimize))
        agreement = (out.argmax(1) == expected.argmax(1)).float().mean().item()
        assert agreement >= 0.999, (optimize, agreement)
        onnx_acc = (out.argmax(1) == data.test.y).float().mean().item()
        torch_acc = (expected.argmax(1) == data.test.y).float().mean().item()
        assert abs(onnx_acc - torch_acc) < 1e-3
    check = result.verification["onnx"]
    assert check["ok"] and check["optimized"]["ok"] and check["optimized"]["kernels"]["int8_weight_kernels"] == []


def test_code_minus_128_survives_the_uint8_storage(trained, tmp_path):
    """8-bit codes use the full grid -128..127; stored as code + 128 they must come back exactly."""
    model, data, val, _ = trained
    frozen = frozen_at(model, val, 8)
    name, layer = frozen_layers(frozen)[0]
    with torch.no_grad():
        step = layer.log_step.exp()
        layer.weight[0].view(-1)[0] = -300 * step[0]  # clamps to code -128
        layer.weight[1].view(-1)[0] = 300 * step[1]  # clamps to code 127
    codes, _ = layer.weight_codes()
    assert codes.min().item() == -128 and codes.max().item() == 127
    export(frozen, tmp_path, val, "onnx")
    model_onnx = onnx.load(str(tmp_path / "model.onnx"))
    model_onnx.graph.output.append(onnx.ValueInfoProto(name=f"{name}.weight"))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model_onnx.SerializeToString(), options, providers=["CPUExecutionProvider"])
    weight = session.run([f"{name}.weight"], {session.get_inputs()[0].name: val[:1].numpy()})[0]
    assert np.array_equal(weight, jointopt.quant.quantize_weight(layer.weight.detach(), layer.bits,
                                                                 layer.log_step.detach()).numpy())
    stored = {t.name: t for t in model_onnx.graph.initializer}[f"{name}.w8"]
    assert stored.data_type == onnx.TensorProto.UINT8


def test_verify_fails_when_the_default_settings_run_disagrees(trained, tmp_path, monkeypatch):
    """A default-settings run that changes classes fails the export; the report does not say ok."""
    model, data, val, _ = trained
    frozen = frozen_at(model, val, 8)
    real = verify_module.run_onnx

    def broken_kernels(path, x, threads=1, optimize=True, save_optimized=None):
        out = real(path, x, threads, optimize, save_optimized)
        return np.roll(out, 1, axis=1) if optimize else out  # what saturated kernels do to a few samples, to all

    monkeypatch.setattr(verify_module, "run_onnx", broken_kernels)
    with pytest.raises(ExportError, match="verification failed \\(onnx\\)") as info:
        export(frozen, tmp_path, val, "onnx")
    lines = str(info.value).splitlines()
    default = next(l for l in lines if "default settings" in l)
    assert default.rstrip().endswith("FAILED") and ("QLinearConv" in default or not FUSES)
    written = next(l for l in lines if "graph as written" in l)
    assert written.rstrip().endswith("ok")


def test_report_names_the_kernels_onnxruntime_formed(trained, tmp_path):
    """'Q/DQ fused into integer kernels' only when onnxruntime formed some; what it formed otherwise."""
    model, data, val, _ = trained
    for bits, fused in ((8, FUSES), (4, False)):
        result = export(frozen_at(model, val, bits), tmp_path / str(bits), val, "onnx")
        graph = optimized_graph(tmp_path / str(bits) / "model.onnx", tmp_path)
        convs = sum(n.op_type == "QLinearConv" for n in graph.graph.node)
        assert bool(integer_weight_types(graph)) == fused
        line = next(l for l in result.report().splitlines() if "default settings" in l)
        if fused:
            assert "fused into" in line and f"QLinearConv x{convs}" in line
        else:
            assert "no Q/DQ fusion" in line and "fused into" not in line


def test_only_near_ties_are_forgiven():
    from jointopt.export.verify import compare_outputs

    reference = torch.tensor([[1.00, 0.99, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 1.0]])
    other = torch.tensor([[0.98, 1.00, 0.0], [0.0, 3.0, 0.0], [0.0, 2.0, 1.0]])
    result = compare_outputs(reference, other, tie=0.02)  # near tie: margin <= 0.02 * 3.0
    assert result["top1_agreement"] == pytest.approx(1 / 3)
    assert result["near_ties"] == 1 and result["decisive_agreement"] == pytest.approx(2 / 3)
