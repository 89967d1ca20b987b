"""Reading step losses in batches (as on a GPU) changes nothing but when they are read."""
import json

import pytest

import jointopt
import jointopt.train.phases as phases
from jointopt.errors import DivergedError


def _epochs(run, trial=0):
    rows = [json.loads(line) for line in (run / "trials" / str(trial) / "metrics.jsonl").read_text().splitlines()]
    return [(r["phase"], r["epoch"], round(r["loss"], 5)) for r in rows if "loss" in r]


def test_batched_reads_give_the_same_trial(tiny_config, tmp_path, monkeypatch):
    config = tiny_config.override({"tuner.trials": 1, "tuner.baselines": []})
    every_step = jointopt.search(config, tmp_path / "one", progress=False, fixed_lambda=2.0)
    monkeypatch.setattr(phases, "read_interval", lambda device: 7)  # an accelerator's batched reads
    batched = jointopt.search(config, tmp_path / "seven", progress=False, fixed_lambda=2.0)
    assert _epochs(tmp_path / "one") == _epochs(tmp_path / "seven")
    assert every_step.results[0].costs == batched.results[0].costs
    assert every_step.results[0].val_acc == batched.results[0].val_acc


def test_a_diverging_search_is_still_caught_with_batched_reads(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(phases, "read_interval", lambda device: 7)
    config = tiny_config.override({"tuner.trials": 1, "tuner.baselines": [], "search.lr": 1e30})
    with pytest.raises(DivergedError, match="every trial of the study failed"):
        jointopt.search(config, tmp_path / "run", progress=False, fixed_lambda=2.0)
    failure = json.loads((tmp_path / "run" / "trials" / "0" / "failure.json").read_text())
    assert failure["status"] == "failed" and failure["reason"].startswith("the search diverged at epoch 0")
