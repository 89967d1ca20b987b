"""The built-in quickstart (what `jointopt search` runs) meets its promise (~1 minute)."""
import jointopt
from jointopt.tune import quickstart_config


def test_quickstart_front(tmp_path):
    summary = jointopt.search(quickstart_config(), tmp_path / "run")
    front, w8 = summary["front"], summary["baselines"]["w8"]
    assert len(summary["results"]) == 8
    assert len(front) >= 4
    # one point at least 40 % smaller than the uniform 8-bit network within 1 point of its accuracy
    good = [r for r in front if r["costs"]["memory"] <= 0.6 * w8["costs"]["memory"]
            and r["val_acc"] >= w8["val_acc"] - 1.0 and r["test_acc"] >= w8["test_acc"] - 1.0]
    assert good, [(r["trial"], r["val_acc"], r["test_acc"], r["costs"]["memory"]) for r in front]
    # the joint search really prunes as well as lowering bits
    assert any(r["kept_fraction"] < 1.0 for r in front)
