"""The arithmetic behind the front benchmark's figures: hypervolume and iso-accuracy selection."""
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.front import analyse, hypervolume, iso_accuracy

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
