"""`jointopt methods`, `jointopt search --method NAME` and `jointopt report RUN --compare RUN2 ...` on tiny studies."""
import json

import yaml

from jointopt.cli.main import main
from jointopt.methods import get_method, list_methods
from jointopt.methods._registry import BUILTINS
from tiny import tiny_config


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_methods_lists_every_method_with_one_line(capsys):
    code, out, _ = run(capsys, "methods")
    assert code == 0
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == list_methods() and rows[0] == "joint"
    code, out, _ = run(capsys, "methods", "--format", "json")
    listed = {r["name"]: r["description"] for r in json.loads(out)["methods"]}
    assert listed == {name: get_method(name).summary for name in list_methods()}
    assert all(BUILTINS[name][1] == get_method(name).summary for name in BUILTINS)  # the lazy line is the class's
    _, out, _ = run(capsys, "list")
    assert "search methods (9)" in out


def test_search_with_a_method_then_compare_with_joint(capsys, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_config(tuner={"trials": 2, "baselines": [8]}).to_yaml())
    common = ["--config", config, "--no-tensorboard", "--quiet"]
    code, out, err = run(capsys, "search", *common, "--method", "random", "--out", tmp_path / "random",
                         "--set", "methods.random.scope=global")
    assert code == 0, err
    saved = yaml.safe_load((tmp_path / "random" / "config.yaml").read_text())
    assert saved["method"] == "random" and saved["methods"]["random"]["scope"] == "global"
    assert "params" in out and "keep=" in out  # the front table shows the method's parameters, not λ
    assert run(capsys, "search", *common, "--out", tmp_path / "joint")[0] == 0

    code, out, err = run(capsys, "report", tmp_path / "joint", "--compare", tmp_path / "random", "--no-tensorboard")
    assert code == 0, err
    table = out.split("Fronts compared on memory", 1)[1]
    assert "joint (target memory)" in table and "random (random, target memory)" in table
    assert "hypervolume (val)" in table and "keep=" in table and "λ=" in table
    assert (tmp_path / "joint" / "compare.png").exists()
    code, out, _ = run(capsys, "report", tmp_path / "joint", "--compare", tmp_path / "random", "--no-tensorboard",
                       "--format", "json")
    compared = json.loads(out)["compare"]
    assert [c["method"] for c in compared] == ["joint", "random"]
    assert all(c["hypervolume_val"] is not None and c["front"] for c in compared)


def test_lambda_is_refused_for_a_method_without_one(capsys, tmp_path):
    code, _, err = run(capsys, "search", "--method", "magnitude", "--lambda", "2", "--out", tmp_path / "x")
    assert code == 1 and "has none" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
    code, _, err = run(capsys, "search", "--method", "magnitud", "--out", tmp_path / "x")
    assert code == 1 and "did you mean 'magnitude'" in err
