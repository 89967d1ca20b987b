"""The torch format: the manifest is data, never code; corrupt or tampered files give ExportError."""
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
import torch

import jointopt
from jointopt.errors import ExportError
from jointopt.export import export
from jointopt.export.manifest import manifest_digest
from export_cases import mixed_frozen


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    directory = tmp_path_factory.mktemp("torch_export")
    torch.set_num_threads(1)
    _, frozen, x = mixed_frozen("concat")
    export(frozen, directory, x, "torch")
    return directory, frozen, x


def copy_export(exported, tmp_path):
    directory, _, _ = exported
    for name in ("model.json", "model.weights.npz"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    return json.loads((tmp_path / "model.json").read_text())


def write(tmp_path, manifest, reseal=True):
    """Write an edited manifest; ``reseal`` recomputes its own checksum, as a careful editor would,
    so that the checks behind the checksum are tested too."""
    if reseal:
        manifest["sha256"] = manifest_digest(manifest)
    (tmp_path / "model.json").write_text(json.dumps(manifest))


def rewrite_weights(tmp_path, manifest, change):
    """Change the weights file and update the checksum, as a careful attacker would."""
    with np.load(tmp_path / "model.weights.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (tmp_path / "model.weights.npz").write_bytes(buffer.getvalue())
    manifest["weights"]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    write(tmp_path, manifest)


def node(manifest, name):
    return next(n for n in manifest["graph"] if n["name"] == name)


def assert_rejected(exported, tmp_path, change, message):
    """A fresh copy of the export, edited by ``change``, must fail to load with ``message``."""
    manifest = copy_export(exported, tmp_path)
    change(manifest)
    write(tmp_path, manifest)
    with pytest.raises(ExportError, match=message):
        jointopt.load(tmp_path)


def test_manifest_is_plain_json_with_the_frozen_choices(exported):
    directory, frozen, x = exported
    manifest = json.loads((directory / "model.json").read_text())
    assert manifest["format"] == "jointopt.frozen" and manifest["version"] == 2
    layers = {m["name"]: m for m in manifest["modules"] if m["type"] == "FrozenLayer"}
    for name, module in frozen.named_modules():
        if isinstance(module, jointopt.nn.FrozenLayer):
            assert layers[name]["bits"] == module.bits.tolist()
            assert layers[name]["geometry"]["out_channels"] == module.geometry.out_channels
            assert "act_clip" not in layers[name]  # the weights file holds it: one source of truth
    assert "tensors" not in manifest
    assert {n["target"] for n in manifest["graph"] if n["op"] == "call_function"} >= {"torch.cat"}
    with zipfile.ZipFile(directory / "model.weights.npz") as z:  # numbers only, no pickles
        assert all(name.endswith(".npy") for name in z.namelist())
    loaded = jointopt.load(directory / "model.json")
    with torch.no_grad():
        assert torch.equal(loaded(x), frozen(x))


@pytest.mark.parametrize("target, args", [
    ("os.system", ["touch {marker}"]),
    ("builtins.eval", ["__import__('os').system('touch {marker}')"]),
    ("builtins.exec", ["open('{marker}', 'w')"]),
    ("subprocess.call", [["touch", "{marker}"]]),
    ("torch.load", ["{marker}"]),
])
def test_functions_outside_the_vocabulary_are_refused(exported, tmp_path, target, args):
    manifest = copy_export(exported, tmp_path)
    marker = tmp_path / "pwned"
    entry = node(manifest, "cat")
    entry["target"] = target
    entry["args"] = json.loads(json.dumps(args).replace("{marker}", str(marker)))
    write(tmp_path, manifest)
    with pytest.raises(ExportError, match="not in the vocabulary"):
        jointopt.load(tmp_path)
    assert not marker.exists()


def test_other_injection_routes_are_refused(exported, tmp_path):
    cases = [
        (lambda m: node(m, "cat").update(op="call_method", target="__reduce_ex__"), "tensor method"),
        (lambda m: node(m, "getattr_1").update(args=[{"node": "silu"}, "__class__"]), "getattr may only read"),
        (lambda m: m["graph"][0].update(target="x=__import__('os').system('id')"), "not a valid identifier"),
        (lambda m: m["graph"][1].update(name="a; import os"), "not a valid identifier"),
        (lambda m: m["modules"][1].update(type="Popen"), "not in the vocabulary"),
        (lambda m: m["modules"][1].update(name="__class__"), "not a valid module path"),
        (lambda m: node(m, "cat").update(kwargs={"dim": {"__reduce__": "os.system"}}), "unsupported argument"),
        (lambda m: node(m, "cat").update(op="call_module", target="os.system"), "does not declare"),
        (lambda m: m.update(weights={"file": "../../etc/passwd.npz", "sha256": ""}), "plain .npz file name"),
    ]
    for change, message in cases:
        assert_rejected(exported, tmp_path, change, message)


@pytest.mark.parametrize("version, message", [(3, "newer jointopt"), ("1", "not supported"), (None, "not supported"),
                                              (0, "not supported")])
def test_bad_version(exported, tmp_path, version, message):
    assert_rejected(exported, tmp_path, lambda m: m.update(version=version), message)


def test_wrong_shapes_and_inconsistent_choices(exported, tmp_path):
    def layer(m, name="mix"):
        return next(e for e in m["modules"] if e["name"] == name)

    cases = [
        (lambda m: layer(m)["geometry"].update(in_channels=layer(m)["geometry"]["in_channels"] + 1), "shape"),
        (lambda m: layer(m).update(bits=layer(m)["bits"][:-1]), "bits"),
        (lambda m: layer(m).update(bits=[3] * len(layer(m)["bits"])), "not among weight_bits"),
        (lambda m: layer(m)["geometry"].update(kind="conv3d"), "unknown layer kind"),
        (lambda m: layer(m).update(act_bits=5), "act_bits"),
        (lambda m: node(m, "mix").update(args=[{"node": "nowhere"}]), "not defined before"),
        (lambda m: m["graph"].pop(), "end in one output"),
        (lambda m: m.update(format="something-else"), "not a jointopt manifest"),
    ]
    for change, message in cases:
        assert_rejected(exported, tmp_path, change, message)


def test_graph_that_does_not_fit_together(exported, tmp_path, capfd):
    """Shapes consistent per layer but not across layers: caught by running the rebuilt network once,
    in one line, without torch.fx printing the generated code to stderr."""
    for dim in (0, 7):
        manifest = copy_export(exported, tmp_path)
        node(manifest, "cat")["kwargs"] = {"dim": dim}
        write(tmp_path, manifest)
        with pytest.raises(ExportError, match="does not run"):
            jointopt.load(tmp_path)
        assert capfd.readouterr().err == ""


@pytest.mark.parametrize("edit", [
    lambda m: layer_entry(m, "mix")["geometry"].update(stride=[2, 2]),
    lambda m: layer_entry(m, "mix")["geometry"].update(padding=[0, 0]),
    lambda m: layer_entry(m, "mix")["geometry"].update(dilation=[2, 2]),
    lambda m: layer_entry(m, "mix").update(act_signed=not layer_entry(m, "mix")["act_signed"]),
    lambda m: layer_entry(m, "mix").update(act_bits=4, act_choices=[4, 8]),
    lambda m: layer_entry(m, "mix").update(quantize=False),
    lambda m: m["metadata"].update(val_acc=100.0),
    lambda m: m["weights"].update(bytes=1),
], ids=["stride", "padding", "dilation", "act_signed", "act_bits", "quantize", "metadata", "weights"])
def test_edited_manifest_is_refused(exported, tmp_path, edit):
    """Fields with no counterpart in the weights file change the network silently: the checksum catches them."""
    manifest = copy_export(exported, tmp_path)
    edit(manifest)
    write(tmp_path, manifest, reseal=False)
    with pytest.raises(ExportError, match="changed after export"):
        jointopt.load(tmp_path)
    write(tmp_path, manifest)  # resealed: loads (where the edit is consistent) as the edited network
    try:
        jointopt.load(tmp_path)
    except ExportError as exc:
        assert "changed after export" not in str(exc)


def layer_entry(manifest, name):
    return next(e for e in manifest["modules"] if e["name"] == name)


def test_duplicated_fields_must_agree_with_the_weights(exported, tmp_path):
    """A manifest that lists tensors or act_clip (version 1 did) must list the weights file's values."""
    directory, frozen, x = exported
    manifest = copy_export(exported, tmp_path)
    with np.load(tmp_path / "model.weights.npz") as npz:
        listed = {k: {"shape": list(npz[k].shape), "dtype": str(npz[k].dtype)} for k in npz.files}
        clip = float(npz["mix.act_clip"])
    manifest.update(version=1, tensors=listed)
    manifest.pop("sha256")
    layer_entry(manifest, "mix")["act_clip"] = clip
    write(tmp_path, manifest, reseal=False)
    with torch.no_grad():
        assert torch.equal(jointopt.load(tmp_path)(x), frozen(x))  # consistent version 1 still loads
    for change, message in [
        (lambda m: m["tensors"]["mix.weight"].update(shape=[1, 2, 3, 4]), "listed as"),
        (lambda m: m["tensors"]["mix.bias"].update(dtype="float64"), "listed as"),
        (lambda m: m["tensors"].pop("mix.bias"), "listed as"),
        (lambda m: layer_entry(m, "mix").update(act_clip=clip * 2), "act_clip"),
        (lambda m: layer_entry(m, "mix").update(bits=[8] * len(layer_entry(m, "mix")["bits"])), "bits"),
    ]:
        edited = json.loads(json.dumps(manifest))
        change(edited)
        write(tmp_path, edited, reseal=False)
        with pytest.raises(ExportError, match=message):
            jointopt.load(tmp_path)


def test_missing_corrupt_or_swapped_weights(exported, tmp_path):
    manifest = copy_export(exported, tmp_path)
    (tmp_path / "model.weights.npz").write_bytes(b"not a zip file")
    with pytest.raises(ExportError, match="checksum"):
        jointopt.load(tmp_path)
    manifest = copy_export(exported, tmp_path)
    (tmp_path / "model.weights.npz").unlink()
    with pytest.raises(ExportError, match="missing"):
        jointopt.load(tmp_path)

    manifest = copy_export(exported, tmp_path)
    rewrite_weights(tmp_path, manifest, lambda a: a.pop("mix.weight"))
    with pytest.raises(ExportError, match="no tensor 'mix.weight'"):
        jointopt.load(tmp_path)
    manifest = copy_export(exported, tmp_path)
    rewrite_weights(tmp_path, manifest, lambda a: a.update(extra=np.zeros(3, np.float32)))
    with pytest.raises(ExportError, match="does not use"):
        jointopt.load(tmp_path)
    manifest = copy_export(exported, tmp_path)
    rewrite_weights(tmp_path, manifest, lambda a: a.update({"mix.weight": a["mix.weight"][:, :-1]}))
    with pytest.raises(ExportError, match="shape"):
        jointopt.load(tmp_path)


def test_pickled_arrays_are_never_unpickled(exported, tmp_path):
    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    manifest = copy_export(exported, tmp_path)
    rewrite_weights(tmp_path, manifest, lambda a: a.update({"mix.weight": np.array([Boom()], dtype=object)}))
    with pytest.raises(ExportError, match="cannot read"):
        jointopt.load(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_not_json_and_wrong_paths(exported, tmp_path):
    copy_export(exported, tmp_path)
    (tmp_path / "model.json").write_text('{"format": "jointopt.frozen", ')
    with pytest.raises(ExportError, match="not valid JSON"):
        jointopt.load(tmp_path / "model.json")
    with pytest.raises(ExportError, match="no export"):
        jointopt.load(tmp_path / "absent.json")
    with pytest.raises(ExportError, match="onnxruntime"):
        jointopt.load(tmp_path / "model.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="exactly one"):
        jointopt.load(tmp_path / "empty")


def test_export_takes_only_frozen_networks(tmp_path):
    net, frozen, x = mixed_frozen("chain")
    with pytest.raises(ExportError, match="freeze"):
        export(net, tmp_path, x)
    with pytest.raises(ExportError, match="frozen network"):
        export(torch.nn.Linear(3, 4), tmp_path, x)
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export(frozen, tmp_path, x, "tflite")
