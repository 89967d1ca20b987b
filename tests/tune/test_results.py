"""Typed, versioned results and the one run directory: records round-trip, files written before the
records had a version still read, a newer version and a missing folder are one clear error."""
import json
import warnings

import pytest

from jointopt.errors import ConfigError, ExportError
from jointopt.results import RESULT_VERSION, BaselineResult, ResultError, StudyResult, TrialResult
from jointopt.tune.rundir import RunDir, RunDirError

# result.json, front.json and baselines.json exactly as the code before typed results wrote them
# (no "version"; JSON made the bits_histogram keys strings)
V0_RESULT = {
    "target": "memory", "costs": {"memory": 9250.0, "bitops": 123456.0},
    "cost_display": {"memory": "1.16 kB", "bitops": "123 kbitop"}, "bits_histogram": {"8": 10, "4": 6, "2": 3},
    "allocation": [{"layer": "conv1", "kept": 12, "bits": {"8": 6, "4": 6}, "act_bits": 8, "total": 16},
                   {"layer": "fc", "kept": 10, "bits": {"8": 4, "2": 3, "4": 3}, "act_bits": 8, "total": 10}],
    "mean_bits": 5.3, "kept_fraction": 0.846, "reference": {"memory": 20000.0, "bitops": 400000.0},
    "trial": 1, "val_acc": 81.25, "test_acc": 80.5, "time_s": 3.2,
    "search": {"soft_val_acc": 80.0, "hard_val_acc": 79.0}, "params": {"lambda": 2.5}, "method": "joint",
    "input_shape": [1, 8, 8],
}


def v0_run(tmp_path, tiny_config):
    run = tmp_path / "v0"
    (run / "trials" / "0").mkdir(parents=True)
    (run / "trials" / "1").mkdir(parents=True)
    (run / "config.yaml").write_text(tiny_config.to_yaml())
    cheap = dict(V0_RESULT, trial=0, val_acc=70.0, test_acc=69.0, costs={"memory": 4000.0, "bitops": 50000.0},
                 params={"lambda": 10.0})
    for result in (cheap, V0_RESULT):
        (run / "trials" / str(result["trial"]) / "result.json").write_text(json.dumps(result, indent=2))
    baselines = {"float": {"val_acc": 90.0, "test_acc": 89.0, "costs": {}},
                 "w8": {"val_acc": 85.0, "test_acc": 84.0, "costs": {"memory": 16000.0}, "bits": 8}}
    (run / "baselines.json").write_text(json.dumps(baselines))
    (run / "front.json").write_text(json.dumps({"target": "memory", "front": [cheap, V0_RESULT],
                                                "results": [cheap, V0_RESULT], "baselines": baselines,
                                                "failed": [{"trial": 2, "params": {"lambda": 99.0},
                                                            "reason": "the search diverged"}]}))
    return run


def test_trial_result_round_trips_and_says_its_version():
    result = TrialResult.from_json(V0_RESULT)
    assert result.version == RESULT_VERSION and result.trial == 1 and result.cost() == 9250.0
    assert result.bits_histogram == {8: 10, 4: 6, 2: 3}  # integer widths again
    assert result.input_shape == (1, 8, 8) and result.on_front and result.collapsed is None
    data = result.to_json()
    assert data["version"] == RESULT_VERSION and TrialResult.from_json(json.loads(json.dumps(data))) == result
    assert {k: v for k, v in data.items() if k != "version"} == V0_RESULT  # nothing lost, nothing added
    # the summary a trial keeps in Optuna: small, and read back as a result without the allocation
    summary = TrialResult.from_json(result.summary_json())
    assert "allocation" not in result.summary_json() and summary.allocation == () and summary.costs == result.costs
    # scripts written against the dicts keep working, read-only
    assert result["val_acc"] == 81.25 and result.get("collapsed") is None and "allocation" in result
    with pytest.raises(TypeError):
        result["val_acc"] = 0.0  # noqa - a record is not a dict
    with pytest.raises(Exception):
        result.val_acc = 0.0  # frozen


def test_a_newer_or_broken_record_is_a_clear_error():
    with pytest.raises(ResultError, match=rf"version {RESULT_VERSION + 1}, newer than .*upgrade jointopt"):
        TrialResult.from_json(dict(V0_RESULT, version=RESULT_VERSION + 1))
    with pytest.raises(ResultError, match="missing 'val_acc'"):
        TrialResult.from_json({k: v for k, v in V0_RESULT.items() if k != "val_acc"})
    with pytest.raises(ResultError, match="trial number"):
        TrialResult.from_json(dict(V0_RESULT, trial=-8))  # a baseline is not a trial
    with pytest.raises(ResultError, match="newer"):
        BaselineResult.from_json("w8", {"val_acc": 1.0, "test_acc": 1.0, "version": 99})
    with pytest.raises(ResultError, match="newer"):
        StudyResult.from_json({"version": 99})


def test_files_written_before_versions_are_read_by_report_and_export(tmp_path, tiny_config):
    from jointopt.export._run import select_trial
    from jointopt.report import load_run

    run = v0_run(tmp_path, tiny_config)
    data = load_run(run)
    assert [r.trial for r in data.results] == [0, 1] and data.results[1] == TrialResult.from_json(V0_RESULT)
    assert data.baselines["w8"] == BaselineResult("w8", 85.0, 84.0, {"memory": 16000.0}, 8)
    assert [r.trial for r in data.front()] == [0, 1]
    assert select_trial(run, min_accuracy=80.0)[0] == 1 and select_trial(run, max_cost=1.0)[0] == 0  # kB
    summary = RunDir(run).front()
    assert summary.failed[0].reason == "the search diverged" and summary.front[1].trial == 1
    # a record of a newer jointopt is refused by every reader with the same error, never skipped
    newer = dict(V0_RESULT, version=RESULT_VERSION + 1)
    (run / "trials" / "1" / "result.json").write_text(json.dumps(newer))
    for read in (lambda: load_run(run), lambda: RunDir(run).result(1)):
        with pytest.raises(RunDirError, match="upgrade jointopt"):
            read()


def test_one_error_for_a_missing_or_unreadable_run_directory(tmp_path, tiny_config):
    from jointopt.export._run import check_run, select_trial
    from jointopt.report import load_run
    from jointopt.tune import load_trial

    missing, empty = tmp_path / "nowhere", tmp_path / "empty"
    empty.mkdir()
    readers = [load_run, check_run, lambda p: load_trial(p, 0), lambda p: select_trial(p, max_cost=1.0)]
    for folder, why in ((missing, "it does not exist"), (empty, "no config.yaml")):
        for read in readers:
            with pytest.raises(RunDirError) as caught:
                read(folder)
            assert str(caught.value) == (f"{str(folder)!r} is not a jointopt run directory ({why}); pass the --out "
                                         "folder of `jointopt search`")
    assert issubclass(RunDirError, ConfigError) and issubclass(RunDirError, ExportError)  # old `except`s still work
    run = v0_run(tmp_path, tiny_config)
    with pytest.raises(RunDirError, match=r"trial 5 of .* has no result; completed trials: \[0, 1\]"):
        RunDir(run).result(5)
    (run / "front.json").write_text("{not json")
    with pytest.raises(RunDirError, match="front.json' is not valid JSON"):
        select_trial(run, max_cost=1.0)
    assert [r.trial for r in load_run(run).results] == [0, 1]  # the report of a live study reads the trials


def test_event_bus_warns_once_per_failing_listener_and_keeps_every_failure():
    from jointopt.train import EventBus
    from jointopt.train.events import ListenerWarning

    seen = []

    def broken(event):
        raise RuntimeError(f"cannot draw {event.kind}")

    bus = EventBus([broken, seen.append])
    with pytest.warns(ListenerWarning, match=r"listener .*broken failed on a 'epoch' event \(RuntimeError: cannot "
                                             r"draw epoch\)") as record:
        bus.emit("epoch", 0)
        bus.emit("trial_end", 0)
    assert len([w for w in record if issubclass(w.category, ListenerWarning)]) == 1  # once per listener
    assert [e.kind for e in seen] == ["epoch", "trial_end"]  # the other listeners still get everything
    assert len(bus.errors) == 2 and "RuntimeError: cannot draw trial_end" in bus.errors[1]
    assert list(bus.failed_listeners().values()) == [2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EventBus([seen.append]).emit("epoch")  # a healthy bus never warns
