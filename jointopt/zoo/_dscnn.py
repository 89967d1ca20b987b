"""MLPerf Tiny DS-CNN for keyword spotting on 49x10 MFCCs."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from ._layers import channels, conv_bn, init_weights
from ._registry import register_model


class DSCNN(nn.Module):
    """Conv 10x4 stride 2 -> 4 x (depthwise 3x3 + pointwise 1x1) -> average pool -> Linear.

    The Keras reference pads the first convolution "same" (4 rows above, 5 below); PyTorch pads
    symmetrically, so padding (5, 1) is used: the output is the same 25x5 grid.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 12, width: int = 64, blocks: int = 4,
                 input_shape: Tuple[int, ...] = (1, 49, 10)):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.stem = conv_bn(in_channels, width, (10, 4), 2, (5, 1))
        self.drop1 = nn.Dropout(0.2)
        layers = []
        for _ in range(blocks):
            layers.append(conv_bn(width, width, 3, 1, 1, groups=width))  # depthwise
            layers.append(conv_bn(width, width, 1))  # pointwise
        self.blocks = nn.Sequential(*layers)
        self.drop2 = nn.Dropout(0.4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop2(self.blocks(self.drop1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model(dataset="gsc")
def dscnn(num_classes: int = 12, input_shape: Tuple[int, int, int] = (1, 49, 10),
          in_channels: Optional[int] = None) -> nn.Module:
    """MLPerf Tiny DS-CNN (22,016 conv+fc weights) for 12-class keyword spotting on MFCC 49x10."""
    return DSCNN(channels(input_shape, in_channels), num_classes, input_shape=input_shape)
