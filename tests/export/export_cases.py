"""Frozen networks in a mixed state (some channels pruned, several weight widths) for the export tests."""
import torch

import jointopt
from jointopt.nn import FrozenLayer
from nets import TOPOLOGIES, randomize_bn

# resnet18 (11 M weights, 2.2 GMAC per 64x64 image) is left out: too slow for this suite's budget
SMALL_ZOO = ["resnet8", "dscnn", "mobilenetv1_025", "digits_cnn"]
CASES = sorted(TOPOLOGIES) + SMALL_ZOO


def build(name: str):
    """(model, input shape of a batch of 2)."""
    if name in TOPOLOGIES:
        cls, shape = TOPOLOGIES[name]
        torch.manual_seed(0)
        return randomize_bn(cls()).eval(), shape
    from jointopt.zoo import model_info

    torch.manual_seed(0)
    return jointopt.create_model(name).eval(), (2, *model_info(name).input_shape)


def mixed_frozen(name: str, seed: int = 2, batch: int = None, space=None, act_logits=None):
    """(searchable, frozen, batch): random keep logits (some negative = pruned) and bit logits."""
    model, shape = build(name)
    batch = batch or (32 if name in SMALL_ZOO else 64)
    x = torch.randn(batch, *shape[1:], generator=torch.Generator().manual_seed(seed))
    net = jointopt.convert(model, x[:16], space)
    g = torch.Generator().manual_seed(seed)
    for gate in net.gates.values():
        if gate.prunable:
            gate.logits.data = torch.randn(gate.size, generator=g) * 2
    for _, layer in net.searchable_layers():
        layer.bit_logits.data = torch.randn(layer.bit_logits.shape, generator=g) * 2
        if act_logits is not None:
            layer.act_logits.data = torch.tensor(act_logits, dtype=torch.float32)
    frozen = net.eval().set_mode("hard").freeze().eval()
    return net, frozen, x


def frozen_layers(frozen):
    return [(n, m) for n, m in frozen.named_modules() if isinstance(m, FrozenLayer)]
