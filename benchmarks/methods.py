"""Methods compared: every registered method on Fashion-MNIST/ResNet-8 and synthetic KWS/DS-CNN, one sitting.

    python -m benchmarks methods                                  # both benchmarks, every method, seed 0
    python -m benchmarks methods --only fashion_mnist --methods joint,magnitude,random
    python -m benchmarks methods --smoke                          # a tiny budget: does it run? (not the benchmark)
    python -m benchmarks methods --only fashion_mnist --continue runs/bench-methods/fashion_mnist-seed0-<stamp>
                                                                  # go on with a run stopped part-way

Per benchmark, each method runs a whole study (``jointopt search --method NAME`` on the benchmark's
config: same data, model, cost models, step budget per trial and number of trials; ``uniform``
runs one trial per width of the search space). The float warm-up network and the uniform w8/w4/w2
baselines are trained once, by the first method, and copied into the other methods' run directories
(they do not depend on the method), so every front is measured against the same networks.

For each method the table gives, as ``benchmarks/front.py`` defines them: the smallest memory at
iso-accuracy with uniform w8 and with uniform w4 (the smallest trial whose **validation** accuracy is
at least the baseline's minus 0.5 points; its test accuracy beside the baseline's), the hypervolume
of its trials in the plane (memory / memory of w8, accuracy / 100) up to (1.1, 0), and the wall time
of its trials (its own work: the shared warm-up and baselines are reported once). One
``report --compare`` figure per benchmark overlays every method's front.

Results: ``benchmarks/results/methods.{json,md}`` and ``methods_<bench>.png``; with ``--smoke``,
``methods_smoke.*`` — a check that the code runs end to end, whose numbers mean nothing.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmarks/front.py: shared cores

import argparse
import datetime
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

try:  # run as part of the benchmarks package, or as a script
    from ._studies import BENCHES, ISO_TOLERANCE, KWS_SPEAKERS, Timer, analyse, kb, kws_root, log_timing, \
        machine, schedule, share_warmup, write_results
except ImportError:
    from _studies import BENCHES, ISO_TOLERANCE, KWS_SPEAKERS, Timer, analyse, kb, kws_root, log_timing, \
        machine, schedule, share_warmup, write_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
# a budget that only checks that every method runs end to end on the real data and models
SMOKE = ["warmup.epochs=1", "warmup.max_steps=20", "search.epochs=1", "search.max_steps=8", "finetune.epochs=1",
         "finetune.max_steps=8", "data.limit_train=2000", "tuner.trials=2", "tuner.baselines=[8,4]",
         "methods.sensitivity.eval_samples=300"]


def method_overrides(method: str, config, args) -> List[str]:
    """What a method needs besides ``method=NAME``: uniform runs one trial per width of the search space."""
    if method == "uniform" and not args.trials:
        return [f"tuner.trials={len([b for b in config.space.weight_bits if b > 0])}"]
    return []


def run_method(bench: str, method: str, args, shared: Optional[Path], run_dir: Path) -> dict:
    """Run (or, where ``run_dir`` already holds its study, resume) one method's study."""
    from jointopt.config import Config
    from jointopt.tune.study import Study

    spec = BENCHES[bench]
    base = [f"seed={args.seed}", *(SMOKE if args.smoke else []), *(args.set or [])]
    if args.trials:
        base.append(f"tuner.trials={args.trials}")
    if bench == "synthetic_kws":
        base.append(f"data.root={kws_root(args.data_dir, args.kws_speakers)}")
    elif args.data_dir:
        base.append(f"data.root={args.data_dir}")
    config = Config.from_yaml(REPO / spec["config"]).override([f"method={method}"])
    overrides = [o for o in base if not o.startswith("methods.") or o.startswith(f"methods.{method}.")]
    config = config.override(overrides)
    extra = method_overrides(method, config, args)
    config = config.override(extra) if extra else config
    resume = (run_dir / "config.yaml").is_file()  # a study stopped part-way (--continue)
    if shared is not None and not resume:  # the warm-up network and the uniform baselines of the first method's study
        share_warmup(shared, run_dir)
    timer = Timer()
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f"[{bench}] {method}: {config.tuner.trials} trials in {run_dir}" + (" (resumed)" if resume else ""),
          file=sys.stderr, flush=True)
    summary = Study(config, run_dir, resume=resume, listeners=[timer], argv=[sys.executable, *sys.argv]).run()
    end = time.time()
    timer.close()
    return {"bench": bench, "method": method, "run_dir": str(run_dir), "date_utc": started.isoformat(timespec="seconds"),
            "overrides": [f"method={method}", *overrides, *extra], "shared_from": str(shared) if shared else None,
            "schedule": schedule(config),
            # a resumed study's own timer saw only its end: the whole study's times come from its log
            "timing": log_timing(run_dir) if resume else timer.summary(end), "analysis": analyse(summary),
            "dataset": json.loads((run_dir / "dataset.json").read_text())}


def recorded_method(bench: str, method: str, run_dir: Path) -> Optional[dict]:
    """The record of a method's study that already ran (``--from-runs``), or None when it did not finish.

    The same analysis as a live run; the timing comes from the run's ``search.log`` (1 s resolution).
    """
    from jointopt.config import Config

    front = run_dir / "front.json"
    if not front.is_file():
        return None
    summary = json.loads(front.read_text())
    config = Config.from_yaml(run_dir / "config.yaml")
    env = json.loads((run_dir / "environment.json").read_text())
    return {"bench": bench, "method": method, "run_dir": str(run_dir), "date_utc": env.get("started"),
            "overrides": [f"method={method}", "(recorded run: see its config.yaml)"], "shared_from": None,
            "schedule": schedule(config), "timing": log_timing(run_dir), "analysis": analyse(summary),
            "dataset": json.loads((run_dir / "dataset.json").read_text())}


def with_warmup(base: Path) -> Optional[Path]:
    """A method's run directory under ``base`` that holds the warm-up and the baselines (to share)."""
    return next((d for d in sorted(base.iterdir()) if (d / "baselines.json").is_file()), None) if base.is_dir() else None


def run_bench(bench: str, methods: List[str], args, stamp: str) -> dict:
    records, shared = {}, None
    base = Path(args.continue_dir or Path(args.runs) / f"{bench}-seed{args.seed}-{stamp}")
    for method in methods:
        if args.from_runs:
            record = recorded_method(bench, method, Path(args.from_runs) / method)
            if record is None:
                print(f"[{bench}] {method}: no finished study in {args.from_runs}; left out", file=sys.stderr)
                continue
            records[method] = record
            continue
        if args.continue_dir:
            record = recorded_method(bench, method, base / method)
            if record is not None:
                print(f"[{bench}] {method}: finished in {base / method}; read", file=sys.stderr)
                records[method] = record
                continue
            shared = shared or with_warmup(base)
        records[method] = run_method(bench, method, args, shared, base / method)
        shared = shared or Path(records[method]["run_dir"])
    if not records:
        raise SystemExit(f"no finished study of any of {', '.join(methods)} under {args.from_runs}/<method>: give "
                         "--from-runs the folder that holds one run directory per method")
    return {"bench": bench, "title": BENCHES[bench]["title"], "config": BENCHES[bench]["config"], "methods": records}


def figure_floor(bench: dict) -> Optional[float]:
    """Where the compare figure's accuracy axis starts: 10 points below the worst uniform baseline, so that
    collapsed trials (a strength far too high) do not squeeze every front into the top of the figure."""
    first = next(iter(bench["methods"].values()))
    accs = [b["val_acc"] for name, b in first["analysis"]["baselines"].items()
            if name != "float" and b.get("cost") is not None]
    return float(math.floor(min(accs) - 10)) if accs else None


def compare_figure(bench: dict, out: Path) -> Path:
    """Every method's front on one figure (``jointopt report RUN --compare ... --min-accuracy``'s figure)."""
    from jointopt.report import compare_figure as figure, load_run
    from jointopt.report._render import save_png

    runs = [load_run(r["run_dir"]) for r in bench["methods"].values()]
    return save_png(figure(runs, "memory", False, "val", list(bench["methods"]), figure_floor(bench)), out)


# -- the markdown ------------------------------------------------------------------------------------
def _iso(iso: Optional[dict]) -> str:
    if not iso:
        return "none within 0.5"
    return (f"{kb(iso['cost'])} kB ({-iso['reduction_pct']:+.1f} %), val {iso['val_acc']:.2f}, "
            f"test {iso['test_acc']:.2f} vs {iso['baseline_test_acc']:.2f}")


def render_bench(bench: dict, figure: Optional[str], smoke: bool) -> List[str]:
    records = bench["methods"]
    first = next(iter(records.values()))
    a0, t0 = first["analysis"], first["timing"]
    lines = [f"## {bench['title']}", "", *_provenance(bench)]
    if first["dataset"].get("substitute"):
        lines += [f"**The data are a synthetic substitute**: {first['dataset']['substitute']}.", ""]
    sch = first["schedule"]
    lines += [f"- config: `{bench['config']}`, overrides (first method) `{' '.join(first['overrides'])}`",
              f"- run directories: `{Path(first['run_dir']).parent}/<method>`",
              f"- budget per trial: search {sch['search']['epochs']} x {sch['search']['max_steps'] or 'all'} steps + "
              f"fine-tune {sch['finetune']['epochs']} x {sch['finetune']['max_steps'] or 'all'} steps at batch "
              f"{sch['batch_size']} (methods without a search phase fine-tune for both; `sequential` searches twice; "
              f"`pai` trains from initialisation for the warm-up's {sch['warmup']['epochs']} epochs first)",
              f"- shared by every method (trained in the first method's study): warm-up {t0['warmup_s']:.0f} s, "
              f"uniform baselines {t0['baselines_s']:.0f} s",
              "- uniform baselines: " + ", ".join(
                  f"{k} val {b['val_acc']:.2f} / test {b['test_acc']:.2f} @ {kb(b['cost'])} kB"
                  for k, b in a0["baselines"].items() if b.get("cost") is not None), ""]
    lines += ["| method | trials | front points | smallest memory at iso-accuracy with w8 (vs w8) | "
              "with w4 (vs w4) | hypervolume val (test) | trials' wall time (mean per trial) |",
              "|---|---:|---:|---|---|---:|---:|"]
    for method, r in records.items():
        a, t = r["analysis"], r["timing"]
        hv = a["hypervolume"]
        lines.append(f"| {method} | {a['trials']} | {len(a['front'])} | {_iso((a['iso_accuracy'].get('w8') or {}).get('val'))}"
                     f" | {_iso((a['iso_accuracy'].get('w4') or {}).get('val'))} | {hv['front_val']:.3f} "
                     f"({hv['front_test']:.3f}) | {t['trials_total_s'] / 60:.1f} min ({t['trial_mean_s']:.0f} s) |")
    lines.append(f"| uniform w8/w4/w2 (baselines) | — | — | — | — | {a0['hypervolume']['uniform_val']:.3f} "
                 f"({a0['hypervolume']['uniform_test']:.3f}) | — |")
    if figure:
        floor = bench.get("figure_floor")  # recorded when the figure was drawn (older figures have none)
        lines += ["", f"![every method's front]({figure})" + (" (smoke budget: meaningless)" if smoke else "")]
        if floor is not None:
            lines += ["", f"The figure's accuracy axis starts at {floor:g} % (10 points below the worst uniform "
                      "baseline); it counts the trials below."]
    return lines + [""]


def _provenance(bench: dict) -> List[str]:
    """Where a benchmark's rows come from: each benchmark keeps the command, commit and date of its own run."""
    m = bench["machine"]
    return [f"- command: `{bench['command']}`",
            f"- date {bench['date_utc']}, commit {m['git_commit']}"
            + (" (uncommitted changes under jointopt/)" if m.get("jointopt_uncommitted_changes") else "")
            + f", {m['cpu']}, {m['logical_cpus']} logical CPUs"
            + (f", wall time of this run {bench['wall_s'] / 60:.1f} min" if bench.get("wall_s") is not None else ""),
            *[f"- note: {n}" for n in bench.get("notes", [])]]


def render(record: dict) -> str:
    smoke = record["smoke"]
    head = ["# Methods compared" + (" — SMOKE RUN, NOT THE BENCHMARK" if smoke else ""), ""]
    if smoke:
        head += ["**This is a smoke run on a tiny budget** (`" + " ".join(SMOKE) + "`): it checks that every "
                 "method runs end to end on the benchmarks' data and models and that this file is written. Its "
                 "accuracies, sizes, hypervolumes and times say nothing about the methods. The benchmark is the "
                 "command below without `--smoke`.", ""]
    head += [f"- full benchmark: `{record['full_command']}` (each benchmark below says which command, commit and "
             "date its rows come from)",
             f"- iso-accuracy: the smallest trial with validation accuracy >= the uniform network's - "
             f"{ISO_TOLERANCE} points, memory (conv/linear weights, kB = 1000 bytes); test accuracy shown beside "
             "the baseline's", ""]
    body = []
    for name, bench in record["benches"].items():
        body += render_bench(bench, bench.get("figure"), smoke)
    return "\n".join(head + body)


def earlier_benches(path: Path, redone) -> Dict[str, dict]:
    """The benchmarks recorded in ``path`` (an earlier methods.json) that this run does not redo, so that
    ``--only BENCH`` adds its table beside the others instead of replacing the file. A record written
    before benchmarks carried their own provenance lends them its top-level command, date and machine."""
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    benches = {}
    for name, bench in old.get("benches", {}).items():
        if name in redone:
            continue
        for key in ("command", "date_utc", "machine", "notes", "wall_s"):
            bench.setdefault(key, old.get(key, [] if key == "notes" else None))
        benches[name] = bench
    return benches


FULL_COMMAND = "nice -n 19 python -m benchmarks methods"


def main(argv=None) -> int:
    from jointopt.methods import list_methods

    parser = argparse.ArgumentParser(prog="python -m benchmarks methods", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(BENCHES), action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--methods", default=",".join(list_methods()),
                        help="comma-separated methods, in order (default: every registered one, joint first)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny budget, results in methods_smoke.*: not the benchmark")
    parser.add_argument("--trials", type=int, default=None, help="override tuner.trials for every method")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="config override for every method (methods.NAME.KEY only reaches NAME)")
    parser.add_argument("--runs", default=str(REPO / "runs" / "bench-methods"), help="where the run directories go")
    parser.add_argument("--results", default=str(RESULTS), help="where methods.json / methods.md / figures go")
    parser.add_argument("--data-dir", default=None, help="data root (default $JOINTOPT_DATA_DIR or ~/.cache/jointopt/data)")
    parser.add_argument("--kws-speakers", type=int, default=KWS_SPEAKERS,
                        help="speakers of the synthetic keyword corpus (built if missing, 4-11 min for 1000)")
    parser.add_argument("--from-runs", metavar="DIR", help="analyse the finished method studies under DIR/<method> "
                        "(a run of this benchmark, e.g. one stopped part-way) instead of running them; with one --only")
    parser.add_argument("--continue", dest="continue_dir", metavar="DIR",
                        help="go on with a run of this benchmark stopped part-way (DIR holds one run directory per "
                        "method): finished studies are read, a study stopped part-way resumes, the others run "
                        "sharing its warm-up; with one --only. Two processes with different --methods may share DIR "
                        "once the first method's baselines are trained")
    parser.add_argument("--note", action="append", default=[], help="a line for the results' header (repeatable)")
    args = parser.parse_args(argv)
    if args.from_runs and len(args.only or []) != 1:
        parser.error("--from-runs needs exactly one --only BENCH (the benchmark those run directories belong to)")
    if args.continue_dir and (len(args.only or []) != 1 or args.from_runs):
        parser.error("--continue needs exactly one --only BENCH and no --from-runs")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in list_methods()]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; registered: {', '.join(list_methods())}")
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = "methods_smoke" if args.smoke else "methods"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-smoke" if args.smoke else "")
    command = "python -m benchmarks methods " + shlex.join(argv if argv is not None else sys.argv[1:])
    run = set(args.only or BENCHES)
    record = {"smoke": args.smoke, "full_command": FULL_COMMAND,
              "benches": earlier_benches(out / f"{stem}.json", run)}
    for bench in args.only or list(BENCHES):
        t0 = time.time()
        result = {"command": command, "notes": args.note, "machine": machine(),
                  "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        result.update(run_bench(bench, methods, args, stamp))
        result["figure"] = compare_figure(result, out / f"{stem}_{bench}.png").name
        result["figure_floor"] = figure_floor(result)
        # analysing recorded studies takes no study time; a continued run's wall time is not this process's
        result["wall_s"] = None if args.from_runs or args.continue_dir else time.time() - t0
        record["benches"][bench] = result
        record["benches"] = {name: record["benches"][name] for name in BENCHES if name in record["benches"]}
        write_results(out, stem, record, render(record))
    print(render(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
