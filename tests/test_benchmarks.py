"""The arithmetic behind the front benchmark's figures: hypervolume and iso-accuracy selection."""
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._studies import analyse, hypervolume, iso_accuracy

REPO = Path(__file__).resolve().parents[1]


def test_hypervolume_of_a_staircase_by_hand():
    # Two points, reference (1.1, 0): the area is the union of two rectangles.
    # (0.5, 0.8): [0.5, 1.1] x [0, 0.8] = 0.48; (1.0, 0.9) adds [1.0, 1.1] x [0.8, 0.9] = 0.01.
    assert hypervolume([(0.5, 0.8), (1.0, 0.9)]) == pytest.approx(0.49)


def test_hypervolume_ignores_dominated_points_and_points_past_the_reference():
    front = [(0.5, 0.8), (1.0, 0.9)]
    assert hypervolume(front + [(0.7, 0.6), (1.2, 0.99)]) == pytest.approx(hypervolume(front))
    assert hypervolume([]) == 0.0


def _result(trial, val, test, cost):
    return {"trial": trial, "val_acc": val, "test_acc": test, "costs": {"memory": cost}}


def test_iso_accuracy_picks_the_smallest_network_within_the_tolerance():
    baseline = _result(None, 90.0, 89.0, 100.0)
    results = [_result(0, 90.2, 89.1, 80.0), _result(1, 89.5, 88.0, 40.0), _result(2, 89.4, 88.9, 20.0)]
    iso = iso_accuracy(results, baseline, "memory")
    assert iso["trial"] == 1  # 89.5 is within 0.5 of 90.0; 89.4 is not
    assert iso["reduction_pct"] == pytest.approx(60.0)
    assert iso["test_delta"] == pytest.approx(-1.0)
    assert iso_accuracy(results, _result(None, 95.0, 95.0, 100.0), "memory") is None
    # A network larger than the baseline gives a negative reduction, reported as such.
    assert iso_accuracy([_result(0, 90.0, 89.0, 110.0)], baseline, "memory")["reduction_pct"] == pytest.approx(-10.0)


def test_analyse_normalises_by_uniform_w8():
    results = [dict(_result(0, 89.0, 88.0, 50.0), params={"lambda": 1.0})]
    baselines = {"float": {"val_acc": 90.0, "test_acc": 89.0, "costs": {}},
                 "w8": _result(None, 89.2, 88.5, 100.0), "w4": _result(None, 88.0, 87.0, 50.0)}
    a = analyse({"target": "memory", "results": results, "front": results, "baselines": baselines})
    assert a["front"][0]["cost_norm"] == pytest.approx(0.5)
    assert a["hypervolume"]["front_val"] == pytest.approx((1.1 - 0.5) * 0.89)
    # w4 at (0.5, 0.88) and w8 at (1.0, 0.892): 0.6 * 0.88 + 0.1 * 0.012
    assert a["hypervolume"]["uniform_val"] == pytest.approx(0.6 * 0.88 + 0.1 * 0.012)
    assert a["iso_accuracy"]["w8"]["val"]["reduction_pct"] == pytest.approx(50.0)
    assert a["iso_accuracy"]["w4"]["val"]["reduction_pct"] == pytest.approx(0.0)


def test_the_benchmark_list_names_every_benchmark():
    out = subprocess.run([sys.executable, "-m", "benchmarks"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in ("overhead", "export_latency", "fashion_mnist_float", "front", "paper"):
        assert name in out


def test_analyse_keeps_collapsed_and_stopped_trials_off_the_front_figures():
    baselines = {"w8": {"val_acc": 90.0, "test_acc": 89.0, "costs": {"memory": 100.0}}}
    good = {**_result(0, 89.6, 88.0, 50.0), "params": {"lambda": 1.0}}
    stopped = {**_result(1, 89.8, 88.0, 10.0), "params": {"lambda": 4.0}, "stopped_early": "dominated"}
    summary = {"target": "memory", "results": [good, stopped], "front": [good], "baselines": baselines}
    out = analyse(summary)
    assert out["trials"] == 2
    assert out["iso_accuracy"]["w8"]["val"]["trial"] == 0  # not the stopped trial, though smaller
    assert out["hypervolume"]["front_val"] == pytest.approx(analyse({**summary, "results": [good]})
                                                            ["hypervolume"]["front_val"])


def test_early_stop_benchmark_runs_both_studies_side_by_side(tmp_path):
    """`python -m benchmarks early_stop` on a tiny quickstart: the shared warm-up, the two studies, the table."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "early_stop", "--bench", "quickstart", "--trials", "2",
                           "--set", "search.epochs=2", "--set", "warmup.epochs=1", "--set", "finetune.epochs=1",
                           "--set", "data.limit_train=320", "--set", "tuner.baselines=[8]",
                           "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (tmp_path / "results" / "early_stop_quickstart.md").read_text()
    assert "| off |" in text and "| on |" in text and "the time without" in text
    runs = next((tmp_path / "runs").iterdir())
    for name in ("off", "on"):
        log = (runs / name / "search.log").read_text()
        assert "warmup_cached" in log and "phase_start phase=warmup" not in log  # shared, not trained again
