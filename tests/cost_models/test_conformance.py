"""The conformance kit: every installed cost model passes it on every zoo model; broken ones fail it."""
import math

import pytest
import torch

import jointopt
from jointopt.cost_models.lut import LutCost
from jointopt.cost import CostModel
from jointopt.testing import (check_cost_model, check_layer_costs, check_monotone_bits, check_monotone_channels,
                              randomize_selectors)

ZOO = jointopt.list_models()


@pytest.fixture(scope="module")
def searchables():
    """Every zoo model converted once (the kit deep-copies what it is given)."""
    torch.set_num_threads(1)
    nets = {}
    for name in ZOO:
        info = jointopt.zoo.model_info(name)
        torch.manual_seed(0)
        nets[name] = jointopt.convert(jointopt.create_model(name).eval(), torch.randn(2, *info.input_shape))
    return nets


def synthetic_table(searchables) -> LutCost:
    """A table measured (here: made up, monotone) at every layer shape of the networks, full and half width."""
    rows = []
    for net in searchables.values():
        for s in net.reference_stats():
            kind = ("dw" + s.kind) if s.depthwise else s.kind
            for out in {s.out_channels, max(1, s.out_channels // 2)}:
                fan_in = 1 if s.depthwise else s.in_channels // s.groups
                for w in s.weight_bits:
                    macs = out * fan_in * s.kernel_numel * s.out_numel
                    rows.append({"kind": kind, "kernel": list(s.kernel_size), "stride": list(s.stride),
                                 "out_size": list(s.out_spatial), "in_channels": out if s.depthwise else s.in_channels,
                                 "out_channels": out, "weight_bits": w, "act_bits": 8,
                                 "cycles": 50 + macs * (0.2 + 0.1 * w)})
    return LutCost.from_rows(rows, name="synthetic")


def test_the_zoo_is_there():
    assert {"resnet8", "dscnn"} <= set(ZOO)


@pytest.mark.parametrize("name", jointopt.list_cost_models())
def test_every_installed_cost_model_conforms_on_every_zoo_model(name, searchables):
    model = synthetic_table(searchables) if name == "lut" else jointopt.get_cost_model(name)
    results = check_cost_model(model, models=searchables)
    assert [r.model for r in results] == list(searchables)
    for r in results:
        assert r.reference > 0 and math.isclose(r.hard, r.frozen, rel_tol=1e-5)


def test_reference_costs_through_the_engine(searchables):
    net = searchables["resnet8"]
    assert float(net.reference_cost("macs")) == 12_501_632
    assert float(net.reference_cost("memory")) == 77_360 * 8
    assert float(net.reference_cost("mpic")) == pytest.approx(12_501_632 / 2.1, rel=1e-6)


def test_zoo_names_are_accepted():
    results = check_cost_model("macs", models=["digits_cnn"])
    assert results[0].model == "digits_cnn" and results[0].reference > 0


# -- the kit must catch broken cost models -----------------------------------------------------
class _Base(CostModel):
    name, unit, description = "broken", "MAC", "a deliberately broken model"


class Negative(_Base):
    def layer_cost(self, layer):
        return -layer.macs_at_bits().sum()


class Detached(_Base):
    def layer_cost(self, layer):
        return torch.tensor(float(layer.macs_at_bits().sum().detach()))


class CheaperWithMoreBits(_Base):
    def layer_cost(self, layer):
        bits = torch.tensor(layer.weight_bits, dtype=layer.out_at_bits.dtype)
        return (layer.macs_at_bits() / bits).sum()


class CheaperWithMoreChannels(_Base):
    def layer_cost(self, layer):
        return (layer.out_channels - layer.kept_out) * layer.fan_in + 1


class StaticInputs(_Base):
    """Uses the layer's static in_channels instead of the kept inputs: wrong once frozen."""

    def layer_cost(self, layer):
        return layer.kept_out * layer.in_channels * layer.kernel_numel


class InfiniteGradient(_Base):
    """A square root evaluated at 0 (its slope is infinite there), as in sqrt(kept - minimum)."""

    def layer_cost(self, layer):
        return layer.macs_at_bits().sum() + torch.sqrt(layer.kept_out - layer.kept_out.detach())


class Raises(_Base):
    def layer_cost(self, layer):
        if layer.kind == "linear":
            raise ValueError("no linear layers on this chip")
        return layer.macs_at_bits().sum()


class NoUnit(CostModel):
    name, description = "no_unit", "forgot the unit"

    def layer_cost(self, layer):
        return layer.macs_at_bits().sum()


@pytest.mark.parametrize("model, message", [
    (Negative(), "negative"),
    (Detached(), "carries no gradient"),
    (CheaperWithMoreBits(), "bits but only"),
    (CheaperWithMoreChannels(), "raised the cost"),
    (StaticInputs(), "the frozen layer"),
    (InfiniteGradient(), "not finite"),
    (Raises(), "ValueError: no linear layers"),
    (NoUnit(), "'unit'"),
], ids=lambda v: type(v).__name__ if isinstance(v, CostModel) else "")
def test_broken_cost_models_fail_with_a_clear_message(model, message, searchables):
    with pytest.raises(AssertionError, match=message):
        check_cost_model(model, models={"resnet8": searchables["resnet8"]})


def test_failure_names_the_network_and_layer(searchables):
    with pytest.raises(AssertionError, match=r"cost model 'broken' on resnet8: unpruned layer \S+: layer cost -\d+"):
        check_cost_model(Negative(), models={"resnet8": searchables["resnet8"]})


def test_layer_checks_on_their_own(searchables):
    net = searchables["dscnn"]
    randomize_selectors(net, seed=3)
    layers = net.layer_stats(hard=True)
    for check in (check_layer_costs, check_monotone_channels, check_monotone_bits):
        check(jointopt.get_cost_model("ne16"), layers)
        with pytest.raises(AssertionError):
            check(Negative(), layers)
