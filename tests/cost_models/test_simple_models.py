"""memory, memory_total, bitops, macs on hand-built layer statistics."""
import math

import pytest
import torch

from cost_fixtures import RESNET8_MACS, resnet8_stats, total
from jointopt.cost_models.bitops import BitOpsCost
from jointopt.cost_models.macs import MacsCost
from jointopt.cost_models.memory import MemoryCost, MemoryTotalCost
from jointopt.errors import ConfigError


def test_resnet8_reference_sizes_match_mlperf_tiny():
    layers = resnet8_stats(8, 8)
    assert RESNET8_MACS == 12_501_632
    assert total(MacsCost(), layers) == RESNET8_MACS
    # 77,360 weights at 8 bits = 77.36 kB (REFERENCE.md §1 and §2)
    assert total(MemoryCost(), layers) == 77_360 * 8
    assert MemoryCost().format(total(MemoryCost(), layers)) == "77.36 kB"
    assert MemoryCost().format(11_260_000 * 8) == "11.26 MB"


def test_memory_counts_each_width(stats):
    layer = stats(cin=16, cout=32, kernel=(3, 3), weight_bits=(2, 4, 8), counts=[10, 12, 6], kept_in=12)
    # weights per output channel = 12 kept inputs x 9 taps
    assert float(MemoryCost().layer_cost(layer)) == 12 * 9 * (10 * 2 + 12 * 4 + 6 * 8)


def test_memory_overhead_is_separate_and_selectable(stats):
    layer = stats(cin=8, cout=20, kernel=(1, 1), weight_bits=(4, 8), counts=[5, 10])
    weights = 8 * (5 * 4 + 10 * 8)
    assert float(MemoryCost().layer_cost(layer)) == weights
    parts = MemoryCost().breakdown([layer])
    assert parts == {"weights": weights, "bias": 15 * 32, "scale": 15 * 32, "total": weights + 15 * 64}
    assert float(MemoryTotalCost().layer_cost(layer)) == weights + 15 * 64
    assert float(MemoryCost(include_overhead=True, bias_bits=16, scale_bits=8).layer_cost(layer)) == weights + 15 * 24
    assert MemoryTotalCost.name == "memory_total" and MemoryCost.name == "memory"
    with pytest.raises(ConfigError):
        MemoryCost(bias_bits=-1)


def test_bitops_is_macs_times_both_widths(stats):
    layer = stats(cin=4, cout=6, kernel=(3, 3), out=(5, 5), weight_bits=(2, 8), counts=[2, 4],
                  act_bits=(4, 8), act_probs=[0.25, 0.75])
    macs_per_channel = 4 * 9 * 25
    expected = macs_per_channel * (2 * 2 + 4 * 8) * (0.25 * 4 + 0.75 * 8)
    assert math.isclose(float(BitOpsCost().layer_cost(layer)), expected, rel_tol=1e-6)


def test_macs_linear_in_kept_outputs_and_inputs(stats):
    cost = MacsCost()
    base = float(cost.layer_cost(stats(cin=16, cout=32, counts=[0, 0, 20], kept_in=10, out=(4, 4))))
    assert base == 20 * 10 * 9 * 16
    more_out = float(cost.layer_cost(stats(cin=16, cout=32, counts=[0, 0, 21], kept_in=10, out=(4, 4))))
    more_in = float(cost.layer_cost(stats(cin=16, cout=32, counts=[0, 0, 20], kept_in=11, out=(4, 4))))
    assert more_out - base == 10 * 9 * 16
    assert more_in - base == 20 * 9 * 16
    # widths do not matter
    assert float(cost.layer_cost(stats(cin=16, cout=32, counts=[20, 0, 0], kept_in=10, out=(4, 4)))) == base


def test_depthwise_and_grouped_fan_in(stats):
    dw = stats(cin=32, cout=32, groups=32, counts=[0, 0, 32], out=(4, 4))
    assert float(MacsCost().layer_cost(dw)) == 32 * 1 * 9 * 16
    grouped = stats(cin=32, cout=32, groups=4, counts=[0, 0, 32], out=(4, 4))
    assert float(MacsCost().layer_cost(grouped)) == 32 * 8 * 9 * 16


@pytest.mark.parametrize("model", [MemoryCost(), MemoryTotalCost(), BitOpsCost(), MacsCost()], ids=repr)
def test_gradients_reach_both_allocation_terms(stats, model):
    layer = stats(cin=16, cout=32, counts=[3.5, 4.25, 10.0], kept_in=12.5, requires_grad=True)
    out_grad, in_grad = torch.autograd.grad(model.layer_cost(layer), [layer.out_at_bits, layer.kept_in])
    assert torch.all(out_grad > 0) and float(in_grad) > 0


def test_a_soft_cost_makes_no_tensor_from_host_data_once_warm():
    """The cost is computed at every search step: its constants (candidate widths, activation widths)
    are made once per device, not from a Python list per layer and step (on a GPU each such tensor is
    a host-to-device copy that waits for the stream)."""
    import torch
    from torch.overrides import TorchFunctionMode

    import jointopt

    made = []

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in ("tensor", "as_tensor") and args and \
                    not isinstance(args[0], torch.Tensor):
                made.append((func.__name__, args[0]))
            return func(*args, **(kwargs or {}))

    net = jointopt.convert(jointopt.create_model("digits_cnn").eval(), torch.randn(2, 1, 8, 8),
                           jointopt.SearchSpace(weight_bits=(0, 2, 4, 8), act_bits=(4, 8)))
    models = [jointopt.get_cost_model(name) for name in ("memory", "bitops", "mpic")]
    for model in models:  # warm: the constants are made
        model.network_cost(net.layer_stats())
    with Watch():
        for model in models:
            model.network_cost(net.layer_stats())
    assert made == []
