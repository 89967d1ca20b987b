"""LUT: the cost of a device you measured, read from a CSV or JSON table.

Each row is one layer measured whole on the device: its kind (``conv2d``, ``conv1d``,
``dwconv2d``, ``dwconv1d``, ``linear``), ``kernel``, ``stride``, ``out_size``, ``in_channels``,
``out_channels``, ``weight_bits``, ``act_bits`` and the value (column ``cycles``, ``latency``,
``energy`` or ``cost``). A CSV file may start with ``# unit: us``-style lines (``name``, ``unit``,
``description``, ``display_unit``, ``display_scale``); a JSON file is a list of rows or an object
with those keys and ``rows``.

A layer runs one job per weight-width group (like the analytical models), costed as::

    cost = Σ_a P(act bits = a) · Σ_w table(kind, kernel, stride, w, a; MACs of the group)

Within the rows of one kind/kernel/stride/weight bits/activation bits, and of the layer's own
output size when the table has rows for it (otherwise all sizes of that kind), the cost is
piecewise linear in MACs through the measured points, starting from (0 MACs, 0): exact at every
measured point, monotone wherever the measurements are, differentiable in the soft channel
counts. When two rows have the same MACs but different shapes, the curve passes through their
mean and a query with exactly one of those shapes returns its own measurement. A query beyond the
largest measured MACs is an error unless ``extrapolate=True`` (then cost grows in proportion to
MACs), and so is a kind/kernel/stride/width combination the table lacks.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import torch

from jointopt.cost import CostModel, LayerStats
from jointopt.errors import ConfigError

from ._common import is_absent
from ._lut_table import Key, Knots, LutTable, describe

__all__ = ["LutCost", "LutTable"]


class LutCost(CostModel):
    """Cost from a measured table (see the module docstring for the format and the interpolation).

    Args:
        table: the measurements; build it with :meth:`from_file` or :meth:`from_rows`.
        extrapolate: allow layers larger than every measurement of their kind (proportional to MACs).
    """

    name = "lut"
    unit = "cycle"
    description = "a device you measured: CSV/JSON rows of layer geometry + bits -> cost, interpolated in MACs"
    display_unit = "M cycles"
    display_scale = 1e-6

    def __init__(self, table: Optional[LutTable] = None, extrapolate: bool = False):
        if table is None:
            raise ConfigError("the 'lut' cost model needs a measured table: pass its path instead of the name, "
                              "e.g. --cost-model my_device.csv, or use LutCost.from_file(path)")
        self.table = table
        self.extrapolate = bool(extrapolate)
        meta = table.meta
        self.name = str(meta.get("name") or f"lut:{Path(table.source).name}")
        self.unit = str(meta["unit"])
        self.description = str(meta.get("description") or f"measured table {table.source}")
        cycles = self.unit in ("cycle", "cycles")
        self.display_unit = str(meta.get("display_unit") or ("M cycles" if cycles else self.unit))
        self.display_scale = float(meta.get("display_scale") or (1e-6 if cycles else 1.0))

    @classmethod
    def from_file(cls, path, extrapolate: bool = False) -> "LutCost":
        """Read a ``.csv`` or ``.json`` table."""
        return cls(LutTable.from_file(path), extrapolate=extrapolate)

    @classmethod
    def from_rows(cls, rows: Sequence[dict], extrapolate: bool = False, **meta) -> "LutCost":
        """Build from row dicts (same columns as the file); ``meta`` as in a file header."""
        return cls(LutTable.from_rows(rows, meta), extrapolate=extrapolate)

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        kind = ("dw" + layer.kind) if layer.depthwise else layer.kind
        kernel = () if layer.kind == "linear" else tuple(layer.kernel_size)
        stride = () if layer.kind == "linear" else tuple(layer.stride)
        per_channel = layer.fan_in * layer.kernel_numel * layer.out_numel
        total = torch.zeros((), dtype=layer.out_at_bits.dtype, device=layer.out_at_bits.device)
        for j, a in enumerate(layer.act_bits):
            prob = layer.act_probs[j]
            if is_absent(prob):
                continue
            for i, w in enumerate(layer.weight_bits):
                channels = layer.out_at_bits[i]
                if is_absent(channels):
                    continue
                key: Key = (kind, kernel, stride, int(w), int(a))
                knots = self.table.knots(key, tuple(layer.out_spatial), layer.name)
                total = total + prob * self._interpolate(knots, key, channels * per_channel, layer, channels)
        return total

    def _interpolate(self, knots: Knots, key: Key, macs: torch.Tensor, layer: LayerStats,
                     channels: torch.Tensor) -> torch.Tensor:
        at = float(macs.detach())
        top = knots.macs[-1]
        if at > top * (1 + 1e-6):
            if not self.extrapolate:
                raise ConfigError(
                    f"{self.table.source}: layer {layer.name or '?'} ({describe(key)}) needs {at:,.0f} MACs but the "
                    f"largest measurement of that kind has {top:,.0f}; add a row at the full size or pass "
                    "extrapolate=True"
                )
            return macs * (knots.values[-1] / top)
        x0, y0, x1, y1 = knots.segment(at)
        value = y0 + (y1 - y0) * (macs - x0) / (x1 - x0)
        if knots.exact and math.isclose(at, x1, rel_tol=1e-9):
            shape = (tuple(layer.out_spatial), _as_int(layer.fan_in), _as_int(channels))
            if shape in knots.exact:  # a measured shape among several with the same MACs
                value = value + (knots.exact[shape] - value.detach())
        return value

    def __repr__(self) -> str:
        return f"LutCost(name={self.name!r}, rows={len(self.table.rows)}, source={self.table.source!r})"


def _as_int(value: torch.Tensor):
    number = float(value.detach())
    return int(round(number)) if abs(number - round(number)) < 1e-6 else None
