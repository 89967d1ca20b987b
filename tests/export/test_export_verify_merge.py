"""verify.json records every format exported into a folder, not only the last export's."""
import json

from export_cases import mixed_frozen
from jointopt.export import export


def test_exports_into_one_folder_merge_their_checks(tmp_path):
    net, frozen, x = mixed_frozen("digits_cnn")
    export(frozen, tmp_path, x, "torch", reference=net)
    export(frozen, tmp_path, x, "npz", reference=net)
    verify = json.loads((tmp_path / "verify.json").read_text())
    assert verify["torch"]["ok"] and verify["npz"]["ok"] and verify["ok"]
    assert {"manifest", "weights", "npz"} <= set(verify["file_bytes"])
    export(frozen, tmp_path, x, "torch", reference=net)  # again: replaced, the npz checks stay
    assert set(json.loads((tmp_path / "verify.json").read_text())) == set(verify)


def test_another_network_in_the_folder_starts_afresh(tmp_path):
    _, frozen, x = mixed_frozen("digits_cnn")
    export(frozen, tmp_path, x, "npz")
    _, other, y = mixed_frozen("digits_cnn", seed=5)  # another allocation: other packed sizes
    export(other, tmp_path, y, "torch")
    verify = json.loads((tmp_path / "verify.json").read_text())
    assert "torch" in verify and "npz" not in verify and "npz" not in verify["file_bytes"]
