"""Progress displays: `jointopt search`'s (trial k/N, time left, resume) and data preparation's."""
import io
import json

import pytest

from jointopt.report import Progress
from jointopt.report._progress import duration
from jointopt.train.events import Event

CONFIG = {"search": {"epochs": 4}, "finetune": {"epochs": 1}}
RESULT = {"params": {"lambda": 1.0}, "val_acc": 90.0, "test_acc": 89.0, "cost_display": {"memory": "1 kB"},
          "kept_fraction": 0.5, "time_s": 50.0}


class Terminal(io.StringIO):
    def isatty(self):
        return True


def live_line(stream) -> str:
    """What a terminal shows last on the live line (each redraw starts with a carriage return)."""
    return [part for part in stream.getvalue().split("\n")[-1].split("\r") if part.strip()][-1].strip()


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
    line = live_line(stream)
    assert line.startswith("[") and "trial 0 (1/4) · search 1/4" in line and "· ETA " in line
    finish(tmp_path, progress, 0, at=30.0)  # the trial took 50 s (its result says so)
    progress(Event("trial_start", 1, time=100.0))
    assert progress.time_left(1, now=100.0) == 150.0  # three trials of 50 s
    progress(Event("epoch", 1, "search", 0, {"loss": 1.0, "val_acc": 50.0}))
    assert "trial 1 (2/4)" in live_line(stream)


def test_no_estimate_before_anything_ran(tmp_path):
    progress = start(tmp_path)
    assert progress.time_left(None) is None


def test_durations_read_well():
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]


def test_a_finished_trial_gets_its_own_line_and_the_live_line_comes_back(tmp_path):
    stream = Terminal()
    progress = start(tmp_path, stream=stream)
    progress(Event("phase_start", 0, "search", data={"epochs": 4}, time=0.0))
    progress(Event("trial_start", 0, time=0.0))
    progress(Event("epoch", 0, "search", 0, {"loss": 1.0, "val_acc": 50.0}))
    finish(tmp_path, progress, 0, at=50.0)
    finished = [line for line in stream.getvalue().split("\n") if "trial   0 done (1/4)" in line]
    assert len(finished) == 1 and finished[0].split("\r")[-1].startswith("trial   0 done")  # the live line cleared
    assert "trial 0 (1/4) · search 1/4" in live_line(stream)  # drawn again below the finished trial
    progress.close()
    assert not stream.getvalue().split("\n")[-1].split("\r")[-1].strip()  # nothing left on the live line


def test_off_a_terminal_only_whole_lines_are_written(tmp_path):
    stream = io.StringIO()
    progress = start(tmp_path, stream=stream)
    progress(Event("trial_start", 0, time=0.0))
    progress(Event("epoch", 0, "search", 0, {"loss": 1.0, "val_acc": 50.0}))
    finish(tmp_path, progress, 0, at=50.0)
    progress.close()
    assert "\r" not in stream.getvalue() and "search 1/4" not in stream.getvalue()
    assert stream.getvalue().splitlines()[-1].startswith("trial   0 done (1/4)")


def test_quiet_prints_nothing_even_on_a_terminal(tmp_path):
    stream = Terminal()
    progress = Progress(stream=stream, quiet=True)
    progress(Event("study_start", data={"trials": 2, "target": "memory", "run_dir": str(tmp_path), "config": CONFIG}))
    progress(Event("epoch", 0, "search", 0, {"loss": 1.0, "val_acc": 50.0}))
    finish(tmp_path, progress, 0, at=50.0)
    progress.close()
    assert stream.getvalue() == ""


def _pty(columns=0, rows=0):
    """A pseudo-terminal: (what the program writes to, what the terminal receives); size 0 = unsized."""
    pty = pytest.importorskip("pty")  # POSIX only
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return open(slave, "w", encoding="utf-8"), master


def _received(master) -> str:
    """Everything written so far (the kernel hands a pty's output over in pieces, a moment later)."""
    import os
    import select

    chunks = []
    while select.select([master], [], [], 0.2)[0]:
        chunks.append(os.read(master, 1 << 16))
    return b"".join(chunks).decode("utf-8", "replace")


def _one_epoch(progress, tmp_path):
    progress(Event("study_start", data={"trials": 4, "target": "memory", "run_dir": str(tmp_path), "config": CONFIG}))
    progress(Event("phase_start", 0, "search", data={"epochs": 4}, time=0.0))
    progress(Event("epoch", 0, "search", 0, {"loss": 1.0, "val_acc": 50.0}))


def test_the_live_line_is_cut_to_the_terminals_width(tmp_path):
    stream, master = _pty(columns=40, rows=10)
    with stream:
        _one_epoch(Progress(stream=stream), tmp_path)
        shown = [part for part in _received(master).split("\r") if "trial 0" in part]
    assert shown and all(len(part.rstrip()) <= 40 for part in shown), shown


def test_a_terminal_that_reports_no_size_still_shows_the_live_line(tmp_path):
    import os

    stream, master = _pty()
    with stream:
        assert os.get_terminal_size(stream.fileno()).columns == 0
        _one_epoch(Progress(stream=stream), tmp_path)
        assert "trial 0 (1/4) · search 1/4" in _received(master)


# -- data preparation (jointopt.data._progress.Counter, also used by downloads) -------------------

def test_data_progress_off_a_terminal_is_a_line_per_tenth():
    from jointopt.data._progress import Counter

    stream = io.StringIO()
    counter = Counter("computing MFCC features", 200, "clips", stream=stream)
    for done in range(1, 201):
        counter.update(done)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in stream.getvalue()
    assert lines[0] == "computing MFCC features: 1/200 clips (0 %)"
    assert lines[5] == "computing MFCC features: 100/200 clips (50 %)"
    assert lines[-1] == "computing MFCC features: 200/200 clips (100 %)"


def test_data_progress_counts_bytes_in_megabytes_and_resumes_where_it_was():
    from jointopt.data._progress import Counter

    stream = io.StringIO()
    counter = Counter("a.tar.gz", 4_000_000, "B", stream=stream, initial=2_100_000)  # resumed past 50 %
    counter.update(2_200_000)
    counter.update(2_400_000)
    assert stream.getvalue() == "a.tar.gz: 2.4/4.0 MB (60 %)\n"


def test_data_progress_is_silent_when_quiet_small_or_of_unknown_size_off_a_terminal():
    from jointopt.data._progress import Counter

    stream = io.StringIO()
    for counter in (Counter("x", 100, "clips", quiet=True, stream=stream),
                    Counter("x", 100, "clips", minimum=1000, stream=stream),
                    Counter("x", None, "B", stream=stream)):
        for done in (50, 100):
            counter.update(done)
        counter.close()
    quiet_terminal = Terminal()
    Counter("x", 100, "clips", quiet=True, stream=quiet_terminal).update(100)
    assert stream.getvalue() == "" and quiet_terminal.getvalue() == ""


def test_data_progress_on_a_terminal_is_one_bar_that_ends_on_its_own_line():
    from jointopt.data._progress import Counter

    stream = Terminal()
    counter = Counter("decoding", 3000, "images", stream=stream)
    for done in range(1000, 3001, 1000):
        counter.update(done)
    counter.update(3000)  # after the end: nothing more
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1  # one line, rewritten in place, kept at the end
    final = text.rstrip("\n").split("\r")[-1]
    assert final.startswith("decoding: 100%") and "3000/3000" in final and "images" in final
