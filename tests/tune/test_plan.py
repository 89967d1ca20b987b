"""The λ plan: where the first trials go, when the range stops growing, and which gap is filled next."""
import math

from jointopt.tune.plan import FACTOR, START, Point, Targets, next_lambda

TARGETS = Targets(best_acc=90.0, chance_acc=10.0)  # collapse below 70 %


def model(lam):
    """A made-up network: cost halves per doubling of λ from 1 at λ=1/16, accuracy falls once cost < 0.3."""
    cost = min(1.0, 1 / (16 * lam))
    acc = 90.0 - 2.0 * max(0.0, 1 / 16 - lam) if cost >= 0.3 else max(10.0, 90.0 - 200 * (0.3 - cost))
    return Point(lam, cost, acc)


def test_first_trial_is_lambda_one_and_the_range_grows_until_saturated_and_collapsed():
    lam, reason = next_lambda([], TARGETS)
    assert lam == START and reason == "start"
    points, reasons = [], []
    for _ in range(12):
        lam, reason = next_lambda(points, TARGETS)
        points.append(model(lam))
        reasons.append(reason.split(":")[0])
    lams = sorted(p.lam for p in points)
    assert reasons[:2] == ["start", "extend left"]
    assert model(lams[0]).acc >= TARGETS.best_acc - TARGETS.tolerance  # left end saturated
    assert model(lams[-1]).acc < TARGETS.collapse_acc  # right end collapsed
    assert any(r.startswith("fill the widest gap") for r in reasons)  # then it fills
    assert len(set(round(math.log(l), 3) for l in lams)) == len(lams)  # never the same λ twice


def test_no_extension_left_once_more_cost_buys_no_accuracy():
    """A smaller λ that cost more but gave the same accuracy ends the search to the left."""
    points = [Point(1.0, 0.5, 89.0), Point(0.25, 0.7, 89.1)]
    lam, reason = next_lambda(points, TARGETS)
    assert not reason.startswith("extend left")
    lam, reason = next_lambda([Point(1.0, 0.5, 88.0), Point(0.25, 0.7, 89.0)], TARGETS)
    assert reason.startswith("extend left") and lam == 0.25 / FACTOR
    points = [Point(1.0, 0.4, 89.0)]
    lam, reason = next_lambda(points, TARGETS)
    assert reason.startswith("extend left") and lam == 1.0 / FACTOR


def test_widest_gap_is_filled_at_the_geometric_mean_and_running_trials_split_it():
    points = [Point(0.25, 0.9, 90.0), Point(1.0, 0.6, 89.9), Point(4.0, 0.1, 70.0), Point(16.0, 0.02, 20.0)]
    lam, reason = next_lambda(points, TARGETS)
    assert reason.startswith("fill") and math.isclose(lam, 2.0)
    lam2, _ = next_lambda(points + [Point(2.0)], TARGETS)  # a worker is already running λ=2
    assert lam2 not in (2.0,) and 1.0 < lam2 < 16.0 and not math.isclose(lam2, 2.0)


def test_collapsed_pairs_are_not_filled_and_bounds_hold():
    points = [Point(0.25, 0.9, 90.0), Point(1.0, 0.5, 89.0), Point(4.0, 0.01, 12.0), Point(64.0, 0.001, 10.0)]
    lam, _ = next_lambda(points, TARGETS)
    assert lam < 4.0
    lam, _ = next_lambda([Point(1.0, 0.3, 85.0)], TARGETS, bounds=(0.5, 2.0))
    assert 0.5 <= lam <= 2.0


def test_the_top_of_the_front_is_filled_before_the_steep_region():
    """Seed 1 of the Fashion-MNIST benchmark before this rule: λ 0.25 and 1 framed the networks a user
    would ship (90.1 % at 55 % of the cost, 89.4 % at 28 %), yet the gaps where accuracy falls away
    (4 → 16: 87.5 → 62.8 %) were filled first, so six trials never put a point between 0.25 and 1."""
    targets = Targets(best_acc=90.1, chance_acc=10.0, worst_uniform_acc=87.75)  # floor 85.4 %
    points = [Point(1.0, 0.284, 89.37), Point(0.25, 0.55, 90.08), Point(4.0, 0.096, 87.53), Point(16.0, 0.017, 62.75)]
    lam, reason = next_lambda(points, targets)
    assert reason.startswith("fill") and math.isclose(lam, 2.0)
    lam, reason = next_lambda(points + [Point(2.0, 0.18, 88.7)], targets)
    assert reason.startswith("fill") and math.isclose(lam, 0.5)
    assert targets.floor_acc == 90.1 - 2 * (90.1 - 87.75)
    assert Targets(90.0, 10.0, worst_uniform_acc=40.0).floor_acc == Targets(90.0, 10.0).collapse_acc  # never below collapse


def test_a_pair_below_the_useful_floor_is_not_filled():
    targets = Targets(best_acc=90.0, chance_acc=10.0, worst_uniform_acc=88.0)  # floor 86 %
    points = [Point(0.25, 0.9, 90.0), Point(1.0, 0.5, 89.5), Point(4.0, 0.3, 87.0), Point(8.0, 0.08, 78.0),
              Point(16.0, 0.01, 50.0)]
    lam, reason = next_lambda(points, targets)  # 78 % is above the collapse line (70 %) but below the floor
    assert reason.startswith("fill") and math.isclose(lam, 2.0)
