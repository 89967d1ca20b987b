"""Early stopping of hopeless trials (``tuner.early_stop``): the rule, and a stopped trial in a study."""
import json

import pytest

import jointopt
from jointopt.errors import ConfigError
from jointopt.tune import Study
from jointopt.tune.early_stop import TRAJECTORY, StopRule, accuracy_margin, completed_trajectories
from tests.tiny import tiny_config

WIDEST = 1000.0


def rule(others=(), warmup_acc=90.0, after=0.5, val_samples=6000):
    return StopRule(after=after, chance=10.0, warmup_acc=warmup_acc, val_samples=val_samples, others=tuple(others))


def test_margin_is_the_split_noise_but_at_least_a_point():
    assert accuracy_margin(90.0, 6000) == 1.0  # 2σ = 0.77 points
    assert accuracy_margin(90.0, 180) == pytest.approx(2 * 100 * (0.9 * 0.1 / 180) ** 0.5)  # 4.5 points


def test_no_verdict_before_halfway_or_at_the_last_epoch():
    collapsed = (9.0, 100.0)
    assert rule().verdict(8, (collapsed,) * 3, WIDEST) is None  # 3 of 8 epochs < half
    assert rule().verdict(8, (collapsed,) * 4, WIDEST) is not None
    assert rule().verdict(4, (collapsed,) * 4, WIDEST) is None  # the search is over anyway


def test_a_condition_must_hold_two_epochs_running():
    assert rule().verdict(8, ((80.0, 500.0),) * 3 + ((9.0, 100.0),), WIDEST) is None  # one dip: may recover
    assert rule().verdict(8, ((80.0, 500.0),) * 2 + ((9.0, 100.0),) * 2, WIDEST).endswith(
        "(and after the epoch before)")
    assert rule().verdict(8, (None, None, None, (9.0, 100.0)), WIDEST) is None  # epochs before a resume unknown


def test_collapsed_needs_a_warm_up_above_chance():
    trajectory = ((80.0, 500.0),) * 2 + ((9.0, 100.0),) * 2
    assert "collapsed" in rule().verdict(8, trajectory, WIDEST)
    assert rule(warmup_acc=12.0).verdict(8, trajectory, WIDEST) is None


def test_the_widest_network_halfway_is_stopped():
    assert "widest" in rule().verdict(8, ((85.0, WIDEST),) * 4, WIDEST)
    assert rule().verdict(8, ((85.0, WIDEST),) * 3 + ((85.0, 0.99 * WIDEST),), WIDEST) is None


def test_dominated_at_the_same_epoch_by_more_than_the_margin():
    mine = ((80.0, 500.0), (80.0, 500.0), (81.0, 450.0), (81.0, 450.0))
    better = (3, ((85.0, 400.0),) * 8)
    verdict = rule([better]).verdict(8, mine, WIDEST)
    assert "dominated by trial 3" in verdict and "margin 1 points" in verdict
    assert rule([(3, ((81.5, 400.0),) * 8)]).verdict(8, mine, WIDEST) is None  # within the margin
    assert rule([(3, ((85.0, 460.0),) * 8)]).verdict(8, mine, WIDEST) is None  # costs more at the last epoch
    assert rule([(3, ((85.0, 400.0),) * 2)]).verdict(8, mine, WIDEST) is None  # no record at these epochs


def test_trajectories_come_from_complete_trials():
    class T:
        def __init__(self, number, state, rows):
            self.number, self.user_attrs = number, {TRAJECTORY: rows} if rows is not None else {}
            self.state = type("S", (), {"name": state})

    trials = [T(0, "COMPLETE", [[80, 5], None]), T(1, "FAIL", [[1, 1]]), T(2, "COMPLETE", None)]
    assert completed_trajectories(trials) == ((0, ((80.0, 5.0), None)),)


def test_early_stop_after_is_validated():
    with pytest.raises(ConfigError, match="early_stop_after"):
        tiny_config(tuner={"early_stop_after": 0})


def test_a_stopped_trial_skips_its_fine_tune_and_is_not_a_front_point(tmp_path, monkeypatch):
    """The study's plumbing: the rule sees the trial's trajectory after every search epoch; a stop ends
    the search, skips the fine-tune, and the trial is complete (frozen network, costs, reason) but off
    the front; every complete trial stores its trajectory for the trials after it."""
    seen = []

    class StopTrialOne:
        def verdict(self, epochs, trajectory, widest_cost):
            seen.append((trial_number[0], len(trajectory)))
            return "stopped early: a test rule" if trial_number[0] == 1 and len(trajectory) == 2 else None

    trial_number = [None]
    real = Study._stop_rule

    def fake(self, study, dataset):
        real(self, study, dataset)  # the real one is built too
        trial_number[0] = len(study.trials) - 1
        return StopTrialOne()

    monkeypatch.setattr(Study, "_stop_rule", fake)
    config = tiny_config(tuner={"early_stop": True, "trials": 2}, search={"epochs": 4, "max_steps": 3})
    run = tmp_path / "run"
    summary = jointopt.search(config, run)
    assert [len_ for number, len_ in seen if number == 0] == [1, 2, 3, 4]
    assert [len_ for number, len_ in seen if number == 1] == [1, 2]  # stopped after its second epoch
    stopped = json.loads((run / "trials/1/result.json").read_text())
    assert stopped["stopped_early"] == "stopped early: a test rule"
    assert (run / "trials/1/frozen.pt").exists() and stopped["costs"]["memory"] > 0
    assert 1 not in [r.trial for r in summary.front] and 0 in [r.trial for r in summary.front]
    finetunes = [line for line in (run / "search.log").read_text().splitlines()
                 if "phase_start" in line and "phase=finetune" in line and "trial=" in line]
    assert [("trial=0" in line, "trial=1" in line) for line in finetunes] == [(True, False)]
    import optuna

    study = optuna.load_study(study_name="jointopt", storage=f"sqlite:///{run / 'study.db'}")
    assert [len(t.user_attrs[TRAJECTORY]) for t in study.trials] == [4, 2]
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
