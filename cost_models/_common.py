"""Small pieces the built-in cost models share: width tensors, straight-through ceil, width mapping."""
from __future__ import annotations

from typing import Iterable, Sequence

import torch

from jointopt._constants import constant
from jointopt.cost import LayerStats
from jointopt.errors import ConfigError


def widths_like(layer: LayerStats, widths: Sequence[float]) -> torch.Tensor:
    """``widths`` as a tensor with the dtype and device of the layer's allocation (made once: shared,
    not to be modified in place)."""
    return constant(widths, layer.out_at_bits.dtype, layer.out_at_bits.device)


def ste_ceil(x: torch.Tensor, tol: float = 1e-4) -> torch.Tensor:
    """``ceil(x)`` in the forward pass, the identity's gradient in the backward pass.

    Tile counts are integers, but the search sees soft (expected) channel counts; passing the
    gradient straight through keeps the cost differentiable in them. ``tol`` absorbs float noise,
    so a count of 32.00001 channels is one tile of 32, not two.
    """
    hard = torch.ceil(x - tol).clamp_min(0)
    return x + (hard - x).detach()


def is_absent(value: torch.Tensor) -> bool:
    """True when ``value`` is exactly zero and carries no gradient (a width nobody chose).

    Frozen networks report every candidate width with a count or probability of 0; a cost model
    may skip such entries instead of failing on a width it does not support.
    """
    return not value.requires_grad and float(value) == 0.0


def next_width(width: int, supported: Iterable[int], what: str, model: str) -> int:
    """The smallest supported width ≥ ``width`` (a 3-bit weight runs as a 4-bit one).

    Raises:
        ConfigError: ``width`` is wider than anything the hardware supports.
    """
    options = sorted(supported)
    for option in options:
        if option >= width:
            return option
    raise ConfigError(
        f"cost model {model!r} cannot cost {width}-bit {what}: it supports {', '.join(map(str, options))} bits "
        f"(narrower widths run at the next supported one); remove {width} from the search space"
    )


def out_plane(layer: LayerStats) -> tuple:
    """Output spatial size as (height, width): 1-D layers have height 1, vectors are 1×1."""
    spatial = tuple(layer.out_spatial)
    if len(spatial) >= 2:
        return spatial[-2], spatial[-1]
    if len(spatial) == 1:
        return 1, spatial[0]
    return 1, 1


def kernel_plane(layer: LayerStats) -> tuple:
    """Kernel as (height, width), with the same conventions as :func:`out_plane`."""
    kernel = tuple(layer.kernel_size) if layer.kind != "linear" else ()
    if len(kernel) >= 2:
        return kernel[-2], kernel[-1]
    if len(kernel) == 1:
        return 1, kernel[0]
    return 1, 1
