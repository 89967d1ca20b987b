"""Search overhead: one joint search step against one float training step of the same model.

For each model, three training steps are timed on the same random batch with the same number of
threads, interleaved (float, joint a8, joint a2/4/8, float, ...) so that load on a shared machine
hits them alike; the medians and their ratios are reported:

* ``float`` — the original model with BatchNorm (not folded), cross-entropy, Adam (fused, as every
  phase uses it: ``jointopt.train.schedule.fused_adam``).
* ``joint`` — the searchable network (BN folded, weights ``(0, 2, 4, 8)`` per channel, 8-bit
  activations), soft mode: ``task + λ·cost('memory')/ref``, backward, Adam on the weights and the
  default selector optimizer (Adam) on the selectors — what ``TrialRunner.search`` does per batch.
* ``joint_act`` — the same with activation widths searched over ``(2, 4, 8)``.

Also: the time of the cost evaluation (forward inside the step; forward + backward on its own) as
a fraction of the joint step, and the peak resident memory of each configuration, each run in its
own subprocess (``VmHWM``, the high-water RSS, after the steps), as a ratio to the float subprocess: both of the
whole process and of the growth over the process after ``import torch, jointopt``.

Run ``python -m benchmarks overhead --help``.
"""
from __future__ import annotations

import os

# On a shared machine, OpenMP worker threads that spin while waiting for a busy core stall every
# parallel operation; passive waiting (set before torch starts its thread pool) keeps the timings
# about the work. It applies to every configuration alike; export OMP_WAIT_POLICY=ACTIVE to
# measure the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime
import json
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

try:  # run as part of the benchmarks package, or as a script
    from ._machine import cpu_model
except ImportError:
    from _machine import cpu_model

CONFIGS = ("float", "joint", "joint_act")
ACT_BITS = {"joint": (8,), "joint_act": (2, 4, 8)}
MODELS = ("resnet8", "dscnn", "mobilenetv1_025")
TARGETS = {"joint": 1.3, "joint_act": 1.8, "rss": 1.3}
RESULTS = Path(__file__).resolve().parent / "results"


class Step:
    """One training step of a configuration, plus (for joint ones) a standalone cost evaluation."""

    def __init__(self, model_name: str, config: str, batch: int, lam: float = 0.1, seed: int = 0):
        import torch
        import torch.nn.functional as F

        import jointopt
        from jointopt.train.schedule import fused_adam
        from jointopt.zoo import model_info

        info = model_info(model_name)
        torch.manual_seed(seed)
        model = jointopt.create_model(model_name)
        self.x = torch.randn(batch, *info.input_shape)
        self.y = torch.randint(0, info.num_classes, (batch,))
        self.cost_s = 0.0
        self._F = F
        if config == "float":
            self.net = model.train()
            self.opts = [fused_adam(self.net.parameters(), lr=1e-3)]
            self.cost = None
            return
        space = jointopt.SearchSpace(act_bits=ACT_BITS[config])
        self.net = jointopt.convert(model.eval(), self.x, space).train().set_mode("soft")
        self.opts = [fused_adam(self.net.weight_parameters(), lr=1e-3),
                     fused_adam(self.net.selector_parameters(), lr=1e-2, betas=(0.9, 0.999))]
        self.cost = jointopt.get_cost_model("memory")
        self.ref = self.net.reference_cost(self.cost)
        self.lam = lam

    def __call__(self) -> None:
        loss = self._F.cross_entropy(self.net(self.x), self.y)
        if self.cost is not None:
            start = time.perf_counter()
            reg = self.lam * self.net.cost(self.cost) / self.ref
            self.cost_s = time.perf_counter() - start
            loss = loss + reg
        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in self.opts:
            opt.step()

    def cost_only(self) -> float:
        """Seconds of one cost forward + backward on its own (selector gradients cleared after)."""
        start = time.perf_counter()
        (self.lam * self.net.cost(self.cost) / self.ref).backward()
        elapsed = time.perf_counter() - start
        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        return elapsed


def _timed(fn: Callable[[], None], steps: int) -> tuple:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def time_model(model_name: str, args) -> dict:
    """Interleaved repetitions of every configuration; medians (s) and ratios to float."""
    steps = {c: Step(model_name, c, args.batch) for c in CONFIGS}
    for fn in steps.values():
        for _ in range(args.warmup):
            fn()
    wall: Dict[str, List[float]] = {c: [] for c in CONFIGS}
    cpu: Dict[str, List[float]] = {c: [] for c in CONFIGS}
    cost_inline: Dict[str, List[float]] = {c: [] for c in CONFIGS[1:]}
    cost_alone: Dict[str, List[float]] = {c: [] for c in CONFIGS[1:]}
    for _ in range(args.repeats):
        for c in CONFIGS:
            w, p = _timed(steps[c], args.steps)
            wall[c].append(w)
            cpu[c].append(p)
            if c != "float":
                cost_inline[c].append(steps[c].cost_s)
                cost_alone[c].append(steps[c].cost_only())
    med = {c: statistics.median(v) for c, v in wall.items()}
    med_cpu = {c: statistics.median(v) for c, v in cpu.items()}
    row = {"model": model_name, "wall_s": med, "cpu_s": med_cpu,
           "ratio": {c: med[c] / med["float"] for c in CONFIGS[1:]},
           "ratio_cpu": {c: med_cpu[c] / med_cpu["float"] for c in CONFIGS[1:]},
           "ratio_min": {c: min(wall[c]) / min(wall["float"]) for c in CONFIGS[1:]},
           "spread": {c: _spread(wall[c]) for c in CONFIGS},
           "cost_forward_fraction": {c: statistics.median(v) / med[c] for c, v in cost_inline.items()},
           "cost_fwd_bwd_fraction": {c: statistics.median(v) / med[c] for c, v in cost_alone.items()},
           "cost_fwd_bwd_s": {c: statistics.median(v) for c, v in cost_alone.items()}}
    return row


def _spread(values: List[float]) -> float:
    """Interquartile range relative to the median: how noisy the repetitions were."""
    if len(values) < 4:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return (q[2] - q[0]) / statistics.median(values)


# -- what dominates: torch.profiler over a few steps of each configuration ------------------------------
def profile_model(model_name: str, args, top: int = 8) -> dict:
    """Top operators by self CPU time (share of the profiled steps) for every configuration."""
    from torch.profiler import ProfilerActivity, profile

    out = {}
    for config in CONFIGS:
        step = Step(model_name, config, args.batch)
        for _ in range(args.warmup):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.profile_steps):
                step()
        events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
        total = sum(e.self_cpu_time_total for e in events)
        events.sort(key=lambda e: -e.self_cpu_time_total)
        out[config] = [{"op": e.key, "share": e.self_cpu_time_total / total,
                        "calls_per_step": e.count / args.profile_steps} for e in events[:top]]
        out[config + "_ops_per_step"] = sum(e.count for e in events) / args.profile_steps
    return out


# -- peak memory, one subprocess per configuration ---------------------------------------------------
def peak_rss_kb() -> int:
    """High-water resident set of this process in KiB.

    ``VmHWM`` from ``/proc/self/status`` where there is one: Linux carries ``ru_maxrss`` over
    ``fork``/``exec``, so a child started by a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_child(model_name: str, config: str, batch: int, steps: int, threads: int) -> None:
    import torch

    import jointopt  # noqa: F401  (the baseline includes the library)

    torch.set_num_threads(threads)
    base_kb = peak_rss_kb()
    step = Step(model_name, config, batch)
    for _ in range(steps):
        step()
    print(json.dumps({"base_kb": base_kb, "peak_kb": peak_rss_kb()}))


def measure_rss(model_name: str, args) -> dict:
    out = {}
    for config in CONFIGS:
        cmd = [sys.executable, "-m", "benchmarks.overhead", "--rss-child", model_name, config,
               "--batch", str(args.batch), "--threads", str(args.threads), "--rss-steps", str(args.rss_steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                              check=True)
        out[config] = json.loads(proc.stdout.strip().splitlines()[-1])
    f = out["float"]
    for config in CONFIGS[1:]:
        c = out[config]
        c["peak_ratio"] = c["peak_kb"] / f["peak_kb"]
        c["growth_ratio"] = (c["peak_kb"] - c["base_kb"]) / max(1, f["peak_kb"] - f["base_kb"])
    return out


# -- report -------------------------------------------------------------------------------------------
def machine() -> dict:
    import torch

    cpu = cpu_model()
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def _verdicts(rows: List[dict]) -> dict:
    out = {}
    for row in rows:
        rss = row.get("rss", {})
        out[row["model"]] = {
            "joint": row["ratio"]["joint"] <= TARGETS["joint"],
            "joint_act": row["ratio"]["joint_act"] <= TARGETS["joint_act"],
            **({"rss": max(rss[c]["peak_ratio"] for c in CONFIGS[1:]) <= TARGETS["rss"]} if rss else {}),
        }
    return out


def _x(value: float) -> str:
    return f"{value:.2f}×"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _load(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _with_min(row: dict, config: str) -> str:
    return _x(row["ratio"][config]) + (f" ({_x(row['ratio_min'][config])})" if "ratio_min" in row else "")


def _rss_pair(row: dict, key: str) -> str:
    rss = row.get("rss")
    return f"{_x(rss['joint'][key])} / {_x(rss['joint_act'][key])}" if rss else "—"


def _header(result: dict) -> List[str]:
    m, env = result["machine"], result["run"]
    return [
        "# Search overhead: joint search step vs float training step", "",
        f"- command: `{env['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores (shared with other users); torch {m['torch']}, "
        f"Python {m['python']}; OMP_WAIT_POLICY={m.get('omp_wait_policy')}",
        f"- date: {env['date']}; threads {env['threads']}, batch {env['batch']}, "
        f"{env['repeats']} interleaved repetitions × {env['steps']} steps (medians)",
        f"- load average (1/5/15 min): before {_load(env['load_before'])}, after {_load(env['load_after'])}",
        f"- targets: joint ≤ {TARGETS['joint']}×, joint with activation search ≤ {TARGETS['joint_act']}×, "
        f"peak RSS ≤ {TARGETS['rss']}× float", "",
    ]


def _main_table(result: dict) -> List[str]:
    lines = ["| model | float step | joint (a8) | joint (a2/4/8) | cost fwd / fwd+bwd (% of a8 step) "
             "| peak RSS joint / joint_act | RSS growth joint / joint_act | targets met |",
             "|---|---|---|---|---|---|---|---|"]
    verdicts = _verdicts(result["rows"])
    for row in result["rows"]:
        met = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in verdicts[row["model"]].items())
        ratio = {c: f"**{_x(row['ratio'][c])}** (min {_x(row['ratio_min'][c])}, cpu {_x(row['ratio_cpu'][c])})"
                 for c in CONFIGS[1:]}
        cost = f"{_pct(row['cost_forward_fraction']['joint'])} / {_pct(row['cost_fwd_bwd_fraction']['joint'])}"
        float_ms = f"{row['wall_s']['float'] * 1e3:.1f} ms (±{row['spread']['float'] * 50:.0f}%)"
        lines.append(f"| {row['model']} | {float_ms} | {ratio['joint']} | {ratio['joint_act']} | {cost} "
                     f"| {_rss_pair(row, 'peak_ratio')} | {_rss_pair(row, 'growth_ratio')} | {met} |")
    return lines + ["", _verdict_line(result["rows"])]


def _verdict_line(rows: List[dict]) -> str:
    """One sentence: every target met, or which are not and by how much."""
    misses = []
    for row in rows:
        for c in CONFIGS[1:]:
            if row["ratio"][c] > TARGETS[c]:
                misses.append(f"{row['model']} {c} {_x(row['ratio'][c])} > {TARGETS[c]}× "
                              f"(by {row['ratio'][c] - TARGETS[c]:.2f}×)")
        worst = max((row["rss"][c]["peak_ratio"] for c in CONFIGS[1:]), default=0.0) if row.get("rss") else 0.0
        if worst > TARGETS["rss"]:
            misses.append(f"{row['model']} peak RSS {_x(worst)} > {TARGETS['rss']}×")
    if misses:
        return "**Targets not met:** " + "; ".join(misses) + ". See the profile below for what dominates."
    cpu_misses = [f"{row['model']} {c} {_x(row['ratio_cpu'][c])}" for row in rows for c in CONFIGS[1:]
                  if row["ratio_cpu"][c] > TARGETS[c]]
    agree = "the CPU-time ratios agree" if not cpu_misses else "but not on CPU time: " + ", ".join(cpu_misses)
    return f"**Every target is met** on the wall-clock medians ({agree})."


def _before_table(result: dict) -> List[str]:
    before = result.get("before")
    if not before:
        return []
    lines = ["", f"Before → after. Before: {before.get('label') or 'an earlier run'} ({before['run']['date']}, "
             f"load {_load(before['run']['load_before'])}, same command).", "",
             "| model | joint (a8), median (min) | joint (a2/4/8), median (min) | CPU-time ratios a8 / a2/4/8 "
             "| cost fwd+bwd (% of a8 step) | peak RSS joint / joint_act |", "|---|---|---|---|---|---|"]
    old = {r["model"]: r for r in before["rows"]}
    for row in result["rows"]:
        b = old.get(row["model"])
        if b is None:
            continue
        cpu = [f"{_x(r['ratio_cpu']['joint'])} / {_x(r['ratio_cpu']['joint_act'])}" for r in (b, row)]
        cost = [_pct(r["cost_fwd_bwd_fraction"]["joint"]) for r in (b, row)]
        lines.append(f"| {row['model']} | {_with_min(b, 'joint')} → {_with_min(row, 'joint')} "
                     f"| {_with_min(b, 'joint_act')} → {_with_min(row, 'joint_act')} | {cpu[0]} → {cpu[1]} "
                     f"| {cost[0]} → {cost[1]} | {_rss_pair(b, 'peak_ratio')} → {_rss_pair(row, 'peak_ratio')} |")
    return lines


def _profile_lines(result: dict) -> List[str]:
    lines = []
    for label, res in (("after", result), ("before", result.get("before") or {})):
        profiled = [r for r in res.get("rows", []) if r.get("profile")]
        if profiled:
            lines += ["", f"Profile ({label}; torch.profiler, top operators by self CPU time, share of the "
                      "profiled steps):", ""]
        for row in profiled:
            prof = row["profile"]
            for config in CONFIGS:
                ops = ", ".join(f"{e['op'].replace('aten::', '')} {e['share'] * 100:.0f}%" for e in prof[config][:6])
                events = prof[config + "_ops_per_step"]
                lines.append(f"- {row['model']} / {config} ({events:.0f} profiler events per step): {ops}")
    return lines


def markdown(result: dict) -> str:
    lines = _header(result) + _main_table(result) + _before_table(result) + _profile_lines(result)
    lines += ["", "Method: ratios of wall-clock medians of interleaved repetitions against the float step measured "
              "in the same run (bold; the targets are judged on them); 'min' is the ratio of the fastest repetitions "
              "(what a quiet machine approaches), 'cpu' the ratio of process CPU time of all threads (less sensitive "
              "to other processes). ± is half the interquartile range of the float repetitions. Peak RSS: the "
              f"high-water RSS (`VmHWM`) of a fresh subprocess per configuration after {result['run']['rss_steps']} "
              "steps; 'growth' is the peak minus the process's RSS after `import torch, jointopt`, relative to the "
              "same for float."]
    if result.get("notes"):
        lines += ["", "Notes:", "", *(f"- {note}" for note in result["notes"])]
    return "\n".join(lines) + "\n"


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated zoo names (default: %(default)s)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--stem", default="overhead", help="file name of the results, without .json/.md (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15, help="interleaved repetitions (medians are reported)")
    p.add_argument("--steps", type=int, default=3, help="training steps per timed repetition")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rss-steps", type=int, default=20, help="steps run before reading the peak RSS")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--profile", action="store_true", help="also record the top operators of each configuration")
    p.add_argument("--profile-steps", type=int, default=5)
    p.add_argument("--out", type=Path, default=RESULTS, help="where overhead.json/.md go ('-': print only)")
    p.add_argument("--before", type=Path, help="an earlier overhead.json to compare with (kept under 'before')")
    p.add_argument("--label", default="", help="what was measured (e.g. a commit), stored in the JSON")
    p.add_argument("--note", action="append", default=[], help="a line for the report's notes (repeatable)")
    p.add_argument("--rss-child", nargs=2, metavar=("MODEL", "CONFIG"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.rss_child:
        _rss_child(*args.rss_child, args.batch, args.rss_steps, args.threads)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = []
    for name in args.models.split(","):
        row = time_model(name, args)
        if not args.no_rss:
            row["rss"] = measure_rss(name, args)
        if args.profile:
            row["profile"] = profile_model(name, args)
        rows.append(row)
        print(f"{name}: float {row['wall_s']['float'] * 1e3:.1f} ms, joint {row['ratio']['joint']:.2f}x, "
              f"joint_act {row['ratio']['joint_act']:.2f}x (cpu {row['ratio_cpu']['joint']:.2f}x / "
              f"{row['ratio_cpu']['joint_act']:.2f}x), cost {row['cost_fwd_bwd_fraction']['joint'] * 100:.1f}%"
              + (f", rss {row['rss']['joint']['peak_ratio']:.2f}x / {row['rss']['joint_act']['peak_ratio']:.2f}x"
                 if "rss" in row else ""), flush=True)
    result = {
        "benchmark": "overhead", "label": args.label, "machine": machine(),
        "run": {"command": "python -m benchmarks overhead " + shlex.join(sys.argv[1:] if argv is None else argv),
                "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "threads": args.threads,
                "batch": args.batch, "repeats": args.repeats, "steps": args.steps, "rss_steps": args.rss_steps,
                "load_before": list(load_before), "load_after": list(os.getloadavg())},
        "targets": TARGETS, "rows": rows, "notes": list(args.note),
    }
    result["verdicts"] = _verdicts(rows)
    if args.before:
        result["before"] = json.loads(args.before.read_text())
        result["before"].pop("before", None)
    text = markdown(result)
    if str(args.out) == "-":
        print(text)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / f"{args.stem}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
