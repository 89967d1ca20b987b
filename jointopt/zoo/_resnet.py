"""ResNets: MLPerf Tiny's ResNet-8 for CIFAR-10 and a ResNet-18 for 64x64 Tiny ImageNet."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from ._layers import channels, conv_bn, init_weights
from ._registry import register_model


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a residual add, then ReLU.

    When the shape changes, the shortcut is a strided 1x1 convolution: with a BatchNorm after it
    (ResNet-18) or, as in MLPerf Tiny's ResNet-8, with a bias and no BatchNorm.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, *, shortcut_bn: bool = True):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, 1)
        self.conv2 = conv_bn(cout, cout, 3, 1, 1, relu=False)
        self.shortcut: Optional[nn.Module] = None
        if stride != 1 or cin != cout:
            if shortcut_bn:
                self.shortcut = conv_bn(cin, cout, 1, stride, 0, relu=False)
            else:
                self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return self.relu(shortcut + y)


class ResNet(nn.Module):
    """Stem conv-BN-ReLU, stages of BasicBlocks, global average pooling, one Linear classifier."""

    def __init__(self, in_channels: int, num_classes: int, stem: int, widths: Sequence[int], blocks: Sequence[int],
                 *, shortcut_bn: bool, input_shape: Tuple[int, ...]):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.stem = conv_bn(in_channels, stem, 3, 1, 1)
        stages, cin = [], stem
        for index, (width, count) in enumerate(zip(widths, blocks)):
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stages.append(BasicBlock(cin, width, stride, shortcut_bn=shortcut_bn))
                cin = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stages(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


@register_model(dataset="cifar10")
def resnet8(num_classes: int = 10, input_shape: Tuple[int, int, int] = (3, 32, 32),
            in_channels: Optional[int] = None) -> nn.Module:
    """MLPerf Tiny ResNet-8 (77,360 conv+fc weights): 16 -> 3 stages of 16/32/64 channels."""
    return ResNet(channels(input_shape, in_channels), num_classes, 16, (16, 32, 64), (1, 1, 1),
                  shortcut_bn=False, input_shape=input_shape)


@register_model(dataset="tinyimagenet")
def resnet18(num_classes: int = 200, input_shape: Tuple[int, int, int] = (3, 64, 64),
             in_channels: Optional[int] = None) -> nn.Module:
    """ResNet-18 for 64x64 inputs (3x3 stride-1 stem, no max-pool; 11.26 M weights)."""
    return ResNet(channels(input_shape, in_channels), num_classes, 64, (64, 128, 256, 512), (2, 2, 2, 2),
                  shortcut_bn=True, input_shape=input_shape)
