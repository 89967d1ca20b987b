"""Faults a study meets, each injected at a named point: what the user sees and what is kept.

Broken cost models and bad inputs are refused before any training and before anything is written;
a trial that diverges fails with its reason while the study goes on; an interrupted trial's λ is
retried on ``--resume``, a trial killed after it finished is recorded, not run again, and a resumed
study runs each planned λ once with its own seed; every error is one line; the number formatters
never raise. The README's "Reliability" table lists these tests.
"""
import json
import math
import os
import signal
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from jointopt.cli.main import main
from jointopt.cost import get_cost_model
from jointopt._format import format_number as human_number
from jointopt.report._progress import duration
from jointopt.train import faults
from jointopt.tune import Study

BROKEN = '''
import torch
from jointopt.cost import CostModel


class _Broken(CostModel):
    unit = "u"
    description = "a deliberately broken cost model"


class NanCost(_Broken):
    name = "nan_cost"

    def layer_cost(self, s):
        return s.weights_at_bits().sum() * float("nan")


class NegativeCost(_Broken):
    name = "negative_cost"

    def layer_cost(self, s):
        return -s.weights_at_bits().sum()


class VectorCost(_Broken):
    name = "vector_cost"

    def layer_cost(self, s):
        return s.weights_at_bits()


class ItemCost(_Broken):
    name = "item_cost"

    def layer_cost(self, s):
        return torch.tensor(s.weights_at_bits().sum().item())
'''


def search(capsys, *args):
    code = main(["search", *map(str, args), "--no-tensorboard", "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("cls, role, problem", [
    ("NanCost", "--target", "not finite"),
    ("NegativeCost", "--cost-model", "negative"),  # a reported model is checked too
    ("VectorCost", "--target", "expected a scalar"),
    ("ItemCost", "cost.second", "carries no gradient"),  # and the second target
])
def test_broken_cost_model_is_refused_before_training(capsys, tmp_path, tiny_config_file, cls, role, problem):
    plugin = tmp_path / "broken.py"
    plugin.write_text(BROKEN)
    spec = f"{plugin}:{cls}"
    role_args = ["--set", f"cost.second={spec}"] if role == "cost.second" else [role, spec]
    run = tmp_path / "run"
    code, out, err = search(capsys, "--config", tiny_config_file, "--out", run, "--set", "tuner.trials=1", *role_args)
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert problem in lines[0] and "_cost" in lines[0] and "jointopt cost-models --check" in lines[0]
    if cls != "ItemCost":  # a per-layer fault names the layer
        assert "layer " in lines[0]
    assert "warm" not in out + err  # refused before the warm-up
    assert not run.exists() or {p.name for p in run.iterdir()} <= {"search.log"}
    # the rerun with a fixed model is not blocked by the failed attempt
    code, _, err = search(capsys, "--config", tiny_config_file, "--out", run, "--set", "tuner.trials=1",
                          "--set", "warmup.epochs=0", "--set", "search.epochs=1", "--set", "finetune.epochs=0",
                          "--set", "tuner.baselines=[]")
    assert code == 0, err


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_lambda_must_be_finite_and_not_negative(capsys, tmp_path, tiny_config_file, value):
    code, _, err = search(capsys, "--config", tiny_config_file, "--out", tmp_path / "run", "--lambda", value)
    assert code == 1 and "--lambda" in err and "finite and >= 0" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_number_formatters_never_raise_on_non_finite_values():
    memory = get_cost_model("memory")
    for value in (math.nan, math.inf, -math.inf):
        assert human_number(value) in ("nan", "inf", "-inf")
        assert memory.format(value).split()[0] == human_number(value)
    assert duration(math.nan) == "?" and duration(75) == "1m15s"


# -- during a study: a trial that diverges fails with its reason; the study goes on ----------------
FAST = ["--set", "warmup.epochs=1", "--set", "search.epochs=1", "--set", "finetune.epochs=1",
        "--set", "tuner.baselines=[]"]


def test_diverging_trial_fails_with_its_reason_and_the_study_continues(capsys, tiny_config, tmp_path):
    import json

    from optuna.trial import TrialState

    from jointopt.tune import Study

    config = tiny_config.override(["tuner.trials=2", "tuner.lambda_max=1e300", "warmup.epochs=1", "search.epochs=1",
                                   "finetune.epochs=0", "tuner.baselines=[]"])
    run = tmp_path / "run"
    study = Study(config, run)
    optuna_study = study._study()
    optuna_study.enqueue_trial({"lambda": 1e300})  # λ·cost overflows float32: the cost term is inf
    optuna_study.enqueue_trial({"lambda": 1.0})
    summary = study.run()
    assert [r["trial"] for r in summary["results"]] == [1] and [r["trial"] for r in summary["front"]] == [1]
    [failed] = summary["failed"]
    assert failed["trial"] == 0 and "cost term" in failed["reason"] and "smaller λ" in failed["reason"]
    trial0 = optuna_study.trials[0]
    assert trial0.state == TrialState.FAIL and trial0.user_attrs["failed"] == failed["reason"]
    record = json.loads((run / "trials/0/failure.json").read_text())
    assert record["reason"] == failed["reason"] and record["status"] == "failed"
    assert not (run / "trials/0/result.json").exists() and not (run / "trials/0/checkpoint.pt").exists()
    assert json.loads((run / "front.json").read_text())["failed"] == summary["failed"]
    # the command line lists it under the front; --resume does not retry a trial that diverged
    capsys.readouterr()
    assert main(["search", "--out", str(run), "--resume", "--trials", "1", "--no-tensorboard", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 trial failed" in out and f"trial 0: {failed['reason']}" in out
    assert len(study._study().trials) == 2


def test_study_where_every_trial_diverges_says_so_and_why(capsys, tmp_path, tiny_config_file):
    run = tmp_path / "run"
    code, out, err = search(capsys, "--config", tiny_config_file, "--out", run, "--set", "tuner.trials=2",
                            "--set", "search.lr=1e6", *FAST)
    assert code == 1
    assert err.count("\n") == 1 and "every trial of the study failed (2)" in err and "lower search.lr" in err
    assert "Traceback" not in err
    assert not list(run.glob("trials/*/result.json")) and len(list(run.glob("trials/*/failure.json"))) == 2


def test_nan_warmup_is_one_line_and_never_cached(capsys, tmp_path, tiny_config_file):
    run = tmp_path / "run"
    code, _, err = search(capsys, "--config", tiny_config_file, "--out", run, "--set", "warmup.lr=1e30", *FAST)
    assert code == 1 and err.count("\n") == 1 and "warm-up diverged" in err and "lower warmup.lr" in err
    assert not list(run.glob("warmup/*.pt"))


def test_nan_finetune_keeps_the_searched_network_and_says_so(capsys, tmp_path, tiny_config_file):
    import json

    run = tmp_path / "run"
    code, out, err = search(capsys, "--config", tiny_config_file, "--out", run, "--lambda", "1",
                            "--set", "finetune.lr=1e30", *FAST)
    assert code == 0, err
    [warning] = json.loads((run / "trials/0/result.json").read_text())["warnings"]
    assert "fine-tune diverged" in warning and "kept the network before the fine-tune" in warning
    assert "fine-tune diverged" in (run / "search.log").read_text()


# -- interrupted trials are retried on --resume; every input is checked before anything is written --
@pytest.mark.parametrize("fault", ["ctrl-c", "enospc", "bad-checkpoint"])
def test_interrupted_trial_is_retried_on_resume(capsys, monkeypatch, tmp_path, tiny_config_file, fault):
    import errno

    from optuna import load_study
    from optuna.trial import TrialState

    from jointopt.train import phases

    original = phases.TrialRunner._checkpoint

    def faulty(self, phase, epoch, *args, **kwargs):  # the named point: trial 0's first checkpoint
        if self.trial == 0 and self.trial_dir is not None:
            if fault == "enospc":
                raise OSError(errno.ENOSPC, "No space left on device", str(self.trial_dir / "checkpoint.pt"))
            original(self, phase, epoch, *args, **kwargs)
            raise KeyboardInterrupt
        return original(self, phase, epoch, *args, **kwargs)

    monkeypatch.setattr(phases.TrialRunner, "_checkpoint", faulty)
    run = tmp_path / "run"
    args = ["--config", tiny_config_file, "--out", run, "--set", "tuner.trials=1", *FAST]
    code, _, err = search(capsys, *args)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    if fault == "enospc":
        assert code == 1 and "No space left on device" in err and "free some space" in err
    else:
        assert code == 130 and f"jointopt search --out {run} --resume" in err
    monkeypatch.undo()
    if fault == "bad-checkpoint":  # interrupted, and the checkpoint it left is truncated
        (run / "trials/0/checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    code, _, err = search(capsys, *args, "--resume")
    assert code == 0, err
    trials = load_study(study_name="jointopt", storage=f"sqlite:///{run / 'study.db'}").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].params == trials[0].params and trials[1].user_attrs["retry_of"] == 0  # the λ is not lost
    assert not list(run.glob("trials/*/checkpoint.pt"))  # the retry completed: no stale checkpoint is left
    if fault == "ctrl-c":  # continued from the checkpoint trial 0 wrote before the interrupt
        assert trials[1].user_attrs["resumed_from"] == {"trial": 0, "phase": "search", "epoch": 0}
    if fault == "bad-checkpoint":  # started over, and the log says why
        assert "resumed_from" not in trials[1].user_attrs and "cannot read" in (run / "search.log").read_text()
    code, _, _ = search(capsys, *args, "--resume")  # a second resume retries nothing again
    assert code == 0 and len(load_study(study_name="jointopt", storage=f"sqlite:///{run / 'study.db'}").trials) == 2


@pytest.mark.parametrize("setting, message", [
    (["--set", "model.name=resnet88"], "resnet8"),
    (["--set", "data.name=digitz"], "digits"),
    (["--device", "cuda"], "CUDA is not available"),
])
def test_bad_input_is_one_line_before_anything_is_written(capsys, tmp_path, tiny_config_file, setting, message):
    import torch

    if setting[0] == "--device" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    run = tmp_path / "run"
    code, _, err = search(capsys, "--config", tiny_config_file, "--out", run, *setting, *FAST)
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not run.exists()  # so the corrected command is not refused


def test_untraceable_model_is_refused_before_the_warm_up(capsys, tmp_path, tiny_config_file):
    (tmp_path / "untraceable.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(1, 4, 3)\n"
        "        self.fc = torch.nn.Linear(4, 10)\n"
        "    def forward(self, x):\n"
        "        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it\n"
        "            x = -x\n"
        "        return self.fc(self.conv(x).mean((2, 3)))\n"
        "def build():\n"
        "    return Net()\n")
    run = tmp_path / "run"
    code, out, err = search(capsys, "--config", tiny_config_file, "--out", run,
                            "--set", f"model.name={tmp_path / 'untraceable.py'}:build", *FAST)
    assert code == 1 and err.count("\n") == 1 and "cannot trace Net" in err and "control flow" in err, err
    assert not run.exists()


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_out_is_one_line(capsys, tmp_path, tiny_config_file):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = search(capsys, "--config", tiny_config_file, "--out", locked / "run", *FAST)
    finally:
        locked.chmod(0o700)
    assert code == 1 and err.count("\n") == 1 and "Permission denied" in err


def test_a_collapsed_trial_is_complete_but_not_a_front_point(tiny_config, tmp_path):
    import optuna

    from jointopt.tune import Study
    from jointopt.tune.failures import collapse_reason

    assert collapse_reason(10.0, 11.0, 10, 100) is None  # the warm-up itself is at chance: nothing collapsed
    assert collapse_reason(50.0, 90.0, 10, 100) is None
    reason = collapse_reason(10.0, 90.0, 10, 100)
    assert reason.startswith("collapsed: validation accuracy 10 % is at chance")
    study = Study(tiny_config, tmp_path / "run")
    storage = study._study()
    for number, (acc, memory, collapsed) in enumerate([(90.0, 1000.0, None), (10.0, 10.0, reason)]):
        result = {"trial": number, "target": "memory", "params": {"lambda": 1.0 + number}, "val_acc": acc,
                  "test_acc": acc, "costs": {"memory": memory}, "cost_display": {}, "bits_histogram": {},
                  "collapsed": collapsed}
        storage.add_trial(optuna.trial.create_trial(
            params={"lambda": 1.0 + number}, values=[acc, memory], user_attrs={"result": Study.result_summary(result)},
            distributions={"lambda": optuna.distributions.FloatDistribution(0.1, 20.0, log=True)}))
    summary = study.finish(storage, {})
    assert [r["trial"] for r in summary["results"]] == [0, 1] and [r["trial"] for r in summary["front"]] == [0]


def test_the_readme_reliability_table_names_tests_that_exist():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Reliability", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_\w+)", section))
    tests = Path(__file__).resolve().parents[1]
    defined = {name for path in tests.rglob("test_*.py") for name in re.findall(r"^def (test_\w+)", path.read_text(), re.M)}
    assert len(named) >= 9 and named <= defined, named - defined


def test_wrong_input_shape_is_one_line(capsys):
    assert main(["inspect", "resnet8", "--input-shape", "1,5,5"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "input of shape [2, 1, 5, 5]" in err, err


def test_any_other_error_is_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    import jointopt.cli.inspect as inspect_cli

    def boom(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(inspect_cli, "run", boom)
    assert main(["inspect", "resnet8"]) == 1
    assert capsys.readouterr().err == ("jointopt: error: RuntimeError: boom second line (rerun with --debug for "
                                       "the traceback)\n")
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "inspect", "resnet8"])


# -- killed at a named point (jointopt.train.faults), then resumed: nothing finished is run again, ------
# -- every planned λ runs once with its own seed -------------------------------------------------------
RESUME_FAST = ["--set", "warmup.epochs=1", "--set", "search.epochs=2", "--set", "finetune.epochs=1"]


def storage_trials(run):
    return optuna.load_study(study_name="jointopt", storage=f"sqlite:///{run / 'study.db'}").trials


def search_killed_at(point: str, config_file, run, trials: int):
    """``jointopt search`` in a subprocess that kills itself (SIGKILL) at ``point``."""
    env = dict(os.environ, JOINTOPT_FAULT=point)
    proc = subprocess.run([sys.executable, "-m", "jointopt", "search", "--config", str(config_file), "--out", str(run),
                           "--trials", str(trials), "--no-tensorboard", "--quiet", *RESUME_FAST],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr


@pytest.mark.parametrize("point", ["result_written", "result_committed"])
def test_a_trial_killed_after_it_finished_is_not_run_again(tiny_config_file, tmp_path, capsys, point):
    run = tmp_path / "run"
    search_killed_at(f"{point}@1", tiny_config_file, run, trials=2)
    written = (run / "trials/1/result.json").read_text()
    before = storage_trials(run)
    assert [t.state for t in before] == [TrialState.COMPLETE,
                                         TrialState.RUNNING if point == "result_written" else TrialState.COMPLETE]
    assert main(["search", "--out", str(run), "--resume", "--no-tensorboard", "--quiet"]) == 0
    capsys.readouterr()
    after = storage_trials(run)
    # told to the study with the values result.json holds, not queued again, not run again
    assert [t.state for t in after] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert (run / "trials/1/result.json").read_text() == written
    result = json.loads(written)
    assert after[1].values == [result["val_acc"], result["costs"]["memory"]]
    assert after[1].user_attrs["result"]["val_acc"] == result["val_acc"]
    log = (run / "search.log").read_text()
    assert log.count("trial_start trial=1") == 1 and "retry_of" not in json.dumps([t.user_attrs for t in after])
    if point == "result_written":
        assert "had finished when its worker stopped" in log
    # the report and the front count it once
    front = json.loads((run / "front.json").read_text())
    assert [r["trial"] for r in front["results"]] == [0, 1]
    assert main(["report", str(run), "--format", "json", "--no-tensorboard"]) == 0
    assert json.loads(capsys.readouterr().out)["trials"] == 2


def planned(trials):
    """(λ, seed) of every complete trial, in the order of the plan."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return sorted((t.user_attrs["plan_index"], t.params["lambda"], t.user_attrs["seed"]) for t in done)


def test_a_resumed_study_runs_each_planned_lambda_once_with_its_own_seed(tiny_config, tmp_path, capsys, monkeypatch):
    config = tiny_config.override(["tuner.trials=3", "tuner.sampler=spread", "warmup.epochs=1", "search.epochs=2",
                                   "finetune.epochs=1"])
    config_file = tmp_path / "c.yaml"
    config_file.write_text(config.to_yaml())
    Study(config, tmp_path / "whole", listeners=()).run()
    expected = planned(storage_trials(tmp_path / "whole"))
    assert [i for i, _, _ in expected] == [0, 1, 2] and len({lam for _, lam, _ in expected}) == 3
    assert [seed for _, _, seed in expected] == [config.seed * 100003 + i for i in range(3)]

    def interrupt(point, trial):  # Ctrl-C during trial 1, once its first checkpoint is written
        if point == "checkpoint_written" and trial == 1:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    monkeypatch.setattr(faults, "hook", interrupt)
    assert main(["search", "--config", str(config_file), "--out", str(run), "--no-tensorboard", "--quiet"]) == 130
    monkeypatch.setattr(faults, "hook", None)
    assert [t.state for t in storage_trials(run)] == [TrialState.COMPLETE, TrialState.FAIL]
    assert main(["search", "--out", str(run), "--resume", "--no-tensorboard", "--quiet"]) == 0
    trials = storage_trials(run)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                                         TrialState.COMPLETE]
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].params == trials[1].params
    # the retry took trial 1's place in the plan, and trial 3 the place trial 2 had in the whole study
    assert planned(trials) == expected
    capsys.readouterr()
