"""The cost is an expectation that credits pruning in every consumer, linearly."""
import pytest
import torch

import jointopt
from nets import TOPOLOGIES


def make(name="chain", **space):
    cls, shape = TOPOLOGIES[name]
    torch.manual_seed(0)
    return jointopt.convert(cls().eval(), torch.randn(*shape), jointopt.SearchSpace(**space))


def test_memory_gradient_reaches_producer_gate_through_consumer():
    net = make()
    layers = dict(net.searchable_layers())
    producer = layers["body.0.0"]
    consumer_stats = [s for s in net.layer_stats() if s.name == "body.1.0"][0]
    cost = jointopt.get_cost_model("memory").layer_cost(consumer_stats)
    cost.backward()
    gate = net.gates[producer.out_group]
    # the consumer's cost alone moves the producer's keep logits: kept_in is not detached
    assert gate.logits.grad is not None and bool((gate.logits.grad > 0).all())


def test_cost_is_linear_in_kept_channels():
    net = make()
    gate = net.gates[dict(net.searchable_layers())["body.1.0"].out_group]
    values = []
    for k in range(gate.size + 1):
        gate.logits.data.fill_(-30.0)
        gate.logits.data[:k] = 30.0
        values.append(net.cost("memory").item())
    diffs = [b - a for a, b in zip(values, values[1:])]
    assert max(diffs) == pytest.approx(min(diffs), rel=1e-4) and diffs[0] > 0


def test_hard_cost_counts_kept_weights_exactly():
    net = make()
    layers = dict(net.searchable_layers())
    gate = net.gates[layers["body.0.0"].out_group]
    gate.logits.data.fill_(5.0)
    gate.logits.data[:3] = -5.0  # prune 3 of 8 channels of body.0.0
    for layer in layers.values():
        layer.bit_logits.data.zero_()
        layer.bit_logits.data[:, 1] = 1.0  # 4 bits everywhere
    stats = {s.name: s for s in net.layer_stats(hard=True)}
    assert stats["body.0.0"].out_at_bits.tolist() == [0.0, 5.0, 0.0]
    assert stats["body.1.0"].kept_in.item() == 5.0
    # body.0.0: 5 channels x 3 inputs x 9 taps; body.1.0: 12 x 5 x 9 (others unpruned)
    mem = net.cost("memory", hard=True).item()
    expected = 4 * (5 * 3 * 9 + 12 * 5 * 9 + 16 * 12 * 9 + 5 * 16)
    assert mem == expected


def test_reference_cost_is_unpruned_at_the_largest_width():
    net = make()
    ref = net.reference_cost("memory").item()
    weights = sum(l.weight.numel() for _, l in net.searchable_layers())
    assert ref == 8 * weights


def test_depthwise_cost_is_not_quadratic_in_its_group():
    net = make("depthwise")
    dw = [s for s in net.layer_stats(hard=True) if s.name == "dw.0"][0]
    assert dw.fan_in.item() == 1.0
    layers = dict(net.searchable_layers())
    gate = net.gates[layers["dw.0"].out_group]
    gate.logits.data[:4] = -5.0
    dw = [s for s in net.layer_stats(hard=True) if s.name == "dw.0"][0]
    assert jointopt.get_cost_model("memory").layer_cost(dw).item() == 4 * 9 * 8
