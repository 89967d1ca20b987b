"""Early stopping of hopeless trials: the same study with and without it, same seed, side by side.

``python -m benchmarks early_stop`` runs the Fashion-MNIST / ResNet-8 study of
``benchmarks/front.py`` twice at the same time, as two ``jointopt search`` processes of one thread
each: once with ``tuner.early_stop`` off and once on (the default), with the same seed, so the λ plan
starts the same way and both see the same machine load. Both start from one warm-up network and one
set of uniform baselines (trained first, or copied from ``--shared RUN``, a run directory of the same
config and seed), so only the trials are compared.

The table gives, per study: the trials' wall time (and the ratio on/off), how many trials were
stopped and why, the hypervolume of the front (validation and test, ``benchmarks/front.py``'s
plane) and the smallest memory at iso-accuracy with w8 and w4. ``--bench quickstart`` does the same
on the README's quickstart study (digits).

Results: ``benchmarks/results/early_stop.{json,md}`` (``early_stop_quickstart.*``).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmarks/front.py: shared cores

import argparse
import datetime
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

try:
    from ._studies import BENCHES, analyse, log_timing, machine, schedule, share_warmup, write_results
except ImportError:  # run as a script
    from _studies import BENCHES, analyse, log_timing, machine, schedule, share_warmup, write_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def base_config(bench: str, args):
    from jointopt.config import Config
    from jointopt.tune.setup import quickstart_config

    config = quickstart_config() if bench == "quickstart" else Config.from_yaml(REPO / BENCHES[bench]["config"])
    overrides = [f"seed={args.seed}", *(args.set or [])]
    if args.trials:
        overrides.append(f"tuner.trials={args.trials}")
    if args.data_dir and bench != "quickstart":
        overrides.append(f"data.root={args.data_dir}")
    return config.override(overrides)


def search(config_file: Path, run_dir: Path, early_stop: bool, threads: int) -> subprocess.Popen:
    """``jointopt search`` of the study in ``config_file`` with early stopping on or off."""
    log = open(run_dir.parent / f"{run_dir.name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "jointopt", "search", "--config", str(config_file), "--out",
                             str(run_dir), "--threads", str(threads), "--no-tensorboard",
                             "--set", f"tuner.early_stop={str(early_stop).lower()}"], stdout=log, stderr=subprocess.STDOUT)


def record_of(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "front.json").read_text())
    stopped = [{"trial": r["trial"], "lambda": r["params"].get("lambda"), "reason": r["stopped_early"],
                "time_s": r["time_s"]} for r in summary["results"] if r.get("stopped_early")]
    return {"run_dir": str(run_dir), "timing": log_timing(run_dir), "analysis": analyse(summary), "stopped": stopped,
            "trial_time_s": round(sum(r["time_s"] for r in summary["results"]), 1)}


def _iso(analysis: dict, name: str) -> str:
    iso = (analysis["iso_accuracy"].get(name) or {}).get("val")
    if not iso:
        return "—"
    return f"{iso['cost'] / 8000:.2f} kB ({-iso['reduction_pct']:+.1f} %), test {iso['test_acc']:.2f}"


def render(record: dict) -> str:
    off, on = record["runs"]["off"], record["runs"]["on"]
    t_off, t_on = off["trial_time_s"], on["trial_time_s"]
    lines = ["# Early stopping of hopeless trials", "",
             f"- command: `{record['command']}`",
             f"- date {record['date_utc']}, commit {record['machine'].get('git_commit')}, {record['machine'].get('cpu')}, "
             f"{record['machine'].get('logical_cpus')} logical CPUs",
             f"- study: {record['title']}, seed {record['seed']}, {off['analysis']['trials']} trials each, both "
             f"studies at the same time ({record['machine'].get('logical_cpus', 2) // 2 or 1} thread(s) each), "
             "from one shared warm-up network and set of baselines: only the trials are compared",
             f"- rule: `tuner.early_stop_after` = {record['after']} of the search epochs, then collapsed / still the "
             "widest network / dominated at the same epoch by a completed trial by more than max(1, 2σ) points "
             "(jointopt/tune/early_stop.py)", "",
             "| early stop | trials' time | mean per trial | trials stopped | hypervolume val (test) | "
             "iso-accuracy with w8 | with w4 |",
             "|---|---:|---:|---:|---:|---|---|"]
    for name, run in (("off", off), ("on", on)):
        hv, n = run["analysis"]["hypervolume"], max(1, run["analysis"]["trials"])
        lines.append(f"| {name} | {run['trial_time_s'] / 60:.1f} min | {run['trial_time_s'] / n:.0f} s | "
                     f"{len(run['stopped'])} | {hv['front_val']:.3f} ({hv['front_test']:.3f}) | "
                     f"{_iso(run['analysis'], 'w8')} | {_iso(run['analysis'], 'w4')} |")
    lines += ["", f"Trials' wall time with early stopping: **{t_on / max(t_off, 1e-9):.2f}×** the time without "
                  f"({t_on / 60:.1f} vs {t_off / 60:.1f} min; the issue's goal: ≤ 0.60× with the same front within "
                  f"noise). Hypervolume on − off: {on['analysis']['hypervolume']['front_val'] - off['analysis']['hypervolume']['front_val']:+.3f} "
                  "(validation).", ""]
    off_front = len(off["analysis"]["front"])
    lines += [f"Without early stopping {off['analysis']['trials'] - off_front} of {off['analysis']['trials']} trials ended "
              "off the front: at most those trials' time could have been saved without losing a front point.", ""]
    if on["stopped"]:
        lines += ["Stopped trials:", ""] + [f"- trial {s['trial']} (λ={s['lambda']:.3g}, {s['time_s']:.0f} s): "
                                            f"{s['reason']}" for s in on["stopped"]] + [""]
    for note in record.get("notes", []):
        lines += [f"Note: {note}", ""]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks early_stop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", choices=["fashion_mnist", "quickstart"], default="fashion_mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=None, help="override tuner.trials for both studies")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="config override for both")
    parser.add_argument("--shared", metavar="RUN", help="take the warm-up and baselines from this run directory of "
                        "the same config and seed instead of training them first")
    parser.add_argument("--runs", default=str(REPO / "runs" / "bench-early-stop"), help="where the run directories go")
    parser.add_argument("--results", default=str(RESULTS), help="where early_stop.json / .md go")
    parser.add_argument("--data-dir", default=None, help="data root (default $JOINTOPT_DATA_DIR or ~/.cache/jointopt/data)")
    parser.add_argument("--note", action="append", default=[], help="a line for the results (repeatable)")
    args = parser.parse_args(argv)
    config = base_config(args.bench, args)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    runs = Path(args.runs) / f"{args.bench}-seed{args.seed}-{stamp}"
    runs.mkdir(parents=True)
    config_file = runs / "config.yaml"
    config_file.write_text(config.to_yaml())
    record = {"command": "python -m benchmarks early_stop " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "title": BENCHES.get(args.bench, {}).get("title", "quickstart (digits)"),
              "seed": args.seed, "after": config.tuner.early_stop_after, "notes": args.note,
              "schedule": schedule(config), "runs": {}}
    shared = Path(args.shared) if args.shared else None
    if shared is None:  # the warm-up and baselines, once, by a one-trial study of the same config
        shared = runs / "shared"
        subprocess.run([sys.executable, "-m", "jointopt", "search", "--config", str(config_file), "--out", str(shared),
                        "--trials", "1", "--no-tensorboard"], check=True)
    threads = max(1, (os.cpu_count() or 2) // 2)
    procs = {}
    t0 = time.time()
    for name, on in (("off", False), ("on", True)):
        share_warmup(shared, runs / name)
        procs[name] = search(config_file, runs / name, on, threads)
        print(f"[early_stop] {args.bench}: early stop {name} in {runs / name} ({threads} threads)", file=sys.stderr)
    for name, proc in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"the study with early stop {name} failed; see {runs / name}.log")
        record["runs"][name] = record_of(runs / name)
    record["wall_s"] = round(time.time() - t0, 1)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = "early_stop" if args.bench == "fashion_mnist" else f"early_stop_{args.bench}"
    write_results(out, stem, record, render(record))
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
