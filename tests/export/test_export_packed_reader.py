"""read_packed is strict: an edited or truncated packed .npz is an ExportError naming the field, never a
silently different network or a raw ValueError later."""
import json

import numpy as np
import pytest
import torch

from jointopt.errors import ExportError
from jointopt.export import export, read_packed
from jointopt.export.npz_format import read_meta
from export_cases import frozen_layers, mixed_frozen


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("packed")
    torch.set_num_threads(1)
    _, frozen, x = mixed_frozen("residual")
    export(frozen, directory, x, "npz")
    path = directory / "model.packed.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return path, arrays, frozen


def layer_with_two_widths(frozen):
    return next(n for n, m in frozen_layers(frozen) if len(set(m.bits.tolist())) > 1 and 2 in m.bits.tolist())


def edited(tmp_path, arrays, change):
    arrays = {k: v.copy() for k, v in arrays.items()}
    meta = json.loads(str(arrays["meta"]))
    change(arrays, meta)
    arrays["meta"] = np.asarray(json.dumps(meta))
    path = tmp_path / "edited.packed.npz"
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def test_untouched_file_reads_back(packed):
    path, _, frozen = packed
    layers = read_packed(path)
    assert [l.name for l in layers] == [n for n, _ in frozen_layers(frozen)]
    assert all(set(l.bits.tolist()) <= set(l.weight_bits) for l in layers)
    assert read_meta(path)["version"] == 2


def _meta_layer(meta, name):
    return next(l for l in meta["layers"] if l["name"] == name)


CASES = {
    "truncated weights": (lambda a, m, n: a.update({f"{n}/weight": a[f"{n}/weight"][:-1]}), "weight.*truncated"),
    "extra byte": (lambda a, m, n: a.update({f"{n}/weight": np.append(a[f"{n}/weight"], np.uint8(0))}), "weight"),
    "bits 2 -> 8": (lambda a, m, n: a[f"{n}/bits"].__setitem__(a[f"{n}/bits"] == 2, 8), "weight|bit_offset"),
    "bits = 3": (lambda a, m, n: a[f"{n}/bits"].__setitem__(0, 3), "bits.*candidate widths"),
    "scale too short": (lambda a, m, n: a.update({f"{n}/scale": a[f"{n}/scale"][:-1]}), "scale"),
    "scale negative": (lambda a, m, n: a[f"{n}/scale"].__setitem__(0, -1.0), "scale"),
    "bit_offset shifted": (lambda a, m, n: a.update({f"{n}/bit_offset": a[f"{n}/bit_offset"] + 1}), "bit_offset"),
    "zero point": (lambda a, m, n: a[f"{n}/zero_point"].__setitem__(0, 3), "zero_point"),
    "act zero point": (lambda a, m, n: a.update({f"{n}/act_zero_point": np.int32(5)}), "act_zero_point"),
    "act range": (lambda a, m, n: a.update({f"{n}/act_range": np.asarray([0, 127], np.int32)}), "act_range"),
    "act scale": (lambda a, m, n: a.update({f"{n}/act_scale": np.float32(0)}), "act_scale"),
    "bits dtype": (lambda a, m, n: a.update({f"{n}/bits": a[f"{n}/bits"].astype(np.int64)}), "bits: dtype"),
    "missing bias": (lambda a, m, n: a.pop(f"{n}/bias"), "bias: missing"),
    "shape": (lambda a, m, n: a.update({f"{n}/shape": a[f"{n}/shape"] + 1}), "shape"),
    "geometry stride": (lambda a, m, n: _meta_layer(m, n)["geometry"].update(stride=[0, 0]), "geometry"),
    "meta packed_bits": (lambda a, m, n: _meta_layer(m, n).update(packed_bits=1), "packed_bits"),
    "act_signed": (lambda a, m, n: _meta_layer(m, n).update(act_signed="yes"), "act_signed"),
    "stray array": (lambda a, m, n: a.update({"other/weight": np.zeros(3, np.uint8)}), "belong to no layer"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_field_is_validated(packed, tmp_path, case):
    path, arrays, frozen = packed
    change, message = CASES[case]
    name = layer_with_two_widths(frozen)
    bad = edited(tmp_path, arrays, lambda a, m: change(a, m, name))
    with pytest.raises(ExportError, match=message) as info:
        read_packed(bad)
    if case != "stray array":
        assert repr(name) in str(info.value)  # names the layer


def test_nonzero_padding_bits_are_refused(packed, tmp_path):
    path, arrays, frozen = packed
    for layer in read_packed(path):
        if layer.packed_bits % 8:
            break
    else:
        pytest.skip("every layer ends on a byte boundary")
    bad = edited(tmp_path, arrays, lambda a, m: a[f"{layer.name}/weight"].__setitem__(-1, 0xFF))
    with pytest.raises(ExportError, match="padding bits"):
        read_packed(bad)
