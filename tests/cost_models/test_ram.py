"""The ``ram`` cost model equals the C runtime's arena, and steers a search like any other cost model."""
import copy
import sys
from pathlib import Path

import pytest
import torch

import jointopt
from jointopt.cost_models.ram import RamCost
from jointopt.graph.freeze import frozen_layer_stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
from export_cases import mixed_frozen  # noqa: E402

BRANCHED = ["residual", "concat", "temporal"]
CHAINS = ["chain", "depthwise", "grouped", "flatten_linear", "digits_cnn"]


@pytest.fixture(scope="module")
def cases():
    before = torch.get_num_threads()  # one thread while building; the process keeps its setting
    torch.set_num_threads(1)
    try:
        out = {}
        for case in BRANCHED + CHAINS:
            net, frozen, x = mixed_frozen(case)
            from jointopt.export.integer import build_program

            out[case] = (net, frozen, x, build_program(frozen, x[:8]).arena_bytes)
    finally:
        torch.set_num_threads(before)
    return out


def test_registered_under_its_name():
    model = jointopt.get_cost_model("ram")
    assert isinstance(model, RamCost) and model.unit == "byte" and "ram" in jointopt.list_cost_models()


@pytest.mark.parametrize("case", BRANCHED + CHAINS)
def test_bound_model_equals_the_arena_soft_hard_and_frozen(case, cases):
    net, frozen, _, arena = cases[case]
    bound = RamCost.for_network(net)
    assert float(net.cost(bound, hard=True)) == arena
    assert float(RamCost.for_network(frozen).network_cost(frozen_layer_stats(frozen))) == arena


@pytest.mark.parametrize("case", ["residual", "concat", "digits_cnn"])
def test_soft_cost_reaches_the_keep_gates(case, cases):
    net = cases[case][0]
    soft = net.set_mode("soft").cost(RamCost.for_network(net))
    net.set_mode("hard")
    grads = torch.autograd.grad(soft, [g.logits for g in net.gates.values() if g.prunable], allow_unused=True)
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("case", CHAINS)
def test_registered_model_is_exact_on_chains(case, cases):
    _, frozen, _, arena = cases[case]
    assert float(jointopt.get_cost_model("ram").network_cost(frozen_layer_stats(frozen))) == arena


@pytest.mark.parametrize("case", BRANCHED)
def test_registered_model_is_a_lower_bound_with_shortcuts(case, cases):
    _, frozen, _, arena = cases[case]
    assert float(RamCost().network_cost(frozen_layer_stats(frozen))) <= arena


def test_pruning_lowers_the_ram(cases):
    net = copy.deepcopy(cases["digits_cnn"][0])
    model = RamCost.for_network(net)
    full = float(net.reference_cost(model))
    assert float(net.cost(model, hard=True)) < full
    with torch.no_grad():
        before = float(net.cost(model, hard=True))
        for gate in net.gates.values():
            gate.logits.fill_(-5.0)  # every group down to its strongest channel
        after = float(net.cost(model, hard=True))
    assert after < before


def test_bound_model_refuses_other_networks(cases):
    model = RamCost.for_network(cases["residual"][0])
    with pytest.raises(jointopt.errors.ConfigError, match="for_network"):
        model.network_cost(frozen_layer_stats(cases["chain"][1]))


def test_a_search_step_can_target_ram(cases):
    net, _, x, _ = cases["digits_cnn"]
    model = RamCost.for_network(net)
    net.train().set_mode("soft")
    loss = net(x[:8]).square().mean() + net.cost(model) / net.reference_cost(model)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.selector_parameters() if p.grad is not None)
    net.zero_grad()


@pytest.mark.parametrize("case", BRANCHED)
def test_the_registered_model_bound_to_a_network_is_exact(case, cases):
    """What the study does with every cost model of a trial: ``bind`` it to the trial's network."""
    net, frozen, _, arena = cases[case]
    registered = jointopt.get_cost_model("ram")
    bound = registered.bind(net)
    assert bound is not registered and registered.structure is None
    assert float(net.cost(bound, hard=True)) == arena
    assert float(bound.network_cost(frozen_layer_stats(frozen))) == arena
    assert bound.bind(net) is bound


def test_a_study_targets_ram_and_records_the_arena(tmp_path):
    """``cost.target: ram`` end to end on ResNet-8 (shortcuts): every trial's recorded ram is its exported arena."""
    import json

    from jointopt.export import export
    from jointopt.tune.trials import load_trial
    from tiny import tiny_config

    config = tiny_config(model={"name": "resnet8", "kwargs": {"input_shape": [1, 8, 8]}},
                         cost={"target": "ram", "report": ["memory"]}, tuner={"trials": 2})
    summary = jointopt.search(config, tmp_path / "run", progress=False)
    assert summary["front"] and all(r["costs"]["ram"] > 0 for r in summary["results"])
    trial = summary["front"][0]["trial"]
    _, frozen, result = load_trial(tmp_path / "run", trial)
    x = torch.randn(8, *result["input_shape"])
    exported = export(frozen, tmp_path / "c", x, "c")
    assert exported.verification["c"]["arena_bytes"] == result["costs"]["ram"]
    assert json.loads((tmp_path / "c" / "verify.json").read_text())["c"]["ram_cost_bytes"] == result["costs"]["ram"]
    chain = float(RamCost().network_cost(frozen_layer_stats(frozen)))  # what an unbound model would have said
    assert chain < result["costs"]["ram"]
