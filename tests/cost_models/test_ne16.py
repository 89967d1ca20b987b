"""ne16: tile counts and cycles computed by hand for several layer shapes.

Step costs (module docstring of cost_models/ne16.py): load 3×3 = 6 + 5·5·ceil(16·8/256) = 31,
load 1×1 = 10 + 3·3·1 = 19, weight offset 6 (depthwise 6 + k), matrix-vector 3×3 6 + k·b,
1×1 6 + k, update 2, normquant 9 + k, stream out 4 + 3·3·ceil(32·8/256) = 13.
"""
import math

import pytest
import torch

from jointopt.cost_models.ne16 import Ne16Cost
from jointopt.errors import ConfigError


def cycles(layer, **kwargs) -> float:
    return float(Ne16Cost(**kwargs).layer_cost(layer))


def test_3x3_single_tile_depth(stats):
    # 16 → 32, 32×32 output, 8-bit: ceil(32/3)² = 121 spatial tiles, 1 input tile, 1 output tile (k = 32)
    layer = stats(cin=16, cout=32, kernel=(3, 3), out=(32, 32), weight_bits=(8,), counts=[32])
    per_tile = (31 + 6 + (6 + 32 * 8) + 2) + (9 + 32) + 13
    assert per_tile == 355
    assert cycles(layer) == 121 * 355 == 42_955


def test_1x1_strided_mixed_widths_run_as_separate_jobs(stats):
    # 32 → 64 1×1 stride 2, 8×8 output: 9 spatial tiles, 2 input tiles; 40 channels at 4 bit, 24 at 8 bit
    layer = stats(cin=32, cout=64, kernel=(1, 1), stride=(2, 2), out=(8, 8), weight_bits=(4, 8), counts=[40, 24])
    w4 = 9 * ((2 * (19 + 6 + (6 + 32) + 2) + (9 + 32) + 13) + (2 * (19 + 6 + (6 + 8) + 2) + (9 + 8) + 13))
    w8 = 9 * (2 * (19 + 6 + (6 + 24) + 2) + (9 + 24) + 13)
    assert (w4, w8) == (2664, 1440)
    assert cycles(layer) == 4104
    # in 1×1 mode the bits of a weight run in parallel: all 64 channels at 8 bit is one job of 2 full tiles
    uniform = stats(cin=32, cout=64, kernel=(1, 1), stride=(2, 2), out=(8, 8), weight_bits=(4, 8), counts=[0, 64])
    assert cycles(uniform) == 9 * 2 * 184 == 3312


def test_depthwise_3x3(stats):
    # 64 channels, 25×5 output: 9·2 = 18 spatial tiles, 4 tiles of 16 channels
    layer = stats(cin=64, cout=64, kernel=(3, 3), groups=64, out=(25, 5), weight_bits=(8,), counts=[64])
    per_tile = 31 + (6 + 16) + (6 + 16 * 8) + 2 + (9 + 16) + 13
    assert per_tile == 227
    assert cycles(layer) == 18 * 4 * 227 == 16_344


def test_5x5_kernel_uses_padded_3x3_pieces_when_cheaper(stats):
    # 8 → 16, 6×6 output, 2-bit: 4 spatial tiles, k = 16
    layer = stats(cin=8, cout=16, kernel=(5, 5), out=(6, 6), weight_bits=(2,), counts=[16])
    piece_3x3 = 4 * ((31 + 6 + (6 + 16 * 2) + 2) + (9 + 16) + 13)
    piece_1x1 = 4 * ((19 + 6 + (6 + 16) + 2) + (9 + 16) + 13)
    padded, split = 4 * piece_3x3, 1 * piece_3x3 + 16 * piece_1x1
    assert (padded, split) == (1840, 6028)
    assert cycles(layer) == min(padded, split)


def test_10x4_kernel_splits_into_3x3_and_1x1_pieces(stats):
    # DS-CNN's first conv: 1 → 64, 10×4 stride 2, 25×5 output: 18 spatial tiles, 2 output tiles of 32
    layer = stats(cin=1, cout=64, kernel=(10, 4), stride=(2, 2), out=(25, 5), weight_bits=(8,), counts=[64])
    piece_3x3 = 18 * 2 * ((31 + 6 + (6 + 32 * 8) + 2) + (9 + 32) + 13)
    piece_1x1 = 18 * 2 * ((19 + 6 + (6 + 32) + 2) + (9 + 32) + 13)
    padded = 4 * 2 * piece_3x3  # ceil(10/3)·ceil(4/3) = 8 pieces
    split = 3 * piece_3x3 + (40 - 27) * piece_1x1
    assert (padded, split) == (102_240, 94_032)
    assert cycles(layer) == split


def test_linear_is_a_1x1_job_on_one_pixel(stats):
    layer = stats("linear", cin=64, cout=10, weight_bits=(8,), counts=[10])
    assert cycles(layer) == 4 * (19 + 6 + (6 + 10) + 2) + (9 + 10) + 13 == 204


def test_conv1d_is_a_one_row_conv2d(stats):
    one_d = stats("conv1d", cin=16, cout=32, kernel=(3,), out=(30,), weight_bits=(8,), counts=[32])
    two_d = stats("conv2d", cin=16, cout=32, kernel=(1, 3), out=(1, 30), weight_bits=(8,), counts=[32])
    assert cycles(one_d) == cycles(two_d) > 0


def test_pruning_and_narrower_weights_save_cycles(stats):
    full = cycles(stats(cin=64, cout=64, out=(8, 8), weight_bits=(2, 4, 8), counts=[0, 0, 64]))
    narrow = cycles(stats(cin=64, cout=64, out=(8, 8), weight_bits=(2, 4, 8), counts=[64, 0, 0]))
    pruned = cycles(stats(cin=64, cout=64, out=(8, 8), weight_bits=(2, 4, 8), counts=[0, 0, 32], kept_in=48))
    assert narrow < full and pruned < full
    # 33 → 32 output channels drops a whole output tile
    assert cycles(stats(cin=16, cout=64, out=(3, 3), weight_bits=(8,), counts=[33])) - cycles(
        stats(cin=16, cout=64, out=(3, 3), weight_bits=(8,), counts=[32])) == (45 + 22) + 8 + 1


def test_soft_counts_use_ceil_with_straight_through_gradient(stats):
    layer = stats(cin=16, cout=64, out=(3, 3), weight_bits=(8,), counts=[40.5], kept_in=16.0, requires_grad=True)
    value = Ne16Cost().layer_cost(layer)
    # 2 output tiles (ceil(40.5/32)), 1 input tile, linear in the 40.5 channels
    assert float(value.detach()) == pytest.approx(2 * (45 + 22) + 40.5 * (8 + 1))
    d_channels, d_in = torch.autograd.grad(value, [layer.out_at_bits, layer.kept_in])
    assert float(d_channels[0]) == pytest.approx((45 + 22) / 32 + 8 + 1)
    assert float(d_in) == pytest.approx((2 * 45 + 40.5 * 8) / 16)


def test_activation_bits(stats):
    eight = cycles(stats(act_bits=(8,)))
    assert cycles(stats(act_bits=(4, 8), act_probs=[0.5, 0.5])) == eight  # stored as bytes: no faster
    with pytest.raises(ConfigError, match="8-bit activations only"):
        cycles(stats(act_bits=(4, 8), act_probs=[0.5, 0.5]), strict_act_bits=True)
    with pytest.raises(ConfigError, match="16-bit activations"):
        cycles(stats(act_bits=(8, 16), act_probs=[0.5, 0.5]))
    # a frozen layer lists unused widths with probability 0: not an error
    assert cycles(stats(act_bits=(4, 8), act_probs=[0.0, 1.0]), strict_act_bits=True) == eight


def test_weight_widths(stats):
    assert cycles(stats(weight_bits=(1,), counts=[32])) == cycles(stats(weight_bits=(2,), counts=[32]))
    three = cycles(stats(weight_bits=(3,), counts=[32]))
    assert cycles(stats(weight_bits=(2,), counts=[32])) < three < cycles(stats(weight_bits=(4,), counts=[32]))
    with pytest.raises(ConfigError, match="16-bit weights"):
        cycles(stats(weight_bits=(16,), counts=[32]))


def test_empty_width_group_is_free(stats):
    with_empty = cycles(stats(weight_bits=(2, 8), counts=[0, 32]))
    assert with_empty == cycles(stats(weight_bits=(8,), counts=[32]))
    assert math.isfinite(with_empty)
