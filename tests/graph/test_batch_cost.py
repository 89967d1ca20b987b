"""The vectorised cost hook (``CostModel.batch_cost``) against the per-layer form.

Built-in and plug-in models go through the same public path: ``SearchableNetwork.cost`` uses a
model's ``batch_cost`` for the soft cost when the model has one, and the conformance kit checks it
against ``network_cost(layer_stats())`` in value and gradient. These tests run that check on every
test topology and on zoo models, show that the kit catches a wrong vectorised form, and that a
plug-in's hook is used exactly like a built-in's.
"""
import pytest
import torch

import jointopt
from jointopt.cost import CostModel, LayerBatch
from jointopt.testing import check_batch_cost, check_cost_model
from nets import TOPOLOGIES

VECTORISED = ["memory", "memory_total", "bitops", "macs"]


def _randomise(net, seed, temperature):
    g = torch.Generator().manual_seed(seed)
    for gate in net.gates.values():
        gate.logits.data = torch.randn(gate.logits.shape, generator=g) * 2
    for _, layer in net.searchable_layers():
        layer.bit_logits.data = torch.randn(layer.bit_logits.shape, generator=g)
        layer.act_logits.data = torch.randn(layer.act_logits.shape, generator=g)
    net.temperature = temperature


class Macs(CostModel):
    """A plug-in with a vectorised form, written as a user would."""

    name, unit, description = "plugin_macs", "MAC", "MACs, with a vectorised form"

    def layer_cost(self, layer):
        return layer.macs_at_bits().sum()

    def batch_cost(self, batch: LayerBatch):
        per_output = batch.constant(("plugin_macs",), lambda t: t.kernel_numel * t.out_numel)
        return (batch.kept_out * batch.fan_in * per_output).sum()


class WrongMacs(Macs):
    def batch_cost(self, batch):
        return (batch.kept_out * batch.in_channels * batch.kernel_numel * batch.out_numel).sum()  # static inputs


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("act_bits", [(8,), (2, 4, 8)])
def test_vectorised_cost_equals_layer_stats_on_topologies(topology, act_bits):
    cls, shape = TOPOLOGIES[topology]
    torch.manual_seed(0)
    net = jointopt.convert(cls().eval(), torch.randn(*shape), jointopt.SearchSpace(act_bits=act_bits))
    _randomise(net, seed=len(topology), temperature=0.6)
    for name in VECTORISED:
        assert check_batch_cost(jointopt.get_cost_model(name), net, f"{name} on {topology}: ")


@pytest.mark.parametrize("name", ["resnet8", "dscnn", "mobilenetv1_025"])
def test_vectorised_cost_equals_layer_stats_on_zoo_models(name):
    from jointopt.zoo import model_info

    torch.manual_seed(0)
    net = jointopt.convert(jointopt.create_model(name).eval(), torch.randn(2, *model_info(name).input_shape),
                           jointopt.SearchSpace(act_bits=(2, 4, 8)))
    _randomise(net, seed=3, temperature=1.0)
    for model in VECTORISED:
        assert check_batch_cost(jointopt.get_cost_model(model), net, temperatures=(1.0, 0.2))


def test_the_kit_catches_a_wrong_vectorised_form():
    cls, shape = TOPOLOGIES["residual"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    _randomise(net, seed=1, temperature=1.0)
    assert check_batch_cost(Macs(), net)
    with pytest.raises(AssertionError, match="batch_cost gives .* but the sum of layer_cost gives"):
        check_batch_cost(WrongMacs(), net)
    with pytest.raises(AssertionError, match="batch_cost"):
        check_cost_model(WrongMacs(), models=["resnet8"])  # the full kit runs the check too


def test_vectorised_cost_follows_pruning_exactly_at_saturated_gates():
    """With saturated selectors the soft cost is the hard count."""
    cls, shape = TOPOLOGIES["residual"]
    torch.manual_seed(0)
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    for gate in net.gates.values():
        gate.logits.data.fill_(60.0)
        gate.logits.data[: gate.size // 2] = -60.0
    for _, layer in net.searchable_layers():
        layer.bit_logits.data.fill_(-60.0)
        layer.bit_logits.data[:, 1] = 60.0
    for model in VECTORISED:
        soft = float(net.cost(model).detach())
        hard = float(net.cost(model, hard=True))
        assert soft == pytest.approx(hard, rel=1e-6), model


def test_the_hook_is_used_for_builtins_and_plugins_alike(monkeypatch):
    cls, shape = TOPOLOGIES["chain"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    calls = []
    original = type(net).layer_stats

    def spy(self, hard=False):
        calls.append(hard)
        return original(self, hard)

    monkeypatch.setattr(type(net), "layer_stats", spy)
    batches = []
    original_batch_cost = Macs.batch_cost
    monkeypatch.setattr(Macs, "batch_cost", lambda self, batch: batches.append(batch) or original_batch_cost(self, batch))
    net.cost("memory")
    net.cost(Macs())
    assert calls == [] and len(batches) == 1  # both soft costs took the vectorised path
    assert batches[0].names == tuple(name for name, _ in net.searchable_layers())
    net.cost("memory", hard=True)  # hard costs are counted layer by layer
    net.cost("mpic")  # no vectorised form

    class Subclassed(type(jointopt.get_cost_model("memory"))):
        def layer_cost(self, layer):  # changes the per-layer cost, not the vectorised one
            return 2 * super().layer_cost(layer)

    value = net.cost(Subclassed())
    assert calls == [True, False, False]
    assert float(value.detach()) == pytest.approx(2 * float(net.cost("memory").detach()))


def test_constants_are_computed_once_per_network():
    cls, shape = TOPOLOGIES["chain"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    computed = []
    for _ in range(3):
        net.layer_batch().constant("k", lambda table: computed.append(1) or table.kernel_numel * 2)
    assert computed == [1]


def test_plan_is_rebuilt_when_parameters_move():
    cls, shape = TOPOLOGIES["concat"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    first = float(net.cost("bitops").detach())
    net.double()
    assert net.layer_batch().out_at_bits.dtype == torch.float64
    assert float(net.cost("bitops").detach()) == pytest.approx(first, rel=1e-6)
