"""The progress display of `jointopt search` and `jointopt.search`: trial k/N, time left, resume."""
import io
import json

from jointopt.report import Progress
from jointopt.report._progress import duration
from jointopt.train.events import Event

CONFIG = {"search": {"epochs": 4}, "finetune": {"epochs": 1}}
RESULT = {"params": {"lambda": 1.0}, "val_acc": 90.0, "test_acc": 89.0, "cost_display": {"memory": "1 kB"},
          "kept_fraction": 0.5, "time_s": 50.0}


class Terminal(io.StringIO):
    def isatty(self):
        return True


def start(run_dir, trials=4, stream=None):
    progress = Progress(stream=stream or io.StringIO())
    progress(Event("study_start", data={"trials": trials, "target": "memory", "run_dir": str(run_dir),
                                        "config": CONFIG}))
    return progress


def finish(run_dir, progress, trial, at):
    folder = run_dir / "trials" / str(trial)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps({"trial": trial}))  # written before trial_end, as the study does
    progress(Event("trial_end", trial, data={"result": RESULT}, time=at))


def test_a_resumed_study_counts_the_trials_already_done(tmp_path):
    for trial in (0, 1):
        (tmp_path / "trials" / str(trial)).mkdir(parents=True)
        (tmp_path / "trials" / str(trial) / "result.json").write_text("{}")
    (tmp_path / "trials" / "5").mkdir(parents=True)  # a killed trial: no result
    stream = io.StringIO()
    progress = start(tmp_path, stream=stream)
    assert "4 trials, 2 already done, target memory" in stream.getvalue()
    progress(Event("trial_start", 2, time=0.0))
    finish(tmp_path, progress, 2, at=50.0)
    assert "trial   2 done (3/4)" in stream.getvalue()


def test_one_trial_is_announced_as_one(tmp_path):
    stream = io.StringIO()
    start(tmp_path, trials=1, stream=stream)
    assert "— 1 trial, target memory" in stream.getvalue()


def test_live_line_names_trial_k_of_n_and_the_time_left(tmp_path):
    stream = Terminal()
    progress = start(tmp_path, stream=stream)
    progress(Event("phase_start", 0, "search", data={"epochs": 4}, time=0.0))
    progress(Event("trial_start", 0, time=0.0))
    # one of 5 epochs (4 search + 1 fine-tune) done after 10 s: 50 s per trial, 40 s + 3 x 50 s left
    progress(Event("epoch", 0, "search", 0, {"loss": 1.0, "val_acc": 50.0}))
    assert progress.time_left(0, now=10.0) == 190.0
    line = stream.getvalue().rsplit("\r\033[K", 1)[1]
    assert "trial 0 (1/4) · search 1/4" in line and "· ETA " in line
    finish(tmp_path, progress, 0, at=30.0)  # the trial took 50 s (its result says so)
    progress(Event("trial_start", 1, time=100.0))
    assert progress.time_left(1, now=100.0) == 150.0  # three trials of 50 s
    progress(Event("epoch", 1, "search", 0, {"loss": 1.0, "val_acc": 50.0}))
    assert "trial 1 (2/4)" in stream.getvalue().rsplit("\r\033[K", 1)[1]


def test_no_estimate_before_anything_ran(tmp_path):
    progress = start(tmp_path)
    assert progress.time_left(None) is None


def test_durations_read_well():
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]
