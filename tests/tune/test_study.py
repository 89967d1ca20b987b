"""The study end to end on a tiny config: front, run directory, resume, workers, reproducibility."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jointopt
from jointopt.errors import ConfigError
from jointopt.tune import Study, load_trial


def cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "jointopt", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def completed(run: Path):
    return sorted(int(p.parent.name) for p in run.glob("trials/*/result.json"))


def test_study_writes_run_directory_and_front(tiny_config, tmp_path):
    run = tmp_path / "run"
    summary = jointopt.search(tiny_config, run)
    assert len(summary["results"]) == 3
    for name in ("config.yaml", "study.db", "environment.json", "pareto.csv", "front.json", "baselines.json",
                 "search.log", "dataset.json"):
        assert (run / name).exists(), name
    env = json.loads((run / "environment.json").read_text())
    assert env["seed"] == 3 and env["torch"]
    assert list((run / "warmup").glob("*.pt"))
    front = summary.front
    assert front and all(r in summary.results for r in front)
    assert summary["front"] == [r.to_json() for r in front]  # the summary still reads like the dict it was
    better = lambda a, b: (a.val_acc >= b.val_acc and a.cost("memory") <= b.cost("memory")  # noqa: E731
                           and (a.val_acc > b.val_acc or a.cost("memory") < b.cost("memory")))
    for r in summary.results:
        if r in front:  # no result dominates a front point
            assert not any(better(o, r) for o in summary.results)
        else:  # a result left off is dominated by a front point, or is one of its duplicates
            assert any(better(f, r) or (f.val_acc, f.cost("memory")) == (r.val_acc, r.cost("memory")) for f in front)
    trial = front[0].trial
    tdir = run / "trials" / str(trial)
    rows = [json.loads(line) for line in (tdir / "metrics.jsonl").read_text().splitlines()]
    assert {"search", "finetune"} <= {r["phase"] for r in rows}
    assert "hard_cost/memory" in [k for r in rows for k in r]
    # the saved trial rebuilds into the same frozen network and cost
    _, frozen, result = load_trial(run, trial)
    assert result == front[0] and result.version == jointopt.results.RESULT_VERSION
    assert jointopt.graph.frozen_cost(frozen, "memory").item() == result.costs["memory"]
    lines = (run / "pareto.csv").read_text().splitlines()
    assert lines[0].startswith("trial,lambda,val_acc") and len(lines) == len(front) + 1


def test_same_seed_same_front(tiny_config, tmp_path):
    a = jointopt.search(tiny_config, tmp_path / "a")
    b = jointopt.search(tiny_config, tmp_path / "b")
    key = lambda s: [(r["params"]["lambda"], r["val_acc"], r["costs"]["memory"]) for r in s["front"]]
    assert key(a) == key(b)


def test_existing_run_directory_needs_resume(tiny_config, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(tiny_config.to_yaml())
    with pytest.raises(ConfigError, match="--resume"):
        Study(tiny_config, run)
    with pytest.raises(ConfigError, match="holds no study"):
        Study(tiny_config, tmp_path / "empty", resume=True)
    changed = tiny_config.override(["search.epochs=5"])
    with pytest.raises(ConfigError, match="differs"):
        Study(changed, run, resume=True)


def test_a_worker_joins_a_study_being_run(tiny_config, tmp_path):
    """Workers started together: the first creates the study; a later one with the same configuration
    joins while the first is running it, one with another configuration is refused with the keys
    named, and once no worker runs it the folder needs --resume again."""
    run = tmp_path / "run"
    first = Study(tiny_config, run)  # holds the run directory's live mark until its run ends
    joined = Study(tiny_config.override(["tuner.trials=5"]), run)  # no --resume: joins
    assert joined.resume
    with pytest.raises(ConfigError, match=r"different configuration \(search.epochs\)"):
        Study(tiny_config.override(["search.epochs=5"]), run)
    first.live.release(), joined.live.release()
    with pytest.raises(ConfigError, match="already holds a study; pass --resume"):
        Study(tiny_config, run)


def test_identical_commands_started_at_once(tiny_config_file, tmp_path):
    """Three identical commands at the same moment on one folder: whichever comes first creates the
    study, the others join it; the warm-up runs once and the budget is run exactly."""
    run = tmp_path / "run"
    procs = [cli("search", "--config", tiny_config_file, "--out", run, "--trials", 3, "--no-tensorboard")
             for _ in range(3)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    import optuna

    study = optuna.load_study(study_name="jointopt", storage=f"sqlite:///{run / 'study.db'}")
    assert [t.state.name for t in study.trials].count("COMPLETE") == 3 == len(completed(run))
    log = (run / "search.log").read_text()
    assert log.count("phase_start phase=warmup") == 1 and log.count("study_start") == 3


def test_kill_mid_trial_then_resume(tiny_config_file, tmp_path):
    run = tmp_path / "run"
    # killed without warning (SIGKILL) once trial 1 has written its first per-epoch checkpoint
    proc = cli("search", "--config", tiny_config_file, "--out", run, "--trials", 4, "--set", "search.epochs=6",
               "--no-tensorboard", env=dict(os.environ, JOINTOPT_FAULT="checkpoint_written@1"))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, out
    before = completed(run)
    assert before == [0] and (run / "trials/1/checkpoint.pt").exists()
    kept = {n: (run / f"trials/{n}/result.json").read_text() for n in before}
    resumed = cli("search", "--out", run, "--resume", "--trials", 4, "--set", "search.epochs=6", "--no-tensorboard",
                  "--config", tiny_config_file)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "reused cached network" in out
    after = completed(run)
    assert len(after) >= 4 and len(set(after)) == len(after)
    for n, text in kept.items():  # completed trials are neither lost nor re-run
        assert (run / f"trials/{n}/result.json").read_text() == text
    log = (run / "search.log").read_text()
    assert log.count("phase_start phase=warmup") == 1
    assert "retry_of" not in out
    import optuna

    study = optuna.load_study(study_name="jointopt", storage=f"sqlite:///{run / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == len(after) and "RUNNING" not in states
    killed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(killed) == 1
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == killed[0].number]
    assert len(retry) == 1 and retry[0].params == killed[0].params
    # the retry continued from the killed trial's last per-epoch checkpoint instead of starting over
    resumed = retry[0].user_attrs["resumed_from"]
    assert resumed["trial"] == killed[0].number and resumed["epoch"] >= 0
    rows = [json.loads(l) for l in (run / f"trials/{retry[0].number}/metrics.jsonl").read_text().splitlines()]
    first = min(r["epoch"] for r in rows if r["phase"] == resumed["phase"])
    assert first == resumed["epoch"] + 1


def test_two_workers_share_one_study(tiny_config_file, tmp_path, monkeypatch):
    """Two processes on one journal share the trials. Ordered without timing: the first worker holds
    after its first trial (a named fault point) until the second worker has finished one."""
    run = tmp_path / "run"
    journal = tmp_path / "journal.log"
    go = tmp_path / "go"
    monkeypatch.setenv("JOINTOPT_HOLD", f"result_committed:{go}")
    first = cli("search", "--config", tiny_config_file, "--out", run, "--trials", 4, "--storage", f"journal:{journal}",
                "--no-tensorboard")
    monkeypatch.delenv("JOINTOPT_HOLD")
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "config.yaml").exists():
        time.sleep(0.05)
    second = cli("search", "--config", tiny_config_file, "--out", run, "--trials", 4, "--storage",
                 f"journal:{journal}", "--resume", "--no-tensorboard")
    deadline = time.time() + 240
    while time.time() < deadline and len(list(run.glob("trials/*/result.json"))) < 2:
        time.sleep(0.05)  # the first worker holds after one result: a second one is the second worker's
    go.touch()
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.load_study(study_name="jointopt", storage=JournalStorage(JournalFileBackend(str(journal))))
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) >= 4
    assert len({t.number for t in done}) == len(done)
    pids = {t.user_attrs["pid"] for t in done}
    assert len(pids) == 2  # both workers ran trials
    assert sorted(completed(run)) == sorted(t.number for t in done)
