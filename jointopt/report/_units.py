"""Human units for costs: every number the report shows goes through here (kB, M cycles, %).

A cost model stores raw units (bits, cycles, bit-operations) and declares a display unit and scale
(``memory``: bits → kB). Figures and tables pick the SI prefix that suits the values they show, so
a tiny network reads ``14.8 Mbitop`` rather than ``0.0148 Gbitop``; TensorBoard tags keep the cost
model's own display unit so that a tag never changes during a study.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, replace
from typing import Iterable

from .._format import format_number


_PREFIXES = "kMGTP"
_INVALID_TAG = re.compile(r"[^-\w.]")


@dataclass(frozen=True)
class CostUnit:
    """How to show one cost model's values: ``value_raw * scale`` in ``unit``."""

    name: str
    unit: str = ""
    scale: float = 1.0

    def __call__(self, raw: float) -> float:
        return float(raw) * self.scale

    def format(self, raw: float) -> str:
        """A raw cost (bits, MACs, cycles) in this unit, e.g. ``14.29 kB``."""
        return f"{format_number(self(raw))} {self.unit}".strip()

    @property
    def label(self) -> str:
        """Axis or column label, e.g. ``memory (kB)``."""
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def tag(self) -> str:
        """A TensorBoard-safe tag fragment, e.g. ``memory_kB`` or ``mpic_Mcycles``."""
        unit = self.unit.replace(" ", "")
        return safe_tag(f"{self.name}_{unit}" if unit else self.name)

    def fitted(self, raw_values: Iterable[float]) -> "CostUnit":
        """The same unit with the SI prefix moved so the largest value reads between 1 and 9,999."""
        values = [abs(float(v)) for v in raw_values if v is not None and math.isfinite(float(v))]
        if not values or max(values) == 0 or len(self.unit) < 2 or self.unit[0] not in _PREFIXES:
            return self
        unit, scale, top = self.unit, self.scale, max(values) * self.scale
        while top >= 1e4 and unit[0] in _PREFIXES[:-1]:
            unit, scale, top = _PREFIXES[_PREFIXES.index(unit[0]) + 1] + unit[1:], scale / 1e3, top / 1e3
        while top < 1 and unit and unit[0] in _PREFIXES and len(unit) > 1:
            lower = _PREFIXES[_PREFIXES.index(unit[0]) - 1] if unit[0] != "k" else ""
            unit, scale, top = (lower + unit[1:]).strip(), scale * 1e3, top * 1e3
        return replace(self, unit=unit, scale=scale)


@functools.lru_cache(maxsize=None)
def cost_unit(name: str) -> CostUnit:
    """The display unit of cost model ``name``; raw units when the model cannot be loaded here."""
    try:
        from ..cost import get_cost_model

        model = get_cost_model(name)
    except Exception:  # a run may name a LUT file or a plug-in that this machine lacks
        return CostUnit(short_name(name))
    return CostUnit(short_name(name), str(model.display_unit or model.unit or ""),
                    float(model.display_scale if model.display_unit else 1.0))


def short_name(spec: str) -> str:
    """``memory`` stays; ``tables/gap9.csv`` becomes ``gap9``; ``pkg.mod:Latency`` becomes ``Latency``."""
    text = str(spec)
    if ":" in text:
        text = text.rsplit(":", 1)[1] or text
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"\.(csv|json|py)$", "", text) or str(spec)


def safe_tag(text: str) -> str:
    return _INVALID_TAG.sub("_", text)


def fmt_pct(value: float, digits: int = 2) -> str:
    """An accuracy or share already in percent: ``97.22 %``."""
    return f"{float(value):.{digits}f} %"


def fmt_delta(value: float, reference: float) -> str:
    """Relative change, e.g. ``−47.5 %`` (typographic minus, as in the papers)."""
    if not reference:
        return "n/a"
    delta = 100.0 * (float(value) / float(reference) - 1.0)
    return f"{delta:+.1f} %".replace("-", "\u2212")
