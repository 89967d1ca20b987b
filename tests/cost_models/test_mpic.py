"""mpic: MAC/cycle table by (activation bits, weight bits)."""
import math

import pytest
import torch

from cost_fixtures import RESNET8_MACS, resnet8_stats, total
from jointopt.cost_models.mpic import MPIC_MACS_PER_CYCLE, MpicCost
from jointopt.errors import ConfigError


def test_resnet8_w8a8_is_about_5_95_m_cycles():
    cycles = total(MpicCost(), resnet8_stats(8, 8))
    assert math.isclose(cycles, RESNET8_MACS / 2.1, rel_tol=1e-6)
    assert 5.90e6 < cycles < 6.00e6
    assert MpicCost().format(cycles) == "5.953 M cycles"


# REFERENCE.md §3 (Ottavi et al. 2020): MACs per cycle by (activation bits, weight bits), written out
# here rather than read back from the module
PUBLISHED_MACS_PER_CYCLE = {
    (2, 2): 6.5, (2, 4): 4.0, (2, 8): 2.2,
    (4, 2): 3.9, (4, 4): 3.5, (4, 8): 2.1,
    (8, 2): 2.5, (8, 4): 2.3, (8, 8): 2.1,
}


def test_the_table_has_every_published_pair():
    assert set(MPIC_MACS_PER_CYCLE) == set(PUBLISHED_MACS_PER_CYCLE)


@pytest.mark.parametrize("act,weight", sorted(PUBLISHED_MACS_PER_CYCLE))
def test_uniform_network_scales_by_the_table(act, weight):
    cycles = total(MpicCost(), resnet8_stats(weight, act))
    assert math.isclose(cycles, RESNET8_MACS / PUBLISHED_MACS_PER_CYCLE[(act, weight)], rel_tol=1e-6)


def test_published_values():
    # REFERENCE.md §3, written out rather than read back from the module
    assert MpicCost().throughput(2, 2) == 6.5 and MpicCost().throughput(2, 8) == 2.2
    assert MpicCost().throughput(4, 4) == 3.5 and MpicCost().throughput(8, 4) == 2.3


def test_mixed_layer_sums_weight_groups_and_expects_over_act_bits(stats):
    layer = stats(cin=16, cout=32, out=(8, 8), weight_bits=(2, 4, 8), counts=[8, 8, 16],
                  act_bits=(4, 8), act_probs=[0.5, 0.5])
    per_channel = 16 * 9 * 64
    a4 = per_channel * (8 / 3.9 + 8 / 3.5 + 16 / 2.1)
    a8 = per_channel * (8 / 2.5 + 8 / 2.3 + 16 / 2.1)
    assert math.isclose(float(MpicCost().layer_cost(layer)), 0.5 * a4 + 0.5 * a8, rel_tol=1e-6)


def test_widths_not_in_table_use_next_larger(stats):
    three = stats(weight_bits=(3,), counts=[32], act_bits=(6,))
    four_eight = stats(weight_bits=(4,), counts=[32], act_bits=(8,))
    assert float(MpicCost().layer_cost(three)) == pytest.approx(float(MpicCost().layer_cost(four_eight)))
    one = stats(weight_bits=(1,), counts=[32], act_bits=(1,))
    two = stats(weight_bits=(2,), counts=[32], act_bits=(2,))
    assert float(MpicCost().layer_cost(one)) == pytest.approx(float(MpicCost().layer_cost(two)))


def test_wider_than_table_is_a_clear_error(stats):
    with pytest.raises(ConfigError, match="16-bit activations"):
        MpicCost().layer_cost(stats(act_bits=(16,)))
    with pytest.raises(ConfigError, match="16-bit weights"):
        MpicCost().layer_cost(stats(weight_bits=(16,), counts=[4]))
    # a width nobody uses (probability exactly 0 in a frozen layer) is skipped
    frozen_like = stats(weight_bits=(8, 16), counts=[32, 0], act_bits=(8, 16), act_probs=[1.0, 0.0])
    assert float(MpicCost().layer_cost(frozen_like)) == pytest.approx(32 * 16 * 9 * 64 / 2.1)


def test_custom_table_and_validation(stats):
    cost = MpicCost({(8, 8): 1.0, (8, 4): 2.0})
    assert float(cost.layer_cost(stats(weight_bits=(4,), counts=[32]))) == 32 * 16 * 9 * 64 / 2.0
    with pytest.raises(ConfigError, match="full grid"):
        MpicCost({(8, 8): 1.0, (4, 4): 2.0})
    with pytest.raises(ConfigError, match="> 0"):
        MpicCost({(8, 8): 0.0})


def test_more_bits_never_cheaper():
    rates = MPIC_MACS_PER_CYCLE
    for (a, w), rate in rates.items():
        for (a2, w2), rate2 in rates.items():
            if a2 >= a and w2 >= w:
                assert rate2 <= rate, ((a, w), (a2, w2))


def test_gradient_prefers_narrow_weights(stats):
    layer = stats(counts=[10.0, 10.0, 10.0], requires_grad=True)
    (grad,) = torch.autograd.grad(MpicCost().layer_cost(layer), [layer.out_at_bits])
    assert grad[0] < grad[1] < grad[2]
