"""The cost-model contract: typed, differentiable layer statistics in, a cost tensor out."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence, Tuple

import torch

from .._constants import constant
from .._format import format_number
from ._batch import LayerBatch



def is_depthwise(in_channels: int, out_channels: int, groups: int) -> bool:
    """Whether a convolution is depthwise: one group per channel, output channel i reading input
    channel i only (``groups == in_channels == out_channels > 1``).

    This is the one definition jointopt uses: the graph analysis lets a depthwise conv share its
    producer's channel group (pruning channel i removes it on both sides), freezing shrinks
    ``groups`` with the kept channels, and cost models see :attr:`LayerStats.depthwise`. A conv with
    ``groups == in_channels`` and a channel multiplier (``out_channels == 2 * in_channels``) is
    *not* depthwise in this sense: each input channel feeds several outputs, so it is a grouped
    convolution (bit-width search only) whose every output still reads a single input channel.
    """
    return groups > 1 and groups == in_channels == out_channels


@dataclass(frozen=True, eq=False)
class LayerStats:
    """What a cost model may know about one searchable (or frozen) layer.

    The geometry is static. The allocation is a set of tensors that carry gradients back to the
    selectors during the search and hold exact counts for a frozen (hard) network:

    * ``kept_in`` — expected number of kept input channels of the layer (features for a Linear
      after a flatten). It is *not* detached: pruning a producer's channel is credited here.
    * ``fan_in`` — expected number of input channels each output channel reads
      (``kept_in`` for an ordinary layer, ``1`` for a depthwise one, ``in/groups`` for grouped).
    * ``out_at_bits[i]`` — expected number of output channels stored at ``weight_bits[i]``; their
      sum is the expected number of kept output channels.
    * ``act_probs[j]`` — probability that the input activations use ``act_bits[j]``.

    So a layer's expected weight count at width ``b`` is ``out_at_bits[b] · fan_in · kernel_numel``:
    linear in the kept outputs, linear in the kept inputs.
    """

    name: str
    kind: str  # "conv1d" | "conv2d" | "linear"
    in_channels: int
    out_channels: int
    kernel_size: Tuple[int, ...]
    stride: Tuple[int, ...]
    groups: int
    in_spatial: Tuple[int, ...]
    out_spatial: Tuple[int, ...]
    weight_bits: Tuple[int, ...]
    act_bits: Tuple[int, ...]
    kept_in: torch.Tensor
    fan_in: torch.Tensor
    out_at_bits: torch.Tensor
    act_probs: torch.Tensor
    is_depthwise: Optional[bool] = None  # set by frozen layers: a depthwise conv pruned to one channel has groups=1

    @property
    def kernel_numel(self) -> int:
        return math.prod(self.kernel_size) if self.kernel_size else 1

    @property
    def out_numel(self) -> int:
        """Output positions per channel (1 for a Linear on a vector)."""
        return math.prod(self.out_spatial) if self.out_spatial else 1

    @property
    def depthwise(self) -> bool:
        """Output channel i reads input channel i only (see :func:`is_depthwise`)."""
        if self.is_depthwise is not None:
            return self.is_depthwise
        return is_depthwise(self.in_channels, self.out_channels, self.groups)

    @property
    def kept_out(self) -> torch.Tensor:
        return self.out_at_bits.sum()

    def weights_at_bits(self) -> torch.Tensor:
        """Expected number of weights stored at each width of ``weight_bits``."""
        return self.out_at_bits * self.fan_in * self.kernel_numel

    def macs_at_bits(self) -> torch.Tensor:
        """Expected multiply-accumulates per inference done with weights of each width."""
        return self.weights_at_bits() * self.out_numel

    def mean_act_bits(self) -> torch.Tensor:
        return (self.act_probs * constant(self.act_bits, self.act_probs.dtype, self.act_probs.device)).sum()

    @property
    def reference_macs(self) -> int:
        """MACs of the unpruned layer."""
        return self.out_channels * (self.in_channels // self.groups) * self.kernel_numel * self.out_numel


class CostModel:
    """Base class of a hardware cost model.

    Subclasses set ``name``, ``unit`` and ``description`` and implement :meth:`layer_cost`, a
    differentiable, non-negative function of one :class:`LayerStats`. The network cost is the
    sum over layers unless :meth:`network_cost` is overridden. ``display_scale`` and
    ``display_unit`` turn the raw unit into a human one (bits → kB). :meth:`batch_cost` is an
    optional vectorised form of the network cost that the search uses at every step.
    """

    name: ClassVar[str] = "unnamed"
    unit: ClassVar[str] = ""
    description: ClassVar[str] = ""
    display_unit: ClassVar[str] = ""
    display_scale: ClassVar[float] = 1.0

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        raise NotImplementedError

    def network_cost(self, layers: Sequence[LayerStats]) -> torch.Tensor:
        costs = [self.layer_cost(layer) for layer in layers]
        if not costs:
            return torch.zeros(())
        device = next((c.device for c in costs if isinstance(c, torch.Tensor)), None)  # plain numbers join it
        return torch.stack([torch.as_tensor(c, dtype=torch.float32, device=device) for c in costs]).sum()

    def batch_cost(self, batch: LayerBatch) -> Optional[torch.Tensor]:
        """Optional: the network cost of every layer at once, as one tensor expression.

        The search evaluates the soft cost at every step. A model whose cost is a simple function of
        each layer's statistics can compute it for all layers from a :class:`LayerBatch` (per-layer
        constants built once per network, the allocation stacked over layers) in a handful of tensor
        operations instead of a few dozen per layer. It must equal :meth:`network_cost` of the same
        layers, in value and in gradient; ``jointopt.testing.check_batch_cost`` checks that, and
        :func:`~jointopt.testing.check_cost_model` runs it. Hard (argmax) costs and frozen networks
        always go through :meth:`network_cost`.

        Returns:
            A scalar tensor, or ``None`` (the default) to be costed layer by layer.
        """
        return None

    def has_batch_cost(self) -> bool:
        """Whether :meth:`batch_cost` speaks for this class.

        True when the class that defines ``batch_cost`` also defines (or inherits from the one that
        defines) ``layer_cost`` and ``network_cost``: a subclass that changes the per-layer cost but
        not the vectorised one is costed layer by layer, so the two never disagree silently.
        """
        return _batch_cost_applies(type(self))

    def bind(self, network) -> "CostModel":
        """This model for one network: a model that needs the network's graph, not only per-layer
        statistics (``ram``: which tensors are alive together), returns a copy that knows it.

        The study calls it once per trial with the searchable network (what ``convert`` returns);
        the bound model must also accept that network's frozen layers. Default: ``self``.
        """
        return self

    def format(self, value: float) -> str:
        """``value`` in raw units → a short human string (e.g. ``"59.1 kB"``)."""
        unit = self.display_unit or self.unit
        return f"{format_number(float(value) * self.display_scale)} {unit}".strip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _defined_in(cls: type, attr: str) -> Optional[type]:
    """The class of ``cls``'s method resolution order whose body defines ``attr``."""
    return next((klass for klass in cls.__mro__ if attr in vars(klass)), None)


@functools.lru_cache(maxsize=None)
def _batch_cost_applies(cls: type) -> bool:
    owner = _defined_in(cls, "batch_cost")
    if owner is None or owner is CostModel:
        return False
    return all(issubclass(owner, _defined_in(cls, name) or CostModel) for name in ("layer_cost", "network_cost"))
