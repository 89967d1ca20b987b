"""A listener in its own process: every event arrives, in order, before close() returns."""
import json
import threading
from pathlib import Path

import pytest

from jointopt.report._background import BackgroundListener
from jointopt.train.events import Event


class Recorder:
    """Writes every event it gets to a file when closed (in the child process)."""

    def __init__(self, path):
        self.path, self.seen = Path(path), []

    def __call__(self, event):
        if event.kind == "boom":
            raise ValueError("a figure failed")
        self.seen.append([event.kind, event.trial, event.data.get("i")])

    def close(self):
        self.path.write_text(json.dumps(self.seen))


def test_events_arrive_in_order_and_close_waits_for_them(tmp_path, capfd):
    out = tmp_path / "seen.json"
    listener = BackgroundListener(Recorder, out)
    for i in range(200):
        listener(Event("epoch", trial=i % 3, data={"i": i}))
    listener(Event("boom"))  # a failing event is said once on stderr; the others still arrive
    listener(Event("study_end", data={"i": -1}))
    listener.close()
    seen = json.loads(out.read_text())  # written by the child's close(), before close() returned
    assert seen == [["epoch", i % 3, i] for i in range(200)] + [["study_end", None, -1]]
    assert "Recorder failed on a 'boom' event: ValueError('a figure failed')" in capfd.readouterr().err
    listener.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        listener(Event("epoch"))


def test_an_unpicklable_event_fails_in_the_studys_process(tmp_path):
    listener = BackgroundListener(Recorder, tmp_path / "seen.json")
    try:
        with pytest.raises(Exception):
            listener(Event("epoch", data={"lock": threading.Lock()}))
        listener(Event("epoch", data={"i": 1}))  # the listener goes on
    finally:
        listener.close()
    assert json.loads((tmp_path / "seen.json").read_text()) == [["epoch", None, 1]]


def test_no_event_no_child(tmp_path, monkeypatch):
    """A command refused before its study starts never starts (or leaves) a child process."""
    import multiprocessing

    started = []
    monkeypatch.setattr(multiprocessing.get_context("spawn").Process, "start", lambda self: started.append(self.name))
    BackgroundListener(Recorder, tmp_path / "seen.json").close()
    assert started == [] and not (tmp_path / "seen.json").exists()


def test_ctrl_c_in_a_terminal_is_one_line_with_tensorboard_on(tmp_path):
    """Ctrl-C reaches the whole process group, the TensorBoard child included: the study's process
    says one line and exits 130, the child prints nothing and has finished its files. Ordered by a
    named point: the study holds at trial 0's first checkpoint (a file that never appears)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tiny import tiny_config

    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_config(tuner={"trials": 1, "baselines": []}).to_yaml())
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "jointopt", "search", "--config", str(config), "--out",
                             str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env=dict(os.environ, JOINTOPT_HOLD=f"checkpoint_written@0:{tmp_path / 'never'}"))
    deadline = time.time() + 240
    while time.time() < deadline and not (run / "trials/0/checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.05)
    assert (run / "trials/0/checkpoint.pt").exists(), proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith("jointopt: interrupted; completed trials are kept"), err
    assert list((run / "tb" / "warmup").glob("events.out.tfevents.*"))  # the child finished its files


def test_the_cli_draws_tensorboard_in_a_child_process(tmp_path, monkeypatch):
    """jointopt search attaches the TensorBoard listener in the background; its runs are complete at exit."""
    import multiprocessing

    from jointopt.cli.main import main
    from tiny import tiny_config

    started = []
    real_start = multiprocessing.get_context("spawn").Process.start
    monkeypatch.setattr(multiprocessing.get_context("spawn").Process, "start",
                        lambda self: started.append(self.name) or real_start(self))
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_config(tuner={"trials": 1, "baselines": []}).to_yaml())
    assert main(["search", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert started == ["jointopt-TensorBoardListener"]
    runs = {p.name for p in (tmp_path / "run" / "tb").iterdir() if p.is_dir()}
    assert {"trial_0", "warmup", "study"} <= runs
    assert list((tmp_path / "run" / "tb" / "trial_0").glob("events.out.tfevents.*"))
