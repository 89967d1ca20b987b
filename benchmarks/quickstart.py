"""Quickstart wall time: the README's main command end to end, per phase, against float training.

    python -m benchmarks quickstart                 # one run (about 1-2 min on 2 cores) -> results/quickstart.{md,json}
    python -m benchmarks quickstart --repeats 3     # the median of three runs
    python -m benchmarks quickstart --out -         # print only

Each repetition runs ``jointopt search --out RUN`` (the command the README's first set-up line runs,
without the install) in a fresh process and times it with the wall clock and the children's CPU
time. The phases are read from the run's own ``search.log`` (one line per event, with
milliseconds): start-up (process start to the study's first event: imports, data, the run
directory), warm-up, baselines (float evaluation and the uniform w8/w4/w2 networks), each trial's
search and fine-tune and the rest of the trial (freeze, evaluation, files), and the end (front,
tables). Next to each training phase: the time the same number of plain float training steps of
the quickstart's model take, measured in the same run in this process (digits_cnn with BatchNorm,
cross-entropy, Adam, the quickstart's batch size and threads), as a ratio: how much more than
"just training" a phase costs, evaluation and bookkeeping included.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime
import json
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

try:  # run as part of the benchmarks package, or as a script
    from ._machine import cpu_model
    from ._studies import analyse, write_results
except ImportError:
    from _machine import cpu_model
    from _studies import analyse, write_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GOAL_S = 60.0  # issue 15: the quickstart in at most a minute on 2 cores
LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)(?:\.(\d+))? pid=\d+ (\w+) ?(.*?) (\{.*\})$")


# -- the run's log ------------------------------------------------------------------------------------
def parse_log(path: Path, day: datetime.date) -> List[dict]:
    """The events of ``search.log``: kind, trial, phase, epoch, data and the wall-clock time (s)."""
    events = []
    for text in path.read_text().splitlines():
        m = LINE.match(text)
        if not m:
            continue
        hh, mm, ss, frac, kind, where, data = m.groups()
        stamp = datetime.datetime.combine(day, datetime.time(int(hh), int(mm), int(ss)))
        seconds = stamp.timestamp() + (float("0." + frac) if frac else 0.0)
        fields = dict(part.split("=", 1) for part in where.split() if "=" in part)
        events.append({"kind": kind, "time": seconds, "trial": int(fields["trial"]) if "trial" in fields else None,
                       "phase": fields.get("phase"), "baseline": fields.get("baseline"), "data": json.loads(data)})
    return events


def phases(events: List[dict], started: float, ended: float) -> dict:
    """Seconds and optimizer steps per phase, from the log's events."""
    out = {"startup_s": events[0]["time"] - started, "end_s": ended - events[-1]["time"], "trials": {}}
    open_phase: Dict[tuple, dict] = {}
    warmup = {"s": 0.0, "steps": 0}
    baselines = {"s": 0.0, "steps": 0}
    first_trial_start = last_trial_end = None
    for e in events:
        key = (e["trial"], e["baseline"], e["phase"])
        if e["kind"] == "phase_start":
            open_phase[key] = {"start": e["time"], "steps": e["data"].get("steps") or 0, "epochs": 0}
        elif e["kind"] == "epoch" and key in open_phase:
            open_phase[key]["epochs"] += 1
        elif e["kind"] == "phase_end" and key in open_phase:
            p = open_phase.pop(key)
            seconds, steps = e["time"] - p["start"], p["steps"] * p["epochs"]
            if e["phase"] == "warmup":
                warmup = {"s": seconds, "steps": steps}
            elif e["baseline"] is not None or (e["trial"] is not None and e["trial"] < 0):  # older logs: trial=-bits
                baselines["steps"] += steps
            else:
                t = out["trials"].setdefault(e["trial"], {})
                t[f"{e['phase']}_s"], t[f"{e['phase']}_steps"] = seconds, steps
        elif e["kind"] == "trial_start":
            first_trial_start = e["time"] if first_trial_start is None else first_trial_start
            out["trials"].setdefault(e["trial"], {})["start"] = e["time"]
        elif e["kind"] == "trial_end":
            last_trial_end = e["time"]
            t = out["trials"].setdefault(e["trial"], {})
            t["total_s"] = e["time"] - t.get("start", e["time"])
    warm_end = next((e["time"] for e in events if e["kind"] == "phase_end" and e["phase"] == "warmup"), events[0]["time"])
    baselines["s"] = (first_trial_start or warm_end) - warm_end
    out["study_setup_s"] = next((e["time"] for e in events if e["kind"] == "phase_start"), events[0]["time"]) - events[0]["time"]
    out["warmup"], out["baselines"] = warmup, baselines
    out["trials_s"] = (last_trial_end or warm_end) - (first_trial_start or warm_end)
    out["after_trials_s"] = events[-1]["time"] - (last_trial_end or events[-1]["time"])
    for t in out["trials"].values():
        t.pop("start", None)
        t["rest_s"] = t.get("total_s", 0.0) - t.get("search_s", 0.0) - t.get("finetune_s", 0.0)
    return out


# -- one run of the README's command ----------------------------------------------------------------
def command() -> List[str]:
    exe = shutil.which("jointopt")
    return [exe, "search"] if exe else [sys.executable, "-m", "jointopt", "search"]


def run_once(folder: Path, extra: Sequence[str] = (), brief: bool = False) -> dict:
    run = folder / "run"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    wall = time.perf_counter()
    proc = subprocess.run(command() + ["--out", str(run), *extra], capture_output=True, text=True)
    wall = time.perf_counter() - wall
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"jointopt search failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    front = json.loads((run / "front.json").read_text())
    if brief:  # several processes may write the log: only the wall time and the front are compared
        return {"wall_s": wall, "extra": list(extra), "trials": len(front.get("results", [])),
                "front_points": len(front.get("front", [])),
                "hypervolume_val": analyse(front)["hypervolume"]["front_val"]}
    events = parse_log(run / "search.log", datetime.date.fromtimestamp(started))
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "phases": phases(events, started, ended), "front_points": len(front.get("front", [])),
            "trials": len(front.get("results", [])), "stdout_tail": proc.stdout.splitlines()[-3:]}


# -- float training steps of the same model -----------------------------------------------------------
def float_step_s(steps: int, repeats: int) -> dict:
    """Median seconds of one float training step of the quickstart's model on its data."""
    import torch
    import torch.nn.functional as F

    import jointopt
    from jointopt.tune import quickstart_config

    config = quickstart_config()
    if config.threads:
        torch.set_num_threads(config.threads)
    data = jointopt.get_dataset(config.data.name)
    x_all, y_all = data.train.x.float() / 255.0, data.train.y  # the values do not change the time of a step
    torch.manual_seed(0)
    model = jointopt.create_model(config.model.name, **config.model.kwargs).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = config.data.batch_size
    n = len(x_all)

    def step(i: int) -> None:
        lo = (i * batch) % max(n - batch, 1)
        loss = F.cross_entropy(model(x_all[lo:lo + batch]), y_all[lo:lo + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(20):
        step(i)
    samples = []
    for r in range(repeats):
        t = time.perf_counter()
        for i in range(steps):
            step(i)
        samples.append((time.perf_counter() - t) / steps)
    return {"median_s": statistics.median(samples), "samples_s": samples, "batch": batch,
            "threads": torch.get_num_threads()}


# -- report ------------------------------------------------------------------------------------------
def summarise(runs: List[dict], step_s: float) -> dict:
    def med(values):
        return statistics.median(values) if values else 0.0

    def per_run(fn):
        return med([fn(r) for r in runs])

    trials = [t for r in runs for t in r["phases"]["trials"].values()]
    search_steps = med([t.get("search_steps", 0) for t in trials])
    finetune_steps = med([t.get("finetune_steps", 0) for t in trials])
    warm_steps = per_run(lambda r: r["phases"]["warmup"]["steps"])
    base_steps = per_run(lambda r: r["phases"]["baselines"]["steps"])
    rows = [
        ("start-up (imports, data, run directory)", per_run(lambda r: r["phases"]["startup_s"] + r["phases"]["study_setup_s"]), 0),
        ("warm-up", per_run(lambda r: r["phases"]["warmup"]["s"]), warm_steps),
        ("baselines (float eval, w8/w4/w2)", per_run(lambda r: r["phases"]["baselines"]["s"]), base_steps),
        ("one trial: search", med([t.get("search_s", 0.0) for t in trials]), search_steps),
        ("one trial: fine-tune", med([t.get("finetune_s", 0.0) for t in trials]), finetune_steps),
        ("one trial: freeze, evaluation, files", med([t["rest_s"] for t in trials]), 0),
        ("one trial, whole", med([t.get("total_s", 0.0) for t in trials]), search_steps + finetune_steps),
        ("all trials", per_run(lambda r: r["phases"]["trials_s"]), 0),
        ("end (front, tables) and exit", per_run(lambda r: r["phases"]["after_trials_s"] + r["phases"]["end_s"]), 0),
    ]
    table = [{"phase": name, "s": s, "steps": int(steps), "float_s": steps * step_s if steps else None,
              "ratio": s / (steps * step_s) if steps else None} for name, s, steps in rows]
    return {"wall_s": per_run(lambda r: r["wall_s"]), "wall_all_s": [r["wall_s"] for r in runs],
            "cpu_s": per_run(lambda r: r["cpu_s"]), "table": table, "trials": runs[0]["trials"],
            "front_points": [r["front_points"] for r in runs]}


def render(record: dict) -> str:
    s = record["summary"]
    lines = ["# Quickstart wall time (`jointopt search`, the built-in quickstart)", "",
             f"- command: `{record['command']}`; each repetition runs `{' '.join(record['measured_command'])} --out RUN` "
             "in a fresh process",
             f"- machine: {record['machine']['cpu']}, {record['machine']['logical_cpus']} logical CPUs, "
             f"{record['machine']['platform']}; torch {record['torch']}; commit {record['commit']}",
             f"- date {record['date_utc']}; load average before {record['load_before']}, after {record['load_after']}",
             f"- float step (digits_cnn + BatchNorm, Adam, batch {record['float_step']['batch']}, "
             f"{record['float_step']['threads']} thread(s), median of {len(record['float_step']['samples_s'])} × "
             f"{record['float_step_steps']} steps): **{record['float_step']['median_s'] * 1e3:.2f} ms**", "",
             f"**Wall time: {s['wall_s']:.1f} s** (median of {len(s['wall_all_s'])}: "
             + ", ".join(f"{w:.1f}" for w in s["wall_all_s"]) + f" s; CPU {s['cpu_s']:.1f} s); goal ≤ {GOAL_S:.0f} s: "
             + ("**met**" if s["wall_s"] <= GOAL_S else "**not met**") + f". {s['trials']} trials, "
             f"front points {s['front_points']}.", "",
             "| phase | wall time | optimizer steps | the same float steps | ratio |", "|---|---:|---:|---:|---:|"]
    for row in s["table"]:
        steps = f"{row['steps']:,}" if row["steps"] else "—"
        flt = f"{row['float_s']:.2f} s" if row["float_s"] else "—"
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] else "—"
        lines.append(f"| {row['phase']} | {row['s']:.2f} s | {steps} | {flt} | {ratio} |")
    lines += ["", "Phases come from the run's `search.log` (millisecond stamps). 'The same float steps' is the "
              "number of optimizer steps of the phase (epochs run × steps per epoch) times the float step "
              "measured in this run; the ratio includes everything the phase does besides those steps "
              "(validation after every epoch, the cost terms, checkpoints, events).", ""]
    return "\n".join(lines)


def compare_workers(args, argv) -> int:
    """The README's command with one process against ``--workers N`` processes on one study, alternately."""
    import statistics

    load_before = [round(v, 2) for v in os.getloadavg()]
    runs: dict = {"1": [], str(args.workers): []}
    with tempfile.TemporaryDirectory(prefix="jointopt-quickstart-workers-") as tmp:
        for i in range(args.repeats):
            for key, extra in (("1", []), (str(args.workers), ["--workers", str(args.workers)])):
                folder = Path(tmp) / f"{key}-{i}"
                folder.mkdir()
                runs[key].append(run_once(folder, extra, brief=True))
                print(f"{key} worker(s), run {i + 1}: {runs[key][-1]['wall_s']:.1f} s", file=sys.stderr)
    med = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    n = str(args.workers)
    lines = ["# Quickstart: one process vs several workers on one study", "",
             f"- command: `python -m benchmarks quickstart {' '.join(argv if argv is not None else sys.argv[1:])}`",
             f"- date {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, {cpu_model()}, "
             f"{os.cpu_count()} logical CPUs, load before {load_before}, after {[round(v, 2) for v in os.getloadavg()]}",
             f"- `jointopt search` (one process, its config's threads) against `jointopt search --workers {n}` "
             "(the cores shared out, one warm-up), alternately", "",
             "| processes | wall time (median) | runs | trials | front points | hypervolume val |",
             "|---|---:|---|---:|---:|---:|"]
    for key, rows in runs.items():
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in rows)
        lines.append(f"| {key} | {med[key]:.1f} s | {walls} | "
                     f"{rows[-1]['trials']} | {rows[-1]['front_points']} | {rows[-1]['hypervolume_val']:.3f} |")
    lines += ["", f"`--workers {n}` takes **{med[n] / med['1']:.2f}×** the wall time of one process.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out != "-":
        write_results(Path(args.out), "quickstart_workers", {"runs": runs, "median_s": med}, text)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of the command (the median is reported)")
    parser.add_argument("--float-steps", type=int, default=200, help="float steps per timed repetition")
    parser.add_argument("--float-repeats", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS), help="folder for quickstart.json/.md ('-': print only)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="instead: time the command with and without --workers N, alternately, --repeats times "
                             "each (results in quickstart_workers.json/.md)")
    args = parser.parse_args(argv)
    if args.workers:
        return compare_workers(args, argv)
    load_before = [round(v, 2) for v in os.getloadavg()]
    runs = []
    with tempfile.TemporaryDirectory(prefix="jointopt-quickstart-") as tmp:
        for i in range(args.repeats):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            runs.append(run_once(folder))
            print(f"run {i + 1}/{args.repeats}: {runs[-1]['wall_s']:.1f} s", file=sys.stderr)
    step = float_step_s(args.float_steps, args.float_repeats)
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    record = {"command": "python -m benchmarks quickstart " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "measured_command": ["jointopt", "search"], "date_utc": datetime.datetime.now(datetime.timezone.utc)
              .isoformat(timespec="seconds"), "commit": commit, "torch": torch.__version__,
              "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform()},
              "load_before": load_before, "load_after": [round(v, 2) for v in os.getloadavg()],
              "float_step": step, "float_step_steps": args.float_steps, "runs": runs,
              "summary": summarise(runs, step["median_s"])}
    text = render(record)
    print(text)
    if args.out != "-":
        write_results(Path(args.out), "quickstart", record, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
