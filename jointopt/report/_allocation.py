"""Allocation figures: what each layer kept and at which bit-widths, and how that evolved.

``rows`` are the per-layer summaries the search and the result files carry::

    {"layer": "conv2.conv", "kept": 24, "total": 32, "bits": {8: 10, 4: 14}, "act_bits": 8}

(JSON turns the bit-width keys into strings; both are accepted.)
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from ._render import PRUNED_COLOR, bit_colors, new_figure
from .._format import format_number
from ._units import CostUnit, cost_unit

KEPT_COLOR = "#d62728"  # the epoch the search kept, on the evolution figure


def layer_bits(row: dict) -> Dict[int, int]:
    return {int(b): int(n) for b, n in row.get("bits", {}).items() if int(n) > 0 and int(b) > 0}


def layer_mean_bits(row: dict) -> float:
    bits = layer_bits(row)
    kept = sum(bits.values())
    return sum(b * n for b, n in bits.items()) / kept if kept else float("nan")


def allocation_figure(rows: Sequence[dict], title: str = "", widths: Sequence[int] = ()):
    """One bar per layer, as shares of its output channels: each kept bit-width, then the pruned ones."""
    widths = sorted({*map(int, widths), *(b for r in rows for b in layer_bits(r))} - {0}, reverse=True)
    colors = bit_colors(widths)
    fig = new_figure(8.6, 1.6 + 0.36 * max(len(rows), 2))
    ax = fig.add_subplot()
    labels = []
    for y, row in enumerate(rows):
        total = int(row.get("total") or row["kept"]) or 1
        left = 0.0
        for width in widths:
            n = layer_bits(row).get(width, 0)
            share = 100.0 * n / total
            if share:
                ax.barh(y, share, left=left, color=colors[width], edgecolor="white", linewidth=0.5, height=0.72)
                if share >= 7:
                    r, g, b = colors[width][:3]
                    ax.text(left + share / 2, y, str(n), ha="center", va="center", fontsize=7,
                            color="white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black")
            left += share
        pruned = total - int(row["kept"])
        if pruned > 0:
            ax.barh(y, 100.0 * pruned / total, left=left, color=PRUNED_COLOR, hatch="///", edgecolor="#bdbdbd",
                    linewidth=0, height=0.72)
        act = f" · a{row['act_bits']}" if row.get("act_bits") is not None else ""
        labels.append(f"{row['layer']}  {int(row['kept'])}/{total} ch{act}")
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the layer's output channels (%) — numbers in the bars are channels")
    handles = [_patch(colors[w], f"{w}-bit weights") for w in widths] + [_patch(PRUNED_COLOR, "pruned", "///")]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), fontsize=8,
              frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    if not rows:
        ax.text(50, 0, "no searchable layers recorded", ha="center", color="gray")
    return fig


def evolution_figure(history: Sequence[dict], metrics: Sequence[dict], target: str,
                     unit: Optional[CostUnit] = None, title: str = "", kept_epoch: Optional[int] = None):
    """Per-layer heat maps of kept channels and mean bits over the search epochs, and global curves.

    ``history``: rows ``{"epoch", "layers"}`` (one per search epoch; may be empty when it was not
    recorded). ``metrics``: the trial's epoch rows; the search ones give the curves. ``unit``: how
    to show the ``target`` cost (default: its display unit, fitted to the values). ``kept_epoch``:
    the epoch whose choice the search froze (its best, which need not be the last), marked with a
    red line on every panel and named in the title. None when there is nothing to draw.
    """
    search = [m for m in metrics if m.get("phase") == "search"]
    if not history and not search:
        return None
    if unit is None:
        unit = cost_unit(target).fitted(m.get(f"hard_cost/{target}", 0) for m in search)
    fig = new_figure(10.5, (3.0 + 0.3 * len(history[0]["layers"]) if history else 0) + 3.0)
    grid = fig.add_gridspec(2 if history else 1, 2, height_ratios=[1.2 + 0.08 * len(history[0]["layers"]), 1]
                            if history else None)
    if history:
        _heat_maps(fig, grid, history)
    if search:
        _curves(fig, grid[-1, 0], grid[-1, 1], search, target, unit)
    if kept_epoch is not None and kept_epoch >= 0:
        for ax in fig.axes:
            if ax.get_label() != "<colorbar>" and ax.get_xlabel() == "search epoch":
                ax.axvline(kept_epoch, color=KEPT_COLOR, linewidth=1.4, linestyle=":", label="kept")
        title = f"{title} · red line: epoch {kept_epoch}, the one the search kept" if title else \
            f"red line: epoch {kept_epoch}, the one the search kept"
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _heat_maps(fig, grid, history: Sequence[dict]) -> None:
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    layers = [r["layer"] for r in history[0]["layers"]]
    epochs = [h["epoch"] for h in history]
    kept = np.full((len(layers), len(epochs)), np.nan)
    bits = np.full_like(kept, np.nan)
    for j, h in enumerate(history):
        for row in h["layers"]:
            if row["layer"] in layers:
                i = layers.index(row["layer"])
                kept[i, j] = 100.0 * int(row["kept"]) / max(1, int(row.get("total") or row["kept"]))
                bits[i, j] = layer_mean_bits(row)
    extent = (min(epochs) - 0.5, max(epochs) + 0.5, len(layers) - 0.5, -0.5)
    widths = [b for h in history for r in h["layers"] for b in layer_bits(r)]
    for k, (data, cmap, label, lim) in enumerate((
            (kept, "Blues", "kept output channels (%)", (0, 100)),
            (bits, "viridis", "mean weight bits of kept channels", (min(widths or [0]), max(widths or [8]))))):
        ax = fig.add_subplot(grid[0, k])
        image = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap=cmap, vmin=lim[0], vmax=lim[1],
                          extent=extent, interpolation="nearest")
        if len(epochs) <= 10 and len(layers) <= 24:  # few enough cells to print every value
            for (i, j), value in np.ndenumerate(data):
                if not np.isnan(value):
                    level = (value - lim[0]) / max(1e-9, lim[1] - lim[0])
                    dark = level > 0.6 if k == 0 else level < 0.5  # Blues is dark at the top, viridis at the bottom
                    ax.text(epochs[j], i, f"{value:.0f}" if k == 0 else f"{value:.1f}", ha="center", va="center",
                            fontsize=7, color="white" if dark else "black")
        ax.set_yticks(range(len(layers)), layers if k == 0 else [""] * len(layers), fontsize=7)
        ax.set_xlabel("search epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.9)


def _curves(fig, cell_cost, cell_share, search: Sequence[dict], target: str, unit: CostUnit) -> None:
    from matplotlib.ticker import MaxNLocator

    epochs = [m["epoch"] for m in search]
    ax = fig.add_subplot(cell_cost)
    for key, style, label in ((f"hard_cost/{target}", "-o", "hard (argmax)"),
                              (f"soft_cost/{target}", "--", "soft (expected)")):
        values = [m.get(key) for m in search]
        if all(v is not None for v in values):
            ax.plot(epochs, [unit(v) for v in values], style, markersize=3, label=label)
    ax.set_xlabel("search epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(unit.label)
    ax.set_title(f"{target} during the search", fontsize=9)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax = fig.add_subplot(cell_share)
    if all("kept_fraction" in m for m in search):
        ax.plot(epochs, [100.0 * m["kept_fraction"] for m in search], "-o", markersize=3, color="#1f77b4",
                label="kept channels (%)")
    ax.set_ylabel("kept output channels (%)", color="#1f77b4")
    ax.set_ylim(0, 105)
    ax.set_xlabel("search epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if all("mean_bits" in m for m in search):
        twin = ax.twinx()
        twin.plot(epochs, [m["mean_bits"] for m in search], "-s", markersize=3, color="#2ca02c", label="mean bits")
        twin.set_ylabel("mean weight bits (kept weights)", color="#2ca02c")
        twin.set_ylim(0, max(m["mean_bits"] for m in search) + 1)
    ax.set_title("channels kept and mean bits (whole network)", fontsize=9)


def allocation_title(result: dict, unit: Optional[CostUnit], target: str, prefix: str = "") -> str:
    """``trial 3 · λ = 2.1 · val 95.1 % · test 94.0 % · memory 3.2 kB · kept 64 % · mean 5.1 bits``."""
    parts = [prefix or f"trial {result.get('trial')}"]
    parts += [f"{_param_name(k)} = {format_number(v, 3)}" for k, v in result.get("params", {}).items()]
    if "val_acc" in result:
        parts.append(f"val {result['val_acc']:.1f} %")
    if "test_acc" in result:
        parts.append(f"test {result['test_acc']:.1f} %")
    if unit is not None and target in result.get("costs", {}):
        parts.append(f"{target} {unit.format(result['costs'][target])}")
    if "kept_fraction" in result:
        parts.append(f"kept {100 * result['kept_fraction']:.0f} %")
    if "mean_bits" in result:
        parts.append(f"mean {result['mean_bits']:.2f} bits")
    return " · ".join(parts)


def allocation_rows(rows: Sequence[dict]) -> List[List[str]]:
    """Table rows: layer, kept/total, channels per bit-width, activation bits, mean bits."""
    out = []
    for row in rows:
        bits = layer_bits(row)
        out.append([row["layer"], f"{int(row['kept'])}/{int(row.get('total') or row['kept'])}",
                    " ".join(f"{b}b:{n}" for b, n in sorted(bits.items(), reverse=True)),
                    str(row.get("act_bits", "")), f"{layer_mean_bits(row):.2f}"])
    return out


ALLOCATION_HEADER = ["layer", "kept / total channels", "weight bits (channels)", "activation bits", "mean bits"]


def _param_name(name: str) -> str:
    return {"lambda": "λ", "lambda2": "λ₂", "temperature_decay": "T decay"}.get(name, name)


def _patch(color, label, hatch=None):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, edgecolor="#bdbdbd" if hatch else color, hatch=hatch, label=label)
