"""MobileNetV1, MLPerf Tiny's visual-wake-words model (width 0.25, 96x96)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from ._layers import channels, conv_bn, init_weights
from ._registry import register_model

# (output channels at width 1.0, stride of the depthwise conv) of the 13 separable blocks
_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    """Conv 3x3 stride 2 -> 13 x (depthwise 3x3 + pointwise 1x1), each with BN and ReLU -> pool -> Linear."""

    def __init__(self, in_channels: int = 3, num_classes: int = 2, width: float = 0.25,
                 input_shape: Tuple[int, ...] = (3, 96, 96)):
        super().__init__()
        self.input_shape = tuple(input_shape)
        cin = int(32 * width)
        self.stem = conv_bn(in_channels, cin, 3, 2, 1)
        layers = []
        for cout, stride in _BLOCKS:
            cout = int(cout * width)
            layers.append(conv_bn(cin, cin, 3, stride, 1, groups=cin))
            layers.append(conv_bn(cin, cout, 1))
            cin = cout
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


@register_model
def mobilenetv1_025(num_classes: int = 2, input_shape: Tuple[int, int, int] = (3, 96, 96),
                    in_channels: Optional[int] = None) -> nn.Module:
    """MobileNetV1 x0.25 for 96x96 visual wake words (208,112 conv+fc weights with 2 classes)."""
    return MobileNetV1(channels(input_shape, in_channels), num_classes, 0.25, input_shape=input_shape)
