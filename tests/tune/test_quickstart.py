"""The built-in quickstart (what `jointopt search` runs) meets its promise (~1 minute).

The full quickstart takes minutes on a busy 2-core machine, so it is marked slow (run it with
``--run-slow``); CI runs the same claim on a quarter of the search budget: the same model, data,
warm-up and λ plan, 4 trials of 6 search and 4 fine-tune epochs, with only the w8 baseline.
"""
import pytest

import jointopt
from jointopt.tune import quickstart_config


def check_front(summary, trials, min_front):
    front, w8 = summary["front"], summary["baselines"]["w8"]
    assert len(summary["results"]) == trials
    assert len(front) >= min_front
    # one point at least 40 % smaller than the uniform 8-bit network within 1 point of its validation
    # accuracy (the front is chosen on validation) and 1.5 points of its test accuracy: the splits are
    # tiny (144 / 359 images), and one front point at 100 % validation was 1.1 points (4 images) under
    # w8 on test while the next, dominated on validation, was 0.6 above it
    good = [r for r in front if r["costs"]["memory"] <= 0.6 * w8["costs"]["memory"]
            and r["val_acc"] >= w8["val_acc"] - 1.0 and r["test_acc"] >= w8["test_acc"] - 1.5]
    assert good, [(r["trial"], r["val_acc"], r["test_acc"], r["costs"]["memory"]) for r in front]
    # the joint search really prunes as well as lowering bits
    assert any(r["kept_fraction"] < 1.0 for r in front)


@pytest.mark.slow
def test_quickstart_front(tmp_path):
    summary = jointopt.search(quickstart_config(), tmp_path / "run")
    check_front(summary, trials=8, min_front=4)


def test_quickstart_front_on_a_quarter_budget(tmp_path):
    config = quickstart_config().override(["search.epochs=6", "finetune.epochs=4", "tuner.trials=4",
                                           "tuner.baselines=[8]"])
    summary = jointopt.search(config, tmp_path / "run", progress=False)
    check_front(summary, trials=4, min_front=3)
