"""Every registered method on the quickstart's data and model, tiny budget: its trials are real.

For each method (parametrised over ``list_methods()``): a study of two trials; every trial rebuilds
from its run directory (``load_trial``: the warm-up network, ``searchable.pt``, ``frozen.pt``) into a
frozen network whose cost under every cost model is the one ``result.json`` claims, whose layers hold
the allocation it claims, and whose validation accuracy is the one it claims; then what the method
promises (uniform widths, one width per layer, the keep ratio, the cost budget, ...).
"""
import json

import pytest
import torch

import jointopt
from jointopt.graph import frozen_cost, frozen_layer_stats
from jointopt.methods import get_method, list_methods
from jointopt.nn.frozen import FrozenLayer
from jointopt.train import evaluate
from jointopt.tune import load_trial
from jointopt.tune.setup import load_dataset
from tiny import tiny_config

TRIALS = {"tuner": {"trials": 2, "baselines": [8]}}
_RUNS = {}


def study(tmp_path_factory, method: str, **sections):
    """Run (once per module) a two-trial study of ``method``; return (config, run directory, summary)."""
    key = (method, json.dumps(sections, sort_keys=True))
    if key not in _RUNS:
        config = tiny_config(method=method, **{**TRIALS, **sections})
        run = tmp_path_factory.mktemp(method) / "run"
        _RUNS[key] = (config, run, jointopt.search(config, run, progress=False))
    return _RUNS[key]


def check_trials_are_real(config, run, summary):
    data = load_dataset(config)
    assert len(summary.results) == 2
    for result in summary.results:
        _, frozen, saved = load_trial(run, result["trial"])
        assert saved.method == config.method and saved == result  # result.json holds what the study returned
        for name, claimed in result["costs"].items():
            assert float(frozen_cost(frozen, name)) == pytest.approx(claimed, rel=1e-6), name
        layers = {s.name: s for s in frozen_layer_stats(frozen)}
        for row in result["allocation"]:
            stats = layers[row["layer"]]
            assert stats.out_channels == row["kept"]
            counts = {int(b): int(n) for b, n in zip(stats.weight_bits, stats.out_at_bits.tolist()) if n}
            assert counts == {int(b): n for b, n in row["bits"].items()}
        val_acc, _ = evaluate(frozen, data, "val", config.data.eval_batch_size, "cpu")
        assert val_acc == pytest.approx(result["val_acc"])
    return data


def frozen_layers(run, trial):
    _, frozen, result = load_trial(run, trial)
    return {n: m for n, m in frozen.named_modules() if isinstance(m, FrozenLayer)}, result


@pytest.mark.parametrize("method", list_methods())
def test_every_method_writes_real_trials(tmp_path_factory, method):
    config, run, summary = study(tmp_path_factory, method)
    check_trials_are_real(config, run, summary)
    assert (run / "front.json").exists() and (run / "pareto.csv").exists()
    assert get_method(method).summary


def test_uniform_sweeps_the_widths_unpruned(tmp_path_factory):
    _, run, summary = study(tmp_path_factory, "uniform")
    assert [r["params"]["bits"] for r in summary["results"]] == [8, 4]
    for r in summary["results"]:
        layers, _ = frozen_layers(run, r["trial"])
        assert r["kept_fraction"] == 1.0
        assert all(set(m.bits.tolist()) == {r["params"]["bits"]} for m in layers.values())


def test_layerwise_keeps_every_channel_and_one_width_per_layer(tmp_path_factory):
    # λ large enough that the per-layer selectors move at this budget
    _, run, summary = study(tmp_path_factory, "layerwise", search={"epochs": 3, "max_steps": 6, "selector_lr": 1.0})
    widths = set()
    for r in summary["results"]:
        layers, _ = frozen_layers(run, r["trial"])
        assert r["kept_fraction"] == 1.0
        for m in layers.values():
            assert len(set(m.bits.tolist())) == 1  # per layer, not per channel
            widths |= set(m.bits.tolist())
    assert widths != {8}, "the search never left the widest width"


def test_sequential_searches_twice_and_cannot_prune_in_its_second_search(tmp_path_factory):
    config, run, summary = study(tmp_path_factory, "sequential")
    for r in summary["results"]:
        assert set(r["params"]) == {"lambda_prune", "lambda_bits"}
        rows = [json.loads(line) for line in (run / "trials" / str(r["trial"]) / "metrics.jsonl").read_text().splitlines()]
        assert sum(row["phase"] == "search" for row in rows) == 2 * config.search.epochs
        assert r["kept_fraction"] == pytest.approx(
            (r["search"]["kept_after_prune_search"] * 80 + 10) / 90)  # digits_cnn: 80 prunable channels + fc's 10
    lams = [(r["params"]["lambda_prune"], r["params"]["lambda_bits"]) for r in summary["results"]]
    assert len({a for a, _ in lams}) == 2 and len({b for _, b in lams}) == 2  # both strengths are spread


@pytest.mark.parametrize("method", ["magnitude", "random", "iterative"])
def test_structured_pruning_keeps_the_share_it_claims(tmp_path_factory, method):
    _, run, summary = study(tmp_path_factory, method)
    for r in summary["results"]:
        layers, _ = frozen_layers(run, r["trial"])
        keep, bits = r["params"]["keep"], r["params"]["bits"]
        assert keep < 1
        totals = {row["layer"]: row["total"] for row in r["allocation"]}
        for name, m in layers.items():
            assert set(m.bits.tolist()) == {bits}
            if name != "fc":  # the classifier's outputs cannot be pruned
                assert m.geometry.out_channels == max(1, round(keep * totals[name])) < totals[name]


def test_magnitude_prunes_the_smallest_filters(tmp_path_factory):
    config, run, summary = study(tmp_path_factory, "magnitude")
    net, _, result = load_trial(run, summary["results"][0]["trial"])
    warm = jointopt.methods.l1_scores(net)  # the searchable weights are the warm-up's (only the frozen copy trains)
    for gid, gate in net.gates.items():
        if gate.prunable:
            kept = gate.hard_mask()
            assert warm[gid][kept].min() >= warm[gid][~kept].max()


def test_unstructured_magnitude_is_reported_as_dense(tmp_path_factory):
    config, run, summary = study(tmp_path_factory, "magnitude", methods={"magnitude": {"structure": "weights"}})
    check_trials_are_real(config, run, summary)
    for r in summary["results"]:
        layers, _ = frozen_layers(run, r["trial"])
        zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
        assert zeros >= r["search"]["zero_weights"] > 0  # held at zero through the fine-tune
        assert r["kept_fraction"] == 1.0
        assert r["costs"]["memory"] == 14288 * r["params"]["bits"]  # dense: every weight of digits_cnn counted
        assert "dense" in r["search"]["storage"]


def test_sensitivity_meets_its_budget(tmp_path_factory):
    _, run, summary = study(tmp_path_factory, "sensitivity")
    assert (run / "sensitivity.json").exists()
    cached = [r["search"]["sensitivity_cached"] for r in sorted(summary["results"], key=lambda r: r["trial"])]
    assert cached == [False, True]
    for r in summary["results"]:
        assert r["costs"]["memory"] <= r["params"]["budget"] * r["search"]["reference_cost"] + 1e-6
        assert r["costs"]["memory"] == r["search"]["cost"]


@pytest.mark.parametrize("saliency", ["snip", "grasp", "synflow"])
def test_pai_prunes_at_initialisation_before_training(tmp_path_factory, saliency):
    config, run, summary = study(tmp_path_factory, "pai", methods={"pai": {"saliency": saliency}})
    if saliency != "snip":
        check_trials_are_real(config, run, summary)
    for r in summary["results"]:
        info = r["search"]
        assert info["saliency"] == saliency and info["pruned_outputs_zero"]
        assert info["prune_s"] < 30 and r["kept_fraction"] < 1
        rows = [json.loads(line) for line in (run / "trials" / str(r["trial"]) / "metrics.jsonl").read_text().splitlines()]
        assert sum(row["phase"] == "warmup" for row in rows) == config.warmup.epochs  # trained once, from scratch


def test_the_readme_method_is_one_class_and_one_registration(tmp_path_factory, monkeypatch):
    """The README's "Add a method" example, as written, registered and run: its trials are real."""
    import re
    from pathlib import Path

    from jointopt.methods import _registry, register_method

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", readme[readme.index("### Add a method"):], re.S)[0]
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    monkeypatch.setattr(_registry, "_INSTANCES", {})
    register_method(scope["Half"])
    try:
        assert "half" in list_methods()
        config, run, summary = study(tmp_path_factory, "half")
        assert config.methods["half"] == {"keep": [0.3, 1.0]}
        check_trials_are_real(config, run, summary)
        for r in summary["results"]:
            assert set(map(int, r["bits_histogram"])) == {4} and r["kept_fraction"] < 1
            assert r["search"] == {"note": "what result.json → search records"}
    finally:
        _registry._REGISTRY._entries.pop("half", None)


def test_unknown_method_and_bad_knobs_fail_before_training(tmp_path):
    from jointopt.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'magnitude'"):
        tiny_config(method="magnitud")
    with pytest.raises(ConfigError, match="methods.magnitude.scop"):
        tiny_config(method="magnitude", methods={"magnitude": {"scop": "global"}})
    with pytest.raises(ConfigError, match="space.weight_bits"):
        tiny_config(method="uniform", methods={"uniform": {"bits": [3]}})
    with pytest.raises(ConfigError, match="has none"):
        jointopt.search(tiny_config(method="magnitude"), tmp_path / "run", fixed_lambda=1.0, progress=False)
    assert not (tmp_path / "run").exists()
    assert tiny_config(method="pai").methods["pai"]["saliency"] == "snip"  # the resolved config shows every knob
