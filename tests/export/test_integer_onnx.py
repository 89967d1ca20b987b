"""The int8 ONNX form: onnxruntime runs it with integer kernels and gives the C runtime's logits."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export_cases import mixed_frozen
from jointopt.export import export
from jointopt.export.integer import build_program, run_reference
from jointopt.export.onnx_int8 import IR_VERSION, write_onnx_int8
from nets import TOPOLOGIES
from test_integer import extras_frozen

CASES = ["digits_cnn"] + sorted(TOPOLOGIES) + ["extras"]


def session(path, optimized=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    before = torch.get_num_threads()  # one thread while building; the process keeps its setting
    torch.set_num_threads(1)
    try:
        out = {}
        for case in CASES:
            frozen, x = extras_frozen() if case == "extras" else mixed_frozen(case)[1:]
            program = build_program(frozen, x)
            path = write_onnx_int8(program, tmp_path_factory.mktemp(case) / "model.int8.onnx")
            out[case] = (frozen, x, program, path)
    finally:
        torch.set_num_threads(before)
    return out


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_gives_the_integer_logits(case, models):
    frozen, x, program, path = models[case]
    got = session(path).run(None, {"input": x.numpy()})[0]
    reference, _ = run_reference(program, x)
    assert (got == reference).all(1).mean() >= 0.99  # near-ties may round differently in onnxruntime
    with torch.no_grad():
        expected = frozen(x).numpy()
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.99


def test_integer_kernels_survive_the_default_optimisations(models, tmp_path):
    _, x, _, path = models["residual"]
    session(path, optimized=tmp_path / "optimized.onnx").run(None, {"input": x.numpy()})
    ops = {node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node}
    assert {"QLinearConv", "QLinearAdd", "QLinearGlobalAveragePool"} <= ops
    assert not ops & {"Conv", "Gemm", "MatMul", "DequantizeLinear"}  # no float convolution anywhere


def test_weights_are_unsigned_with_zero_point_128(models):
    model = onnx.load(str(models["digits_cnn"][3]))
    assert model.ir_version == IR_VERSION
    weights = [t for t in model.graph.initializer if t.name.startswith("weight_") and len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.UINT8 for t in weights)
    zeros = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name.startswith("weight_zero")]
    assert zeros and all(np.all(z == 128) for z in zeros)


def test_export_writes_and_verifies_it(tmp_path):
    _, frozen, x = mixed_frozen("concat")
    result = export(frozen, tmp_path, x, "onnx_int8")
    check = result.verification["onnx_int8"]
    assert (tmp_path / "model.int8.onnx").exists() and check["ok"] and check["equal_to_reference"] >= 0.99
    assert "QLinearConv" in check["operators"] and "onnx_int8  onnxruntime integer kernels" in result.report()


def test_padding_in_onnx_and_circular_refused(tmp_path):
    import jointopt
    from jointopt.errors import ExportError
    from test_c_runtime import Padded

    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    model = Padded().eval()
    frozen = jointopt.convert(model, x[:8]).eval().set_mode("hard").freeze().eval()
    with pytest.raises(ExportError, match="circular"):
        export(frozen, tmp_path / "explicit", x, "onnx_int8")
    result = export(frozen, tmp_path / "all", x, "all")
    assert "circular" in result.verification["onnx_int8"]["skipped"] and result.verification["c"]["ok"]
    model.d.padding_mode = "zeros"  # reflect, replicate and zeros remain: ONNX Pad has them
    frozen = jointopt.convert(model, x[:8]).eval().set_mode("hard").freeze().eval()
    program = build_program(frozen, x)
    got = session(write_onnx_int8(program, tmp_path / "pad.onnx")).run(None, {"input": x.numpy()})[0]
    assert (got == run_reference(program, x)[0]).all(1).mean() >= 0.99
