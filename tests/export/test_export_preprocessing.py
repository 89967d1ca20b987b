"""Every export carries the preprocessing (per-channel mean/std, layout, raw range, class names), and the
ONNX graph applies it: raw pixels in, the trained network's classes out."""
import json

import numpy as np
import onnx
import pytest
import torch

import jointopt
from jointopt.errors import ExportError
from jointopt.export import ExportOptions, export
from jointopt.export.npz_format import read_meta
from jointopt.export.preprocessing import Preprocessing, read_preprocessing
from jointopt.export.verify import run_onnx


@pytest.fixture(scope="module")
def digits():
    return jointopt.get_dataset("digits")


@pytest.fixture(scope="module")
def exported(digits, tmp_path_factory):
    """A digits_cnn trained briefly, frozen at mixed widths, exported in the Python formats with its data set."""
    torch.manual_seed(0)
    model = jointopt.create_model("digits_cnn")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        for x, y in digits.batches("train", 32, shuffle=True, generator=generator):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    val = next(iter(digits.batches("val", 256)))[0]
    frozen = jointopt.convert(model.eval(), val).eval().set_mode("hard").freeze().eval()
    directory = tmp_path_factory.mktemp("pre")
    export(frozen, directory, val, "torch,onnx,npz", preprocessing=digits)
    return directory, frozen


def test_normalize_is_the_data_pipeline_bit_for_bit(digits):
    pre = Preprocessing.from_dataset(digits)
    assert pre.layout == "NCHW" and pre.raw_dtype == "uint8" and pre.raw_range == (0.0, 255.0)
    assert pre.mean == pytest.approx((77.97,), abs=0.01) and pre.std == pytest.approx((95.96,), abs=0.01)
    assert pre.class_names == tuple(str(i) for i in range(10))
    x, _ = next(iter(digits.batches("test", 100)))
    assert torch.equal(pre.normalize(digits.test.x[:100]), x)
    assert torch.equal(pre.raw_from(x), digits.test.x[:100].float())  # integer raw data round-trips
    assert Preprocessing.from_dict(json.loads(json.dumps(pre.to_dict()))) == pre


@pytest.mark.parametrize("change, message", [
    (dict(std=(0.0,)), "std must be > 0"),
    (dict(mean=(1.0, 2.0)), "2 means for 1"),
    (dict(layout="NHWC"), "layout"),
    (dict(raw_range=(5, 1)), "raw_range"),
    (dict(raw_dtype="pixels"), "raw_dtype"),
    (dict(mean=("a",)), "mean must be"),
])
def test_invalid_preprocessing_is_refused(change, message):
    fields = dict(mean=(1.0,), std=(2.0,))
    fields.update(change)
    with pytest.raises(ExportError, match=message):
        Preprocessing(**fields)


def test_every_format_records_it(exported, digits):
    directory, _ = exported
    want = Preprocessing.from_dataset(digits)
    manifest = json.loads((directory / "model.json").read_text())
    props = {p.key: p.value for p in onnx.load(str(directory / "model.onnx")).metadata_props}
    records = {"manifest": manifest["preprocessing"], "npz": read_meta(directory / "model.packed.npz")["preprocessing"],
               "onnx": json.loads(props["jointopt.preprocessing"]),
               "verify.json": json.loads((directory / "verify.json").read_text())["preprocessing"]}
    for where, record in records.items():
        assert Preprocessing.from_dict(record) == want, where
        assert record["inv_std"] == list(want.inv_std) and record["class_names"] == list(want.class_names), where
    for name in ("verify.json", "model.json", "model.onnx", "model.packed.npz"):
        assert read_preprocessing(directory / name) == want, name
    assert "raw data" in props["jointopt.input"]


def test_onnx_takes_raw_data_and_normalises_it(exported, digits):
    """The issue's deployment check: raw test pixels into the ONNX give the frozen network's classes."""
    directory, frozen = exported
    model = onnx.load(str(directory / "model.onnx"))
    assert [i.name for i in model.graph.input] == ["raw"]
    assert [n.op_type for n in model.graph.node[:2]] == ["Sub", "Mul"]
    raw = digits.test.x.float()
    x, _ = next(iter(digits.batches("test", len(digits.test))))
    with torch.no_grad():
        expected = frozen(x)
    for optimize in (False, True):
        out = torch.from_numpy(run_onnx(directory / "model.onnx", raw, optimize=optimize))
        assert (out.argmax(1) == expected.argmax(1)).float().mean().item() >= 0.999, optimize
    written = torch.from_numpy(run_onnx(directory / "model.onnx", raw, optimize=False))
    assert (written - expected).abs().max().item() < 1e-4 * expected.abs().max().item()


def test_option_keeps_normalised_input_and_unknown_preprocessing_is_said(exported, digits, tmp_path):
    _, frozen = exported
    x = next(iter(digits.batches("val", 64)))[0]
    export(frozen, tmp_path / "a", x, "onnx", preprocessing=digits, options=ExportOptions(normalize_input=False))
    model = onnx.load(str(tmp_path / "a" / "model.onnx"))
    assert [i.name for i in model.graph.input] == ["input"] and model.graph.node[0].op_type != "Sub"
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["jointopt.preprocessing"])["in_graph"] is False
    export(frozen, tmp_path / "b", x, "onnx,npz")
    verify = json.loads((tmp_path / "b" / "verify.json").read_text())
    assert "not recorded" in verify["preprocessing"] and read_preprocessing(tmp_path / "b") is None
    with pytest.raises(ExportError, match="names 3 classes but the network has 10"):
        export(frozen, tmp_path / "c", x, "npz", preprocessing=Preprocessing((0.0,), (1.0,), class_names=("a", "b", "c")))
