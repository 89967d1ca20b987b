"""Every layer at once: the statistics a vectorised cost model reads (see ``CostModel.batch_cost``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Dict, Hashable, Tuple

import torch


@dataclass(frozen=True, eq=False)
class LayerTable:
    """The static geometry of a network's searchable layers, one entry per layer, built once per network.

    Counts are tensors of shape ``[L]`` in the dtype and on the device of the selectors, so that a
    cost expression needs no conversion; ``weight_widths``/``act_widths`` are the candidate widths
    (shared by every layer) as tensors. ``constants`` holds what cost models derive from the
    geometry (see :meth:`LayerBatch.constant`).
    """

    names: Tuple[str, ...]
    kinds: Tuple[str, ...]
    weight_bits: Tuple[int, ...]
    act_bits: Tuple[int, ...]
    in_channels: torch.Tensor
    out_channels: torch.Tensor
    groups: torch.Tensor
    kernel_numel: torch.Tensor
    out_numel: torch.Tensor
    weight_widths: torch.Tensor
    act_widths: torch.Tensor
    constants: Dict[Hashable, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, eq=False)
class LayerBatch:
    """The soft statistics of all searchable layers of a network, stacked: :class:`LayerStats` with a
    leading layer dimension ``L``.

    The geometry comes from the network's :class:`LayerTable`, and every field of it can be read
    on the batch directly (``batch.kernel_numel``, ``batch.weight_widths``, ...). The allocation is
    recomputed at every evaluation and carries gradients back to the selectors, exactly as in
    :class:`LayerStats`:

    * ``kept_in``, ``fan_in`` — ``[L]``, expected kept input channels and inputs read per output channel;
    * ``out_at_bits`` — ``[L, B]``, expected output channels at each of ``weight_bits``;
    * ``act_probs`` — ``[L, A]``, probabilities of the input-activation widths ``act_bits``
      (computed on first use by ``act_probs_fn``: a model that ignores them does not pay for them).

    All layers share ``weight_bits`` and ``act_bits`` (a network whose layers differ is costed
    layer by layer).
    """

    table: LayerTable
    kept_in: torch.Tensor
    fan_in: torch.Tensor
    out_at_bits: torch.Tensor
    act_probs_fn: Callable[[], torch.Tensor] = field(repr=False)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "table":
            raise AttributeError(name)
        try:
            return getattr(self.table, name)
        except AttributeError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None

    def __len__(self) -> int:
        return len(self.table.names)

    @cached_property
    def act_probs(self) -> torch.Tensor:
        """[L, A] probabilities of the input-activation widths."""
        return self.act_probs_fn()

    @property
    def kept_out(self) -> torch.Tensor:
        """[L] expected kept output channels."""
        return self.out_at_bits.sum(1)

    def weights_at_bits(self) -> torch.Tensor:
        """[L, B] expected number of weights stored at each width (as ``LayerStats.weights_at_bits``)."""
        return self.out_at_bits * (self.fan_in * self.table.kernel_numel).unsqueeze(1)

    def macs_at_bits(self) -> torch.Tensor:
        """[L, B] expected multiply-accumulates per inference done with weights of each width."""
        table = self.table
        return self.out_at_bits * (self.fan_in * table.kernel_numel * table.out_numel).unsqueeze(1)

    def mean_act_bits(self) -> torch.Tensor:
        """[L] expected input-activation width."""
        return self.act_probs @ self.table.act_widths

    def constant(self, key: Hashable, compute: Callable[[LayerTable], Any]) -> Any:
        """``compute(table)``, evaluated on the first call for ``key`` and kept with the network's
        :class:`LayerTable`, so that a model's per-layer constants are built once, not at every step.

        Use a key unique to your model and its settings, e.g. ``(type(self).__name__, self.table_id)``;
        the value may depend only on the geometry, not on the allocation.
        """
        constants = self.table.constants
        if key not in constants:
            constants[key] = compute(self.table)
        return constants[key]
