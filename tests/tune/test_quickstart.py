"""The built-in quickstart (what `jointopt search` runs) meets its promise (~1 minute)."""
import jointopt
from jointopt.tune import quickstart_config


def test_quickstart_front(tmp_path):
    summary = jointopt.search(quickstart_config(), tmp_path / "run")
    front, w8 = summary["front"], summary["baselines"]["w8"]
    assert len(summary["results"]) == 8
    assert len(front) >= 4
    # one point at least 40 % smaller than the uniform 8-bit network within 1 point of its validation
    # accuracy (the front is chosen on validation) and 1.5 points of its test accuracy: the splits are
    # tiny (144 / 359 images), and one front point at 100 % validation was 1.1 points (4 images) under
    # w8 on test while the next, dominated on validation, was 0.6 above it
    good = [r for r in front if r["costs"]["memory"] <= 0.6 * w8["costs"]["memory"]
            and r["val_acc"] >= w8["val_acc"] - 1.0 and r["test_acc"] >= w8["test_acc"] - 1.5]
    assert good, [(r["trial"], r["val_acc"], r["test_acc"], r["costs"]["memory"]) for r in front]
    # the joint search really prunes as well as lowering bits
    assert any(r["kept_fraction"] < 1.0 for r in front)
