"""Matplotlib without pyplot: figures are built and rasterised here, never shown.

Using :class:`matplotlib.figure.Figure` with the Agg canvas directly keeps the report free of
pyplot's global state (no backend switch, no figure registry to leak), so it is safe inside a
training process and in worker processes.
"""
from __future__ import annotations

import io
from pathlib import Path

from .._files import atomic_write_bytes

DPI = 110


def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buffer.getvalue()


def save_png(fig, path: Path) -> Path:
    write_atomic(path, to_png(fig))
    return Path(path)


def write_atomic(path, data) -> None:
    """Write ``data`` (bytes, or text as UTF-8) atomically: :func:`jointopt._files.atomic_write_bytes`."""
    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def bit_colors(widths):
    """A fixed colour per bit-width (the same in every figure), darker for wider (costlier) weights.

    1 bit → light yellow-green … 8 bits → dark purple, 16 bits darker still (viridis by log2 width).
    """
    import math

    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return {int(w): cmap(min(0.95, max(0.05, 0.9 - 0.2 * math.log2(int(w))))) for w in widths if int(w) > 0}


PRUNED_COLOR = "#e4e4e4"
FLOAT_COLOR = "#555555"
# one colour per compared run: ten, so that the nine methods of `jointopt methods` are told apart
RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
              "#393b79"]
