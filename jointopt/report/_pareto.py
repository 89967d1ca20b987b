"""The Pareto figure: accuracy against a hardware cost, one run or several overlaid.

The front is always selected on validation accuracy (the tuner's objective); ``accuracy="test"``
plots the same trials at their test accuracy. Uniform baselines (every weight at 8, 4 or 2 bits)
are marked, and the float network is a dashed line: it has no integer cost.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from ._render import FLOAT_COLOR, RUN_COLORS, new_figure
from .._pareto import pareto_front
from ._rundata import ACCURACY_KEYS, RunData
from ._units import CostUnit, cost_unit, format_number

_BASELINE_MARKERS = {8: "s", 4: "D", 2: "^", 1: "v", 16: "P"}


def plot_unit(runs: Sequence[RunData], target: str) -> CostUnit:
    """The axis unit that suits every value the figure will show."""
    values = [r["costs"][target] for run in runs for r in run.results if target in r.get("costs", {})]
    values += [b["costs"][target] for run in runs for b in run.baselines.values() if target in b.get("costs", {})]
    return cost_unit(target).fitted(values)


def pareto_figure(run: RunData, target: Optional[str] = None, log_cost: bool = False, accuracy: str = "val",
                  min_accuracy: Optional[float] = None):
    """Accuracy vs ``target`` cost of one run: front highlighted, dominated trials faded, baselines.
    ``min_accuracy``: the accuracy axis starts there; the trials below it are counted on the figure."""
    target = target or run.target
    unit = plot_unit([run], target)
    fig = new_figure(8.2, 5.6)
    ax = fig.add_subplot()
    front = _draw_run(ax, run, target, unit, ACCURACY_KEYS[accuracy], RUN_COLORS[0], label=None)
    model = run.config.get("model", {}).get("name", "")
    data = run.dataset.get("name") or run.config.get("data", {}).get("name", "")
    where = f"{model} on {data}: " if model else ""
    ax.set_title(f"{where}accuracy vs {target} — {len(run.results)} trials, {len(front)} on the Pareto front",
                 fontsize=11)
    _finish_axes(ax, unit, accuracy, log_cost, w8=_w8_cost(run, target))
    _floor(ax, [run], target, ACCURACY_KEYS[accuracy], min_accuracy)
    if not run.results:
        ax.text(0.5, 0.5, "no completed trials yet", transform=ax.transAxes, ha="center", color="gray")
    return fig


def compare_figure(runs: Sequence[RunData], target: Optional[str] = None, log_cost: bool = False,
                   accuracy: str = "val", labels: Optional[Sequence[str]] = None, min_accuracy: Optional[float] = None):
    """Several studies' fronts on one axis (e.g. two cost-model targets, or jointopt vs a baseline);
    ``min_accuracy`` as in :func:`pareto_figure`."""
    target = target or runs[0].target
    labels = list(labels) if labels else run_labels(runs)
    unit = plot_unit(runs, target)
    fig = new_figure(8.6, 5.8)
    ax = fig.add_subplot()
    for i, (run, label) in enumerate(zip(runs, labels)):
        _draw_run(ax, run, target, unit, ACCURACY_KEYS[accuracy], RUN_COLORS[i % len(RUN_COLORS)], label=label)
    ax.set_title(f"Pareto fronts compared on {target} ({len(runs)} studies)", fontsize=11)
    _finish_axes(ax, unit, accuracy, log_cost, w8=None)
    _key_to_markers(ax, runs, target)
    _floor(ax, runs, target, ACCURACY_KEYS[accuracy], min_accuracy)
    return fig


def _floor(ax, runs: Sequence[RunData], target: str, acc: str, min_accuracy: Optional[float]) -> None:
    """Start the accuracy axis at ``min_accuracy`` (collapsed trials otherwise squeeze the front into a
    sliver at the top) and say on the figure how many trials lie below it."""
    if min_accuracy is None:
        return
    shown = [r for run in runs for r in run.results if target in r.get("costs", {})]
    below = sum(1 for r in shown if r[acc] < min_accuracy)
    baselines = sorted({name for run in runs for name, b in run.baselines.items() if acc in b and b[acc] < min_accuracy})
    highest = max([r[acc] for r in shown] + [b[acc] for run in runs for b in run.baselines.values() if acc in b]
                  + [min_accuracy + 1.0])
    ax.set_ylim(min_accuracy, highest + 0.06 * (highest - min_accuracy))  # the margin _finish_axes gives
    hidden = ([f"{below} trial{'s' if below != 1 else ''}"] if below else []) + \
        ([f"baseline{'s' if len(baselines) > 1 else ''} {', '.join(baselines)}"] if baselines else [])
    if hidden:
        ax.text(0.01, 0.01, f"{' and '.join(hidden)} below {min_accuracy:g} % not shown",
                transform=ax.transAxes, fontsize=8, color="#555555", va="bottom")


def _key_to_markers(ax, runs: Sequence[RunData], target: str) -> None:
    """Legend entries, in grey, for the marker shapes every run shares: baselines, the float line."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    widths = sorted({int(b.get("bits") or 0) for run in runs for name, b in run.baselines.items()
                     if name != "float" and target in b.get("costs", {})}, reverse=True)
    for bits in widths:
        handles.append(Line2D([], [], marker=_BASELINE_MARKERS.get(bits, "X"), linestyle="", color="#777777"))
        labels.append(f"uniform w{bits} baseline (run colour)")
    if any("float" in run.baselines for run in runs):
        handles.append(Line2D([], [], linestyle="--", color="#777777"))
        labels.append("float network (run colour)")
    ax.legend(handles, labels, loc="lower right", fontsize=8, framealpha=0.9)


def run_labels(runs: Sequence[RunData]) -> List[str]:
    """``name (target memory)``, ``name (magnitude, target memory)`` for a method other than the joint
    search; the parent folder is added where names repeat."""
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        names = [f"{run.path.resolve().parent.name}/{run.name}" for run in runs]
    return [f"{n} ({'' if run.method == 'joint' else run.method + ', '}target {run.target})"
            for n, run in zip(names, runs)]


def _draw_run(ax, run: RunData, target: str, unit: CostUnit, acc: str, color, label: Optional[str]) -> List[dict]:
    compare = label is not None
    points = [r for r in run.results if target in r.get("costs", {})]
    front = pareto_front(points, target)
    on_front = {r["trial"] for r in front}
    others = [r for r in points if r["trial"] not in on_front]
    if others:
        ax.scatter([unit(r["costs"][target]) for r in others], [r[acc] for r in others], s=24 if compare else 30,
                   color=color if compare else "#9a9a9a", alpha=0.25 if compare else 0.45, linewidths=0,
                   label=None if compare else f"dominated trials ({len(others)})", zorder=2)
    if front:
        xs, ys = [unit(r["costs"][target]) for r in front], [r[acc] for r in front]
        ax.step(xs, ys, where="post", color=color, linewidth=1.6, alpha=0.9, zorder=3)
        ax.scatter(xs, ys, s=48, color=color, edgecolors="black", linewidths=0.6, zorder=4,
                   label=f"{label}: front ({len(front)} of {len(points)} trials)" if compare
                   else f"Pareto front ({len(front)} trials, selected on validation)")
        if not compare or len(front) <= 12:
            for r, x, y in zip(front, xs, ys):
                ax.annotate(f"#{r['trial']}", (x, y), textcoords="offset points", xytext=(4, -11), fontsize=7,
                            color=color)
    for name, base in run.baselines.items():
        if name == "float" or target not in base.get("costs", {}):
            continue
        bits = int(base.get("bits") or name.lstrip("w") or 0)
        x, y = unit(base["costs"][target]), base[acc]
        text = f"w{bits}a{run.act_bits}"
        ax.scatter([x], [y], marker=_BASELINE_MARKERS.get(bits, "X"), s=60, zorder=5,
                   color=color if compare else "black", edgecolors="black", linewidths=0.6, alpha=0.8,
                   label=None if compare else f"uniform {text}: {y:.1f} % @ {format_number(x)} {unit.unit}".rstrip())
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8,
                    color=color if compare else "black")
    float_base = run.baselines.get("float")
    if float_base and acc in float_base:
        ax.axhline(float_base[acc], color=color if compare else FLOAT_COLOR, linestyle="--", linewidth=1,
                   alpha=0.8, zorder=1, label=None if compare else f"float network (warm-up): {float_base[acc]:.1f} %")
    return front


def _w8_cost(run: RunData, target: str) -> Optional[float]:
    base = run.baselines.get("w8", {})
    return base.get("costs", {}).get(target)


def _finish_axes(ax, unit: CostUnit, accuracy: str, log_cost: bool, w8: Optional[float]) -> None:
    if log_cost:
        ax.set_xscale("log")
    ax.margins(x=0.07, y=0.06)  # room for the labels next to the outermost points
    ax.set_xlabel(unit.label + (", log scale" if log_cost else ""))
    ax.set_ylabel(f"{'validation' if accuracy == 'val' else 'test'} accuracy (%)")
    ax.grid(True, which="major", alpha=0.3)
    if log_cost:
        ax.grid(True, which="minor", alpha=0.1)
    axes = [ax.xaxis]
    if w8:
        ref = unit(w8)
        top = ax.secondary_xaxis("top", functions=(lambda x: 100.0 * x / ref, lambda p: p * ref / 100.0))
        top.set_xlabel("% of the uniform w8 cost", fontsize=9)
        axes.append(top.xaxis)
    if log_cost:  # plain numbers at 1-2-5 steps, not powers of ten
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        low, high = ax.get_xlim()
        subs = (1.0, 2.0, 5.0) if high / max(low, 1e-300) > 30 else tuple(float(k) for k in range(1, 10))
        for axis in axes:
            axis.set_major_locator(LogLocator(base=10, subs=subs))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
