"""Several worker processes on one machine: ``jointopt search --workers N`` on one study."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from jointopt.errors import ConfigError
from jointopt.tune.workers import worker_devices


def test_worker_devices():
    assert worker_devices("cpu", 2, None) == ["cpu", "cpu"]
    assert worker_devices("cpu", None, ["cpu", "cpu", "cpu"]) == ["cpu"] * 3
    with pytest.raises(ConfigError, match="--workers 3 but 2 --devices"):
        worker_devices("cpu", 3, ["cpu", "cpu"])
    with pytest.raises(ConfigError, match="positive"):
        worker_devices("cpu", 0, None)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            worker_devices("cuda", 2, None)
        with pytest.raises(ConfigError, match="'cuda:0' is not available"):
            worker_devices("cpu", None, ["cuda:0", "cuda:1"])


def _launcher(config_file, run, *extra):
    return subprocess.Popen([sys.executable, "-m", "jointopt", "search", "--config", str(config_file), "--out", str(run),
                             "--no-tensorboard", *map(str, extra)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_two_workers_one_warmup_one_front(tiny_config_file, tmp_path):
    run = tmp_path / "run"
    launcher = _launcher(tiny_config_file, run, "--workers", 2, "--trials", 4)
    out, err = launcher.communicate(timeout=600)
    assert launcher.returncode == 0, (out, err)
    assert "Pareto front" in out and "2 workers" in out
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.load_study(study_name="jointopt", storage=JournalStorage(JournalFileBackend(str(run / "journal.log"))))
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 4 and len({t.number for t in done}) == len(done)  # the budget, not one trial more
    log = (run / "search.log").read_text()
    workers = {int(pid) for pid in re.findall(r"pid=(\d+) study_start", log)}
    assert len(workers) == 2  # two processes joined the study (which ran trials depends on the timing)
    assert {t.user_attrs["pid"] for t in done} <= workers
    assert log.count("phase_start phase=warmup") == 1  # the warm-up was computed once, by one worker
    assert log.count("warmup_cached") == 1  # ... and loaded by the other
    front = json.loads((run / "front.json").read_text())  # gathered by the launcher: every worker's trials
    assert sorted(r["trial"] for r in front["results"]) == sorted(t.number for t in done)


def test_ctrl_c_stops_every_worker(tiny_config_file, tmp_path):
    run = tmp_path / "run"
    launcher = _launcher(tiny_config_file, run, "--workers", 2, "--trials", 50, "--set", "search.epochs=100", "--set", "search.max_steps=400")
    log = run / "search.log"
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or log.read_text().count(" trial_start ") < 2):
        time.sleep(0.2)
    pids = {int(p) for p in re.findall(r"pid=(\d+) trial_start", log.read_text())}
    assert len(pids) == 2, log.read_text()
    launcher.send_signal(signal.SIGINT)
    out, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 130, (out, err)
    assert f"jointopt search --out {run} --resume --workers 2" in err
    for pid in pids:  # no worker left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
