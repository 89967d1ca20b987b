"""Features a config or the command line switches on, each checked by its effect on tiny real studies:
the second cost term (cost.second, λ2), tuned temperature decay, distillation in the fine-tune,
`jointopt search --lambda`, and the λ samplers."""
import copy
import json
import math

import pytest
import torch

import jointopt
from jointopt.cli.main import main
from jointopt.train.events import EventBus
from jointopt.train.phases import TrialRunner
from jointopt.tune.setup import load_dataset
from tiny import tiny_config

# the shortest study that still searches: a few steps per phase, no uniform baselines
QUICK = dict(warmup={"epochs": 1, "max_steps": 2}, search={"epochs": 2, "max_steps": 2}, finetune={"epochs": 0})


def results_of(run):
    """The trials' records, read from the run directory."""
    return sorted((json.loads(p.read_text()) for p in run.glob("trials/*/result.json")), key=lambda r: r["trial"])


def metrics_of(run, trial):
    return [json.loads(line) for line in (run / "trials" / str(trial) / "metrics.jsonl").read_text().splitlines()]


# -- the second cost term ---------------------------------------------------------------------------------
def test_a_strong_second_cost_term_lowers_the_second_cost(tmp_path):
    """λ on the target (memory) almost off; λ2 on bitops tiny, then huge: bitops must fall with λ2 alone."""
    bitops = {}
    for lam2 in (1e-3, 200.0):
        config = tiny_config(cost={"target": "memory", "report": [], "second": "bitops", "second_lambda_min": lam2,
                                   "second_lambda_max": lam2}, tuner={"trials": 1, "baselines": []},
                             warmup=QUICK["warmup"], finetune={"epochs": 0})
        run = tmp_path / f"lam2_{lam2:g}"
        jointopt.search(config, run, progress=False, fixed_lambda=1e-3)
        (result,) = results_of(run)
        assert result["params"]["lambda"] == pytest.approx(1e-3) and result["params"]["lambda2"] == pytest.approx(lam2)
        bitops[lam2] = result["costs"]["bitops"]
        if lam2 < 1:  # the weak term leaves the network near its full bit-operations
            assert bitops[lam2] > 0.9 * result["reference"]["bitops"]
    assert bitops[200.0] < 0.7 * bitops[1e-3], bitops


# -- tuned temperature decay --------------------------------------------------------------------------------
def test_tuned_temperature_decay_sets_each_trials_temperature_schedule(tmp_path):
    run = tmp_path / "run"
    config = tiny_config(**QUICK, tuner={"trials": 2, "tune_temperature_decay": True, "sampler": "spread",
                                         "baselines": []})
    jointopt.search(config, run, progress=False)
    decays = []
    for result in results_of(run):
        decay = result["params"]["temperature_decay"]
        assert 0.01 <= decay <= 0.2
        decays.append(decay)
        # the published per-epoch schedule with this trial's decay: T = T0 · exp(-decay) after the first epoch
        # (the default schedule, per step from T0 to final_temperature over the budget, is far lower)
        rows = [r for r in metrics_of(run, result["trial"]) if r["phase"] == "search"]
        first = min(rows, key=lambda r: r["epoch"])
        assert first["epoch"] == 0
        assert first["temperature"] == pytest.approx(config.search.temperature * math.exp(-decay), rel=1e-6)
    assert len(set(decays)) == 2


# -- distillation in the fine-tune --------------------------------------------------------------------------
class RecordingTeacher(torch.nn.Module):
    """A teacher sure of class 0 whatever the input, that keeps the batches it was shown."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return torch.nn.functional.one_hot(torch.zeros(x.shape[0], dtype=torch.long), 10).float() * 6 - 3


@pytest.fixture(scope="module")
def distill_setup():
    config = tiny_config(finetune={"epochs": 1, "max_steps": 1})  # one step: the logged loss is that step's
    dataset = load_dataset(config)
    torch.manual_seed(0)
    model = jointopt.create_model(config.model.name)  # digits_cnn: 8x8 digits, 10 classes
    x, _ = next(dataset.batches("train", 64))
    return config, dataset, jointopt.convert(model.eval(), x).freeze()


def first_finetune_loss(setup, teacher=None, **finetune):
    """The loss of the fine-tune's first step; ``teacher=None``: the student teaches itself."""
    config, dataset, frozen = setup
    config = config.override([f"finetune.{k}={str(v).lower()}" for k, v in finetune.items()])
    losses = []
    bus = EventBus([lambda e: losses.append(e.data["loss"]) if e.kind == "epoch" else None])
    student = copy.deepcopy(frozen)
    TrialRunner(config, dataset, bus, "cpu", trial=0, trial_dir=None).finetune(
        student, student if teacher is None else teacher, seed=0)
    assert len(losses) == 1 and not bus.errors
    return losses[0]


def test_distillation_loss_is_mixed_into_the_finetune(distill_setup):
    teacher = RecordingTeacher()
    plain = first_finetune_loss(distill_setup, teacher, distill=False)  # cross-entropy alone
    assert plain > 0.5 and not teacher.inputs  # an untrained student: far from the labels; the teacher unasked
    # taught by itself, the distillation term is zero: with weight 1 the loss vanishes, with 0.5 it halves
    assert first_finetune_loss(distill_setup, distill=True, distill_weight=1.0) == pytest.approx(0.0, abs=1e-5)
    assert first_finetune_loss(distill_setup, distill=True, distill_weight=0.5) == pytest.approx(0.5 * plain, rel=1e-5)
    # taught by a teacher sure of class 0: T² · KL(teacher || student) at temperature T, worked out here on the
    # batch the teacher was shown, with the student as it was before its first step
    for temperature in (1.0, 3.0):
        taught = first_finetune_loss(distill_setup, teacher, distill=True, distill_weight=1.0,
                                     distill_temperature=temperature)
        (x,) = teacher.inputs
        teacher.inputs.clear()
        with torch.no_grad():
            student = copy.deepcopy(distill_setup[2]).train()(x) / temperature
            target = teacher(x) / temperature
        p = torch.softmax(target, 1)
        expected = (p * (torch.log_softmax(target, 1) - torch.log_softmax(student, 1))).sum(1).mean() * temperature**2
        teacher.inputs.clear()
        assert taught == pytest.approx(expected.item(), rel=1e-4), temperature


# -- `jointopt search --lambda` -----------------------------------------------------------------------------
def test_cli_lambda_runs_one_trial_with_that_lambda(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    # the selectors stand still at one temperature: the cost, and so the cost term, is the same at every step
    still = {"epochs": 2, "max_steps": 2, "selector_lr": 1e-12, "temperature": 1.0, "final_temperature": 1.0,
             "hard_fraction": 0.0}
    config.write_text(tiny_config(**dict(QUICK, search=still), tuner={"baselines": []}).to_yaml())
    run = tmp_path / "run"
    assert main(["search", "--config", str(config), "--out", str(run), "--lambda", "0.37", "--no-tensorboard"]) == 0
    (result,) = results_of(run)
    assert result["params"]["lambda"] == 0.37
    front = json.loads((run / "front.json").read_text())
    assert [r["params"]["lambda"] for r in front["results"]] == [0.37]
    # the search ran with it: its cost term was λ · cost / reference
    reference = result["reference"]["memory"]
    rows = [r for r in metrics_of(run, 0) if r["phase"] == "search"]
    assert len(rows) == 2 and rows[0]["soft_cost/memory"] < reference
    for row in rows:
        assert row["reg"] == pytest.approx(0.37 * row["soft_cost/memory"] / reference, rel=1e-5), row


# -- the λ samplers -----------------------------------------------------------------------------------------
LAMBDA_RANGE = (0.05, 50.0)


def sampled_lambdas(tmp_path, sampler, trials):
    run = tmp_path / sampler
    config = tiny_config(**QUICK, tuner={"trials": trials, "sampler": sampler, "baselines": [],
                                         "lambda_min": LAMBDA_RANGE[0], "lambda_max": LAMBDA_RANGE[1]})
    jointopt.search(config, run, progress=False)
    return [r["params"]["lambda"] for r in results_of(run)]


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_optuna_samplers_give_distinct_lambdas_in_the_range(tmp_path, sampler):
    lambdas = sampled_lambdas(tmp_path, sampler, trials=3)
    assert len(lambdas) == 3 and len(set(lambdas)) == 3
    assert all(LAMBDA_RANGE[0] <= lam <= LAMBDA_RANGE[1] for lam in lambdas), lambdas


def test_spread_sampler_covers_the_range_evenly(tmp_path):
    lambdas = sampled_lambdas(tmp_path, "spread", trials=8)
    assert len(set(lambdas)) == 8 and all(LAMBDA_RANGE[0] <= lam <= LAMBDA_RANGE[1] for lam in lambdas)
    # on the log scale no stretch of the range wider than a fifth of it is left without a trial (eight random
    # draws manage that one time in twenty-five)
    lo, hi = map(math.log, LAMBDA_RANGE)
    points = sorted((math.log(lam) - lo) / (hi - lo) for lam in lambdas)
    gaps = [b - a for a, b in zip([0.0] + points, points + [1.0])]
    assert max(gaps) <= 0.2, points
