"""`jointopt.search` as a Python user meets it (a dict, a path or a Config; progress like the CLI), and
the study as Optuna tools see it (named objectives, small per-trial attributes)."""
import contextlib
import io
import json
import shutil

import optuna
import pytest

import jointopt
from jointopt.config import Config
from jointopt.errors import ConfigError
from jointopt.report import Progress
from jointopt.tune import Study, study as study_module

# one trial on 96 digits, two search epochs, no baselines: a couple of seconds
MINI = {"seed": 1, "data": {"name": "digits", "limit_train": 96}, "warmup": {"epochs": 1, "max_steps": 2},
        "search": {"epochs": 2, "max_steps": 2}, "finetune": {"epochs": 0},
        "cost": {"target": "memory", "report": ["bitops"]},
        "tuner": {"trials": 1, "baselines": [], "lambda_min": 1.0, "lambda_max": 1.0}}


@pytest.fixture(scope="module")
def mini_run(tmp_path_factory):
    """(run directory, what the study printed) of jointopt.search called with a plain dict."""
    run = tmp_path_factory.mktemp("api") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        summary = jointopt.search(MINI, out=run)
    assert len(summary["results"]) == 1
    return run, printed.getvalue()


def test_a_dict_runs_and_prints_progress_like_the_command_line(mini_run):
    run, printed = mini_run
    assert f"jointopt: study in {run} — 1 trial, target memory" in printed
    assert "trial   0 done (1/1)" in printed


class Recorder:
    """Stands in for Study: records what search() built."""

    calls = []

    def __init__(self, config, run, **kwargs):
        Recorder.calls.append((config, kwargs))

    def run(self):
        return {}


def test_a_path_a_config_or_a_dict_and_progress_only_off_when_asked(monkeypatch, tmp_path):
    monkeypatch.setattr(study_module, "Study", Recorder)
    Recorder.calls.clear()
    path = tmp_path / "c.yaml"
    path.write_text(Config.from_dict(MINI).to_yaml())
    for given in (MINI, path, str(path), Config.from_dict(MINI)):
        jointopt.search(given, out=tmp_path / "r")
    assert all(config == Config.from_dict(MINI) for config, _ in Recorder.calls)
    assert all(isinstance(kw["listeners"][0], Progress) for _, kw in Recorder.calls)
    jointopt.search(MINI, out=tmp_path / "r", progress=False, listeners=[print])
    assert Recorder.calls[-1][1]["listeners"] == [print]
    jointopt.search({**MINI, "tuner": {"trials": 8}}, out=tmp_path / "r", fixed_lambda=2.0)
    assert Recorder.calls[-1][0].tuner.trials == 1  # one trial, announced as one
    with pytest.raises(ConfigError, match="takes a Config, a dict or the path of a YAML file, got int"):
        jointopt.search(3, out=tmp_path / "r")


def load_study(run):
    storage = optuna.storages.RDBStorage(f"sqlite:///{run / 'study.db'}")
    return optuna.load_study(study_name="jointopt", storage=storage)


def test_optuna_sees_named_objectives_and_small_trial_attributes(mini_run):
    run, _ = mini_run
    study = load_study(run)
    assert study.metric_names == ["val_acc", "cost_memory"]
    trial = study.trials[0]
    stored = trial.user_attrs["result"]
    full = json.loads((run / "trials" / "0" / "result.json").read_text())
    assert "allocation" in full and "allocation" not in stored
    assert set(stored) <= set(Study.SUMMARY_KEYS)  # no per-layer data: the same few hundred bytes for any network
    assert len(json.dumps(stored)) < 600 and len(json.dumps(stored)) < len(json.dumps(full)) / 1.5
    assert stored["costs"] == full["costs"] and stored["val_acc"] == full["val_acc"] == trial.values[0]


def test_results_come_from_result_json_or_from_the_study_alone(mini_run, tmp_path):
    run, _ = mini_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    config = Config.from_yaml(copy / "config.yaml")
    full = Study(config, copy, resume=True).results()
    assert "allocation" in full[0]
    shutil.rmtree(copy / "trials")  # only the study database came along (another machine's worker)
    summary = Study(config, copy, resume=True).results()
    assert "allocation" not in summary[0]
    assert {k: summary[0][k] for k in ("trial", "val_acc", "costs")} == {k: full[0][k] for k in ("trial", "val_acc", "costs")}
    from jointopt.tune import front_table

    assert "0" in front_table(summary, "memory")  # enough for the front and its table


def test_environment_json_records_the_threads_the_config_sets():
    import torch

    from jointopt.tune import rundir

    assert torch.get_num_threads() == 1  # the suite's autouse fixture
    assert rundir.environment(Config.from_dict({"threads": 3}))["threads"] == 3
    assert rundir.environment(Config.from_dict({}))["threads"] == 1  # no setting: what torch uses
