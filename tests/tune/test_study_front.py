"""The study's Pareto front is exactly the undominated trials, worked out independently (tests/fronts.py)."""
import csv
import io
import json

import jointopt
from fronts import dominates, expected_front
from jointopt.tune import Study

# (memory in bits, validation accuracy) given to the trials of a finished study: which ones the front must
# hold, and why not the others
MADE_UP = {
    0: (16000, 95.0),  # front
    1: (8000, 90.0),  # dominated by 3: as costly, less accurate
    2: (800, 10.0),  # collapsed: the cheapest of all, but no front point
    3: (8000, 91.0),  # front
    4: (16000, 95.0),  # the same point as 0: shown once, as the lower trial number
    5: (20000, 95.0),  # dominated by 0: as accurate, costlier
}


def front_files(run):
    front = json.loads((run / "front.json").read_text())["front"]
    rows = list(csv.DictReader(io.StringIO((run / "pareto.csv").read_text())))
    return [r["trial"] for r in front], [int(r["trial"]) for r in rows]


def test_study_front_is_exactly_the_undominated_trials(tiny_config, tmp_path):
    run = tmp_path / "run"
    config = tiny_config.override(["tuner.trials=6", "tuner.baselines=[]", "warmup.max_steps=2", "search.epochs=1",
                                   "search.max_steps=2", "finetune.epochs=0"])
    summary = jointopt.search(config, run, progress=False)
    results = summary["results"]
    assert sorted(r["trial"] for r in results) == list(range(6))
    # the real trials: the front is the brute-force one, and every trial left out is dominated by a front point
    front = [r["trial"] for r in summary["front"]]
    assert front == expected_front(results, "memory")
    assert front_files(run) == (front, front)
    on_front = [r for r in results if r["trial"] in front]
    for r in results:
        if r["trial"] not in front and not r.get("collapsed"):
            assert any(dominates(f, r, "memory") or (f["costs"]["memory"], f["val_acc"]) ==
                       (r["costs"]["memory"], r["val_acc"]) for f in on_front), r["trial"]
    # made-up numbers in the trials' records: dominated, collapsed and repeated points are all left out
    for trial, (memory, acc) in MADE_UP.items():
        path = run / "trials" / str(trial) / "result.json"
        result = json.loads(path.read_text())
        result.update(val_acc=acc, costs=dict(result["costs"], memory=float(memory)))
        result.pop("collapsed", None)
        if trial == 2:
            result["collapsed"] = "accuracy at chance"
        path.write_text(json.dumps(result))
    gathered = Study(config, run, resume=True).gather()
    assert [r["trial"] for r in gathered["front"]] == [3, 0]
    assert front_files(run) == ([3, 0], [3, 0])
