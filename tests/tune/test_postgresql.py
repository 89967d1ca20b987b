"""Many machines: three workers with their own run directories share one study on a real PostgreSQL server.

The fixture starts Debian's ``postgresql`` server (initdb + pg_ctl) on 127.0.0.1 in a temporary folder,
as a non-root user (initdb refuses root), and stops it afterwards. Where the server binaries or the
Python driver are missing the test is skipped with the reason.
"""
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from jointopt.tune import Study


def _server_binaries():
    found = shutil.which("pg_ctl"), shutil.which("initdb")
    if all(found):
        return found
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):  # Debian keeps them off PATH
        if os.path.exists(f"{folder}/pg_ctl") and os.path.exists(f"{folder}/initdb"):
            return f"{folder}/pg_ctl", f"{folder}/initdb"
    return None


@pytest.fixture(scope="module")
def postgres():
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is None:
        pytest.skip("no PostgreSQL driver: pip install 'jointopt[postgresql]'")
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql to run this test")
    pg_ctl, initdb = binaries
    user = None
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the 'postgres' account
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
    folder = Path(tempfile.mkdtemp(prefix="jointopt-pg-"))
    if user is not None:
        os.chown(folder, user.pw_uid, user.pw_gid)
    as_user = {"user": user.pw_uid, "group": user.pw_gid} if user is not None else {}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    run = lambda *args: subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=folder, **as_user)
    made = run(initdb, "-D", str(data), "-U", "jointopt", "--auth=trust", "-E", "UTF8")
    started = made.returncode == 0 and run(pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
                                           "-o", f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off", "start")
    if made.returncode != 0 or started.returncode != 0:
        why = (made.stderr if made.returncode != 0 else started.stderr + started.stdout).strip().splitlines()
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {why[-1] if why else 'no message'}")
    server = Server(f"postgresql://jointopt@127.0.0.1:{port}/postgres",  # the URL as users write it: no driver named
                    stop=lambda: run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"),
                    start=lambda: run(pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
                                      "-o", f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off", "start"))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url(postgres):
    return postgres.url


class Server:
    """The test's PostgreSQL server: its URL, and stop/start to take the database away and back."""

    def __init__(self, url, stop, start):
        self.url, self.stop, self.start = url, stop, start


def test_three_workers_on_postgresql(postgres_url, tiny_config, tmp_path):
    config = tiny_config.override(["tuner.trials=4", "tuner.baselines=[]", "warmup.epochs=1", "search.epochs=1"])
    config_file = tmp_path / "study.yaml"
    config_file.write_text(config.to_yaml())
    # the README's cluster recipe: the same command on every machine, each with its own run directory
    machines = [tmp_path / f"machine-{i}" for i in range(3)]
    workers = [subprocess.Popen([sys.executable, "-m", "jointopt", "search", "--config", str(config_file), "--out",
                                 str(run), "--storage", postgres_url, "--no-tensorboard", "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for run in machines]
    outs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outs

    import optuna

    from jointopt.tune.storage import database_url

    study = optuna.load_study(study_name=config.tuner.study_name, storage=database_url(postgres_url))
    states = [t.state.name for t in study.trials]
    assert "RUNNING" not in states and "FAIL" not in states, states
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) >= 4
    assert len({t.number for t in done}) == len(done)  # distinct trials ...
    assert len({t.params["lambda"] for t in done}) == len(done)  # ... each with its own λ
    assert all(t.user_attrs["result"]["trial"] == t.number and len(t.values) == 2 for t in done)  # complete
    assert len({(t.user_attrs["host"], t.user_attrs["pid"]) for t in done}) >= 2  # several workers ran trials
    # every machine's run directory gathers the front of all of them
    summary = Study(config, machines[0], storage=postgres_url, resume=True).gather()
    assert sorted(r["trial"] for r in summary["results"]) == sorted(t.number for t in done)
    assert summary["front"] and {r["trial"] for r in summary["front"]} <= {t.number for t in done}

    # a worker started with another config is refused, the differing key named, nothing written
    refused = subprocess.run([sys.executable, "-m", "jointopt", "search", "--config", str(config_file), "--set",
                              "search.epochs=3", "--out", str(tmp_path / "late"), "--storage", postgres_url],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert "search.epochs: study 1, this worker 3" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "late").exists()


def test_a_database_that_goes_away_mid_trial(postgres, tiny_config, tmp_path):
    """The server stops while a trial runs (ordered by a named point, not a timer): the worker ends with
    one line, exit 1, and once the database is back `--resume` records the trial it had finished
    (its result.json is complete) instead of losing or re-running it, then completes the study."""
    import time

    config = tiny_config.override(["tuner.trials=2", "tuner.baselines=[]", "warmup.epochs=1", "search.epochs=2",
                                   "tuner.study_name=goes_away"])
    config_file = tmp_path / "study.yaml"
    config_file.write_text(config.to_yaml())
    run, go = tmp_path / "run", tmp_path / "go"
    command = [sys.executable, "-m", "jointopt", "search", "--config", str(config_file), "--out", str(run),
               "--storage", postgres.url, "--no-tensorboard", "--quiet"]
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, JOINTOPT_HOLD=f"checkpoint_written@0:{go}"))
    deadline = time.time() + 240
    while time.time() < deadline and not (run / "trials/0/checkpoint.pt").exists() and worker.poll() is None:
        time.sleep(0.05)
    assert (run / "trials/0/checkpoint.pt").exists(), worker.communicate()
    postgres.stop()  # the worker holds at the checkpoint of trial 0's first epoch meanwhile
    try:
        go.touch()
        out, err = worker.communicate(timeout=300)
    finally:
        assert postgres.start().returncode == 0
    assert worker.returncode == 1, (out, err)
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("jointopt: error: the study's database failed ("), err
    assert last.endswith(f"the interrupted trial is retried by `jointopt search --out {run} --resume`"), last
    assert (run / "trials/0/result.json").exists()  # written before the study could be told
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr

    import optuna

    from jointopt.tune.storage import database_url

    study = optuna.load_study(study_name="goes_away", storage=database_url(postgres.url))
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 2 and "RUNNING" not in states, states
    assert study.trials[0].state.name == "COMPLETE"  # recorded as it was, not run again
    assert study.trials[0].values[0] == json.loads((run / "trials/0/result.json").read_text())["val_acc"]
    assert "had finished when its worker stopped" in (run / "search.log").read_text()
