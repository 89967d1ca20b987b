"""Hand-built layer statistics for the cost-model tests (no dependency on convert/freeze)."""
from __future__ import annotations

import torch

from jointopt.cost import LayerStats

# ResNet-8 (MLPerf Tiny), 32×32×3 input: (name, kind, in, out, kernel, stride, output side)
RESNET8 = [
    ("conv1", "conv2d", 3, 16, 3, 1, 32),
    ("stage1.conv1", "conv2d", 16, 16, 3, 1, 32),
    ("stage1.conv2", "conv2d", 16, 16, 3, 1, 32),
    ("stage2.conv1", "conv2d", 16, 32, 3, 2, 16),
    ("stage2.conv2", "conv2d", 32, 32, 3, 1, 16),
    ("stage2.shortcut", "conv2d", 16, 32, 1, 2, 16),
    ("stage3.conv1", "conv2d", 32, 64, 3, 2, 8),
    ("stage3.conv2", "conv2d", 64, 64, 3, 1, 8),
    ("stage3.shortcut", "conv2d", 32, 64, 1, 2, 8),
    ("fc", "linear", 64, 10, None, None, None),
]


def make_stats(kind="conv2d", cin=16, cout=32, kernel=(3, 3), stride=None, groups=1, out=(8, 8),
               weight_bits=(2, 4, 8), counts=None, act_bits=(8,), act_probs=None, kept_in=None,
               requires_grad=False, name="layer", dtype=torch.float32) -> LayerStats:
    """One layer's stats; ``counts`` = output channels per weight width (default: all at the widest)."""
    if kind == "linear":
        kernel, stride, out = (), (), ()
    stride = tuple(stride) if stride is not None else (1,) * len(kernel)
    in_spatial = tuple(o * s for o, s in zip(out, stride)) if kind != "linear" else ()
    if counts is None:
        counts = [0.0] * (len(weight_bits) - 1) + [float(cout)]
    out_at_bits = torch.tensor(counts, dtype=dtype, requires_grad=requires_grad)
    kept = torch.tensor(float(cin if kept_in is None else kept_in), dtype=dtype, requires_grad=requires_grad)
    if groups == 1:
        fan_in = kept
    elif groups == cin:
        fan_in = torch.ones((), dtype=dtype)
    else:
        fan_in = torch.tensor(float(cin // groups), dtype=dtype)
    if act_probs is None:
        act_probs = [0.0] * (len(act_bits) - 1) + [1.0]
    probs = torch.tensor(act_probs, dtype=dtype, requires_grad=requires_grad)
    return LayerStats(name, kind, cin, cout, tuple(kernel), stride, groups, in_spatial, tuple(out),
                      tuple(weight_bits), tuple(act_bits), kept, fan_in, out_at_bits, probs)


def resnet8_stats(weight_bits=8, act_bits=8) -> list:
    """Unpruned ResNet-8 with every weight at ``weight_bits`` and activations at ``act_bits``."""
    layers = []
    for name, kind, cin, cout, k, s, side in RESNET8:
        if kind == "linear":
            layers.append(make_stats("linear", cin, cout, weight_bits=(weight_bits,), counts=[cout],
                                     act_bits=(act_bits,), name=name))
        else:
            layers.append(make_stats(kind, cin, cout, (k, k), (s, s), out=(side, side), weight_bits=(weight_bits,),
                                     counts=[cout], act_bits=(act_bits,), name=name))
    return layers


RESNET8_MACS = sum(cout * cin * (k or 1) ** 2 * (side or 1) ** 2 for _, _, cin, cout, k, _, side in RESNET8)


def total(cost_model, layers) -> float:
    return float(cost_model.network_cost(layers))

