"""A small CNN for the 8x8 digits quickstart: quick to train, with channels worth pruning."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from ._layers import channels, conv_bn, init_weights
from ._registry import register_model


class DigitsCNN(nn.Module):
    """Conv 3x3 16 -> conv 3x3 stride 2, 32 -> conv 3x3 32 (each BN + ReLU) -> global pool -> Linear."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_shape: Tuple[int, ...] = (1, 8, 8)):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.conv1 = conv_bn(in_channels, 16, 3, 1, 1)
        self.conv2 = conv_bn(16, 32, 3, 2, 1)
        self.conv3 = conv_bn(32, 32, 3, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv3(self.conv2(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


@register_model(dataset="digits")
def digits_cnn(num_classes: int = 10, input_shape: Tuple[int, int, int] = (1, 8, 8),
               in_channels: Optional[int] = None) -> nn.Module:
    """Small CNN for scikit-learn's 8x8 digits (14,288 conv+fc weights), the quickstart model."""
    return DigitsCNN(channels(input_shape, in_channels), num_classes, input_shape=input_shape)
