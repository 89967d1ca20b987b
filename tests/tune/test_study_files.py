"""What every study writes whatever its listeners: ``allocation.jsonl`` without TensorBoard, the
baselines' events under their own name, and a listener's failure in the summary and the log.
(Killed-and-resumed studies: ``test_faults.py``.)"""
import json

import pytest

from jointopt.tune import Study


def test_every_study_writes_the_allocation_history_and_names_its_baselines(tiny_config, tmp_path):
    events = []
    config = tiny_config.override(["tuner.trials=1", "warmup.epochs=1", "search.epochs=2", "finetune.epochs=1"])
    summary = Study(config, tmp_path / "run", listeners=[events.append]).run()  # no TensorBoard listener
    run = tmp_path / "run"
    rows = [json.loads(line) for line in (run / "trials/0/allocation.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    layers = [row["layer"] for row in summary.results[0].allocation]
    assert all([layer["layer"] for layer in r["layers"]] == layers for r in rows)
    # a baseline's training is announced as the baseline's, not as a trial with a negative number
    baseline_epochs = [e for e in events if e.kind == "epoch" and e.baseline is not None]
    assert baseline_epochs and {e.baseline for e in baseline_epochs} == {"w8"}
    assert all(e.trial is None for e in baseline_epochs)
    assert all(e.trial >= 0 for e in events if e.trial is not None)
    assert (run / "baselines/w8/metrics.jsonl").is_file() and not (run / "trials/-8").exists()
    assert "baseline=w8" in (run / "search.log").read_text()


def test_a_failing_listener_is_named_in_the_summary_and_the_log(tiny_config, tmp_path):
    from jointopt.train.events import ListenerWarning

    class Drawing:
        def __call__(self, event):
            if event.kind == "epoch":
                raise ValueError("no display")

    config = tiny_config.override(["tuner.trials=1", "warmup.epochs=1", "search.epochs=1", "finetune.epochs=0",
                                   "tuner.baselines=[]"])
    with pytest.warns(ListenerWarning, match="Drawing failed on a 'epoch' event \\(ValueError: no display\\)"):
        summary = Study(config, tmp_path / "run", listeners=[Drawing()]).run()
    assert summary.results and len(summary.listener_errors) == 1
    assert summary.listener_errors[0].startswith("Drawing failed on ")
    assert "event listeners failed: Drawing failed on" in (tmp_path / "run/search.log").read_text()
    assert json.loads((tmp_path / "run/front.json").read_text())["listener_errors"] == list(summary.listener_errors)
