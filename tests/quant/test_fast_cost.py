"""The vectorised soft cost of the built-in models equals the per-layer ``network_cost(layer_stats())``.

``SearchableNetwork.cost`` takes a fast path for ``memory``, ``memory_total``, ``bitops`` and
``macs`` on the soft allocation; plug-ins and hard costs always go through ``LayerStats``. Here
both paths are evaluated on every test topology and the zoo models, at random selector logits and
temperatures, and compared in value and in gradient.
"""
import pytest
import torch

import jointopt
import jointopt.graph.network as network
from nets import TOPOLOGIES

FAST = ["memory", "memory_total", "bitops", "macs"]


def _randomise(net, seed, temperature):
    g = torch.Generator().manual_seed(seed)
    for gate in net.gates.values():
        gate.logits.data = torch.randn(gate.logits.shape, generator=g) * 2
    for _, layer in net.searchable_layers():
        layer.bit_logits.data = torch.randn(layer.bit_logits.shape, generator=g)
        layer.act_logits.data = torch.randn(layer.act_logits.shape, generator=g)
    net.temperature = temperature


def _both_paths(net, model):
    out = []
    for fast in (False, True):
        network.FAST_COST = fast
        try:
            for p in net.parameters():
                p.grad = None
            cost = net.cost(model)
            cost.backward()
            grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        finally:
            network.FAST_COST = True
        out.append((cost.detach(), grads))
    return out


def _assert_same(slow, fast):
    (value, grads), (value_fast, grads_fast) = slow, fast
    assert torch.allclose(value_fast, value, rtol=1e-6, atol=0), (float(value_fast), float(value))
    scale = max((g.abs().max() for g in grads.values()), default=torch.tensor(1.0))
    for name in set(grads) | set(grads_fast):
        a = grads.get(name, torch.zeros_like(grads_fast.get(name, torch.zeros(()))))
        b = grads_fast.get(name, torch.zeros_like(a))
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6 * float(scale)), name


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("model", FAST)
@pytest.mark.parametrize("act_bits", [(8,), (2, 4, 8)])
def test_fast_cost_equals_layer_stats_on_topologies(topology, model, act_bits):
    cls, shape = TOPOLOGIES[topology]
    torch.manual_seed(0)
    net = jointopt.convert(cls().eval(), torch.randn(*shape), jointopt.SearchSpace(act_bits=act_bits))
    _randomise(net, seed=len(topology), temperature=0.6)
    _assert_same(*_both_paths(net, model))


@pytest.mark.parametrize("name", ["resnet8", "dscnn", "mobilenetv1_025"])
def test_fast_cost_equals_layer_stats_on_zoo_models(name):
    from jointopt.zoo import model_info

    torch.manual_seed(0)
    net = jointopt.convert(jointopt.create_model(name).eval(), torch.randn(2, *model_info(name).input_shape),
                           jointopt.SearchSpace(act_bits=(2, 4, 8)))
    for temperature in (1.0, 0.2):
        _randomise(net, seed=3, temperature=temperature)
        for model in FAST:
            _assert_same(*_both_paths(net, jointopt.get_cost_model(model)))


def test_fast_cost_follows_pruning_exactly_at_saturated_gates():
    """With saturated selectors the soft cost is the hard count; both paths must give it."""
    cls, shape = TOPOLOGIES["residual"]
    torch.manual_seed(0)
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    for gate in net.gates.values():
        gate.logits.data.fill_(60.0)
        gate.logits.data[: gate.size // 2] = -60.0
    for _, layer in net.searchable_layers():
        layer.bit_logits.data.fill_(-60.0)
        layer.bit_logits.data[:, 1] = 60.0
    for model in FAST:
        soft = float(net.cost(model).detach())
        hard = float(net.cost(model, hard=True))
        assert soft == pytest.approx(hard, rel=1e-6), model


def test_other_models_and_hard_costs_use_layer_stats(monkeypatch):
    cls, shape = TOPOLOGIES["chain"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    calls = []
    original = type(net).layer_stats

    def spy(self, hard=False):
        calls.append(hard)
        return original(self, hard)

    monkeypatch.setattr(type(net), "layer_stats", spy)
    net.cost("memory")
    assert calls == []  # the built-in soft cost took the vectorised path
    net.cost("memory", hard=True)
    net.cost("mpic")

    class Subclassed(type(jointopt.get_cost_model("memory"))):
        pass  # a subclass may override anything: it is costed layer by layer

    net.cost(Subclassed())
    assert calls == [True, False, False]


def test_plan_is_rebuilt_when_parameters_move():
    cls, shape = TOPOLOGIES["concat"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    first = float(net.cost("bitops").detach())
    net.double()
    assert float(net.cost("bitops").detach()) == pytest.approx(first, rel=1e-6)
