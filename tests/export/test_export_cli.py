"""`jointopt export` on a tiny real run directory, front-point selection, and its error messages."""
import json
import re
import shutil

import pytest
import torch

import jointopt
from jointopt.cli.main import main
from tiny import tiny_config

EXPORT_CONFIG = tiny_config(tuner={"trials": 2, "baselines": []})
from jointopt.export import select_trial
from jointopt.tune import load_trial



@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        jointopt.search(EXPORT_CONFIG, run)
    finally:
        torch.set_num_threads(before)
    return run


def test_export_a_trial_in_every_format(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--trial", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "exported trial 1" in out and "top-1 agreement" in out and "kept/total" in out
    assert "validation samples" in out and "FAILED" not in out
    for name in ("model.json", "model.weights.npz", "model.onnx", "model.packed.npz", "model.h", "verify.json",
                 "summary.txt"):
        assert (tmp_path / name).exists(), name
    verify = json.loads((tmp_path / "verify.json").read_text())
    assert verify["ok"] and verify["input"] == "validation"
    from jointopt.tune.setup import load_dataset

    assert verify["onnx"]["samples"] == min(256, len(load_dataset(EXPORT_CONFIG).val))
    assert verify["onnx"]["top1_agreement"] >= 0.999  # the graph as written
    # ORT sums a convolution in another order than torch: an activation within an ulp of a rounding
    # midpoint may take the neighbouring code, which moves an output by about one step times a weight
    # (seen: 1.2e-3 on outputs up to 0.73, in one of 1,440 outputs); everything else is the same
    assert verify["onnx"]["max_abs_diff"] < 1e-2 * verify["onnx"]["output_max_abs"]
    assert verify["onnx"]["mean_abs_diff"] < 1e-4 * verify["onnx"]["output_max_abs"]
    assert verify["onnx"]["optimized"]["ok"] and verify["onnx"]["optimized"]["decisive_agreement"] >= 0.999
    # the preprocessing: written into dataset.json by the study, recorded by the export, applied by the ONNX graph
    from jointopt.export.preprocessing import Preprocessing

    pre = Preprocessing.from_dataset(load_dataset(EXPORT_CONFIG))
    assert Preprocessing.from_run(run_dir) == pre
    assert verify["preprocessing"] == json.loads(json.dumps(pre.to_dict())) and verify["onnx"]["input"] == "raw"
    _, frozen, result = load_trial(run_dir, 1)
    assert verify["sizes"]["packed_bits"] == result["costs"]["memory"]
    x = torch.randn(8, *result["input_shape"])
    with torch.no_grad():
        assert torch.equal(jointopt.load(tmp_path)(x), frozen(x))
    manifest = json.loads((tmp_path / "model.json").read_text())
    assert manifest["metadata"]["trial"] == 1 and manifest["metadata"]["val_acc"] == result["val_acc"]


def test_default_directory_and_chosen_formats(run_dir, capsys):
    assert main(["export", str(run_dir), "--trial", "0", "--format", "onnx", "--format", "c"]) == 0
    written = sorted(p.name for p in (run_dir / "trials" / "0" / "export").iterdir())
    assert written == ["jointopt_runtime.c", "jointopt_runtime.h", "model.c", "model.h", "model.onnx", "model_main.c",
                       "summary.txt", "verify.json"]


def test_pick_from_the_front_on_the_command_line(run_dir, tmp_path, capsys):
    front = json.loads((run_dir / "front.json").read_text())["front"]
    best = max(front, key=lambda r: r["val_acc"])
    assert main(["export", str(run_dir), "--max-cost", "1000", "--format", "npz", "--out", str(tmp_path)]) == 0
    assert f"selected trial {best['trial']}" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["RUN_MISSING", "--trial", "0"], "does not exist"),
    (["RUN", "--trial", "99"], "trial 99 .* completed trials: \\[0, 1\\]"),
    (["RUN", "--max-cost", "0.001"], "no point of the front has memory <= 0.001 kB"),
    (["RUN", "--min-accuracy", "101"], "no point of the front reaches 101 %"),
    (["RUN", "--trial", "0", "--max-cost", "3"], "either --trial or"),
    (["RUN"], "choose a point"),
    (["RUN", "--trial", "0", "--format", "tflite"], "unknown export format 'tflite'"),
])
def test_clear_errors(run_dir, tmp_path, capsys, args, message):
    args = [str(run_dir) if a == "RUN" else str(tmp_path / "missing") if a == "RUN_MISSING" else a for a in args]
    assert main(["export", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("jointopt: error:") and len(err.splitlines()) == 1
    assert re.search(message, err), err


def fake_run(tmp_path, points):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(EXPORT_CONFIG.to_yaml())
    results = [{"trial": t, "val_acc": acc, "test_acc": acc, "costs": {"memory": kb * 8000}, "params": {}}
               for t, acc, kb in points]
    (run / "front.json").write_text(json.dumps({"target": "memory", "front": results, "results": results}))
    return run


def test_select_most_accurate_under_cost_or_cheapest_above_accuracy(tmp_path):
    run = fake_run(tmp_path, [(4, 70.0, 2.0), (7, 80.0, 5.0), (2, 90.0, 12.0), (9, 91.0, 30.0)])
    assert select_trial(run, max_cost=5.0)[0] == 7  # kB, boundary included
    assert select_trial(run, max_cost=12.5)[0] == 2
    assert select_trial(run, min_accuracy=79.0)[0] == 7
    assert select_trial(run, min_accuracy=90.5)[0] == 9
    assert select_trial(run, max_cost=20.0, min_accuracy=75.0)[0] == 2
    trial, why = select_trial(run, max_cost=3)
    assert trial == 4 and "most accurate point with memory <= 3 kB" in why
    with pytest.raises(jointopt.ExportError, match="cheapest is trial 4: 2 kB"):
        select_trial(run, max_cost=1.0)
    with pytest.raises(jointopt.ExportError, match="with memory <= 6 kB reaches 85 %"):
        select_trial(run, max_cost=6.0, min_accuracy=85.0)


def test_run_without_front(tmp_path):
    run = fake_run(tmp_path, [(0, 50.0, 1.0)])
    (run / "front.json").unlink()
    with pytest.raises(jointopt.ExportError, match="no front.json"):
        select_trial(run, max_cost=1.0)
    shutil.rmtree(run)
    run.mkdir()
    with pytest.raises(jointopt.ExportError, match="not a jointopt run directory"):
        select_trial(run, max_cost=1.0)
