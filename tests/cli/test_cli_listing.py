"""`jointopt list`, `inspect --list`, `data list` and `cost-models`: one listing form, text and JSON."""
import json

import pytest

from jointopt.cli import _listing
from jointopt.cli.main import main
from jointopt.cost import list_cost_models
from jointopt.data import list_datasets
from jointopt.zoo import list_models


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_of(text: str, heading: str):
    """The table under ``heading``: the first cell of every indented row after the column header."""
    block = text.split(heading, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [line.split()[0] for line in block if line.startswith("  ")]


def test_list_shows_every_kind_with_every_registered_name(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert rows_of(out, "zoo models (") == list_models()
    assert rows_of(out, "data sets (") == list_datasets()
    assert rows_of(out, "cost models (") == list_cost_models()
    for heading in ("zoo models", "data sets", "cost models"):  # the same heading form everywhere
        assert f"{heading} (" in out and "· use: " in out.split(heading, 1)[1].splitlines()[0]


def test_every_command_that_lists_uses_the_same_form(capsys, tmp_path):
    _, models, _ = run(capsys, "list", "models")
    _, inspect_list, _ = run(capsys, "inspect", "--list")
    assert inspect_list == models and "resnet8" in models
    _, costs, _ = run(capsys, "list", "cost-models")
    _, cost_command, _ = run(capsys, "cost-models")
    assert cost_command.startswith(costs.rstrip("\n"))
    _, data, _ = run(capsys, "list", "datasets", "--data-dir", str(tmp_path))
    _, data_command, _ = run(capsys, "data", "list", "--root", str(tmp_path))
    assert data_command == f"data folder: {tmp_path}\n" + data


def test_json_lists_are_keyed_by_kind(capsys, tmp_path):
    _, out, _ = run(capsys, "list", "--format", "json")
    data = json.loads(out)
    assert [r["name"] for r in data["models"]] == list_models()
    assert [r["name"] for r in data["cost_models"]] == list_cost_models()
    resnet8 = next(r for r in data["models"] if r["name"] == "resnet8")
    assert resnet8["input_shape"] == [3, 32, 32] and resnet8["num_classes"] == 10
    _, out, _ = run(capsys, "cost-models", "--format", "json")
    costs = {r["name"]: r for r in json.loads(out)["cost_models"]}
    assert costs["memory"]["unit"] == "kB"
    _, out, _ = run(capsys, "data", "list", "--root", str(tmp_path), "--format", "json")
    data = json.loads(out)
    assert data["data_folder"] == str(tmp_path)
    assert {r["name"]: r["state"] for r in data["datasets"]}["digits"] == "bundled"


def test_lut_is_not_listed_with_a_unit_it_does_not_have(capsys):
    """lut's unit comes from each table; the class default (M cycles) would be wrong for most tables."""
    _, out, _ = run(capsys, "cost-models")
    line = next(line for line in out.splitlines() if line.lstrip().startswith("lut "))
    assert "M cycles" not in line and "the table's unit" in line
    _, out, _ = run(capsys, "cost-models", "--format", "json")
    lut = next(r for r in json.loads(out)["cost_models"] if r["name"] == "lut")
    assert lut["unit"] is None and "table" in lut["note"]


def test_a_new_kind_of_plug_in_becomes_listable(capsys, monkeypatch):
    monkeypatch.setattr(_listing, "LISTINGS", dict(_listing.LISTINGS))
    _listing.register_listing(_listing.Listing(
        "methods", "search methods", (("kind", "kind"),),
        lambda **_: [{"name": "joint", "kind": "gradient", "description": "prune and quantize together"}],
        "--set method=NAME"))
    code, out, _ = run(capsys, "list", "methods")
    assert code == 0
    assert out.splitlines()[0] == "search methods (1) · use: --set method=NAME"
    assert out.splitlines()[2].split() == ["joint", "gradient", "prune", "and", "quantize", "together"]


def test_unknown_kind_is_one_line(capsys):
    code, _, err = run(capsys, "list", "modles")
    assert code == 1 and "nothing to list called 'modles'" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["inspect"], ["inspect", "--format", "json"]])
def test_inspect_without_a_model_points_to_the_list(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 1 and "jointopt inspect --list" in err


def test_a_registered_data_set_says_where_its_files_are(capsys, tmp_path, monkeypatch):
    from jointopt.data import _registry, register_dataset

    _registry._REGISTRY.names()  # the built-ins first; what this test registers goes into a copy
    monkeypatch.setattr(_registry._REGISTRY, "_entries", dict(_registry._REGISTRY._entries))
    register_dataset("toy_located", lambda: None, description="a toy", locate=lambda: "on the lab's NFS share")
    register_dataset("toy_nowhere", lambda: None, description="a toy", locate=lambda: None)
    register_dataset("toy_broken", lambda: None, description="a toy", locate=lambda: 1 / 0)

    def states():
        _, out, _ = run(capsys, "data", "list", "--root", str(tmp_path), "--format", "json")
        return {r["name"]: r["state"] for r in json.loads(out)["datasets"]}

    assert states()["toy_located"] == "on the lab's NFS share" and states()["toy_nowhere"] == ""
    assert states()["toy_broken"] == "? (locate failed: ZeroDivisionError)"  # the listing still works
    (tmp_path / "toy_located").mkdir()  # files under DATA_DIR/NAME come first
    assert states()["toy_located"] == "files present"
