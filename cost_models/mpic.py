"""MPIC: latency of a RISC-V core with mixed-precision SIMD (Ottavi et al., 2020), in cycles.

The core's throughput depends on the widths of both operands. A layer whose output channels use
several weight widths runs one kernel per width group, so::

    cycles = Σ_a P(act bits = a) · Σ_w MACs(w) / throughput(a, w)

Widths the table lacks run at the next larger width it has (a 3-bit weight is processed as a
4-bit one, a 1-bit one as 2-bit); a width above the largest (8 bits) is an error. Depthwise,
grouped and fully-connected layers use the same table: it was measured on convolutions, which
is the usual simplification for this core.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import torch

from jointopt.cost import CostModel, LayerStats
from jointopt.errors import ConfigError

from ._common import is_absent, next_width, widths_like

#: MACs per cycle by (activation bits, weight bits), from Ottavi et al. 2020 (its table of MACs per cycle).
MPIC_MACS_PER_CYCLE: Dict[Tuple[int, int], float] = {
    (2, 2): 6.5, (2, 4): 4.0, (2, 8): 2.2,
    (4, 2): 3.9, (4, 4): 3.5, (4, 8): 2.1,
    (8, 2): 2.5, (8, 4): 2.3, (8, 8): 2.1,
}


class MpicCost(CostModel):
    """Cycles per inference on MPIC: MACs of each (activation, weight) width pair / its MAC-per-cycle rate.

    Args:
        table: MACs per cycle by ``(act_bits, weight_bits)``; defaults to the published MPIC
            figures. Pass your own to model a similar core.
    """

    name = "mpic"
    unit = "cycle"
    description = "latency of the MPIC RISC-V mixed-precision core (MAC/cycle table by act x weight bits)"
    display_unit = "M cycles"
    display_scale = 1e-6

    def __init__(self, table: Optional[Mapping[Tuple[int, int], float]] = None):
        table = dict(MPIC_MACS_PER_CYCLE if table is None else table)
        act_widths = sorted({a for a, _ in table})
        weight_widths = sorted({w for _, w in table})
        missing = [(a, w) for a in act_widths for w in weight_widths if (a, w) not in table]
        if missing:
            raise ConfigError(f"MPIC table has no throughput for (act bits, weight bits) {missing}; give a full grid")
        if any(float(v) <= 0 for v in table.values()):
            raise ConfigError("MPIC table throughputs must be > 0 MACs per cycle")
        self.table = {(int(a), int(w)): float(v) for (a, w), v in table.items()}
        self._act_widths = act_widths
        self._weight_widths = weight_widths

    def throughput(self, act_bits: int, weight_bits: int) -> float:
        """MACs per cycle for these widths, after rounding each up to a width in the table."""
        a = next_width(act_bits, self._act_widths, "activations", self.name)
        w = next_width(weight_bits, self._weight_widths, "weights", self.name)
        return self.table[(a, w)]

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        macs = layer.macs_at_bits()
        total = torch.zeros((), dtype=macs.dtype, device=macs.device)
        for j, a in enumerate(layer.act_bits):
            prob = layer.act_probs[j]
            if is_absent(prob):
                continue
            rates = [self._rate_or_none(a, w, macs[i]) for i, w in enumerate(layer.weight_bits)]
            inverse = widths_like(layer, [0.0 if r is None else 1.0 / r for r in rates])
            total = total + prob * (macs * inverse).sum()
        return total

    def _rate_or_none(self, act_bits: int, weight_bits: int, macs: torch.Tensor):
        # an unsupported weight width nobody uses (count exactly 0 in a frozen layer) costs nothing
        if weight_bits > self._weight_widths[-1] and is_absent(macs):
            return None
        return self.throughput(act_bits, weight_bits)
