"""Building blocks shared by the zoo models.

Every block keeps BatchNorm directly after its convolution, so ``convert`` can fold it, and uses
only modules a torch.fx trace sees as leaves (Conv, BatchNorm, ReLU, Linear, pooling, Dropout).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Tuple, Union

from torch import nn

Size = Union[int, Tuple[int, int]]


def conv_bn(cin: int, cout: int, kernel: Size, stride: Size = 1, padding: Size = 0, *, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    """Conv2d (no bias: the BatchNorm shift replaces it) -> BatchNorm2d -> optional ReLU."""
    layers = [("conv", nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)),
              ("bn", nn.BatchNorm2d(cout))]
    if relu:
        layers.append(("relu", nn.ReLU()))
    return nn.Sequential(OrderedDict(layers))


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions (as the MLPerf Tiny Keras models), unit BatchNorm, default Linear."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def channels(input_shape, in_channels) -> int:
    """The input channel count: ``in_channels`` when given, else ``input_shape[0]``."""
    return int(in_channels) if in_channels is not None else int(tuple(input_shape)[0])
