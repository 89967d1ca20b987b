"""The one operation a Conv1d, Conv2d or Linear performs, shared by searchable and frozen layers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..cost import is_depthwise


@dataclass(frozen=True)
class LayerGeometry:
    """Static shape of a Conv1d/Conv2d/Linear and the spatial sizes it sees."""

    kind: str  # "conv1d" | "conv2d" | "linear"
    in_channels: int
    out_channels: int
    kernel_size: Tuple[int, ...] = ()
    stride: Tuple[int, ...] = ()
    padding: Tuple[int, ...] = ()
    dilation: Tuple[int, ...] = ()
    groups: int = 1
    in_spatial: Tuple[int, ...] = ()
    out_spatial: Tuple[int, ...] = ()
    depthwise: bool = False  # is_depthwise of the unpruned conv; kept when pruning leaves one channel (groups 1)

    @classmethod
    def of(cls, module: nn.Module, in_spatial=(), out_spatial=()) -> "LayerGeometry":
        if isinstance(module, nn.Linear):
            return cls("linear", module.in_features, module.out_features, in_spatial=tuple(in_spatial),
                       out_spatial=tuple(out_spatial))
        kind = "conv1d" if isinstance(module, nn.Conv1d) else "conv2d"
        depthwise = is_depthwise(module.in_channels, module.out_channels, module.groups)
        return cls(kind, module.in_channels, module.out_channels, tuple(module.kernel_size), tuple(module.stride),
                   tuple(module.padding), tuple(module.dilation), module.groups, tuple(in_spatial), tuple(out_spatial),
                   depthwise)

    def with_channels(self, in_channels: int, out_channels: int, groups: int) -> "LayerGeometry":
        return LayerGeometry(self.kind, in_channels, out_channels, self.kernel_size, self.stride, self.padding,
                             self.dilation, groups, self.in_spatial, self.out_spatial, self.depthwise)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "LayerGeometry":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def run_op(geometry: LayerGeometry, x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    if geometry.kind == "linear":
        return F.linear(x, weight, bias)
    conv = F.conv1d if geometry.kind == "conv1d" else F.conv2d
    return conv(x, weight, bias, geometry.stride, geometry.padding, geometry.dilation, geometry.groups)
