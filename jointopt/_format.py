"""The one number formatter: every number jointopt prints for a person goes through it.

Cost models format their values with it (``CostModel.format``), and so do the report's tables,
figure labels and parameter strings, so a cost reads the same in ``search.log``, in ``jointopt
report`` and in the figures.
"""
from __future__ import annotations

import math


def format_number(value: float, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits, thousands separated, never in scientific notation.

    With the default four digits: ``0.3812``, ``14.29``, ``2.21``, ``1,250``, ``77,360``; with
    three: ``0.25``, ``123``. Trailing zeros after the decimal point are dropped; a value of 10**digits
    or more keeps all its integer digits. ``nan``, ``inf`` and ``-inf`` print as such, since a
    diverged trial or a broken cost model must be reported, never raise.
    """
    value = float(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
