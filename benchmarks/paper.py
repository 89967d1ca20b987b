"""Paper protocol: CIFAR-10/ResNet-8, Speech Commands/DS-CNN, Tiny ImageNet/ResNet-18 vs the published figures.

    python -m benchmarks paper --check                      # which data sets are present (nothing runs)
    python -m benchmarks paper cifar10 --data-dir DATA      # run the study of configs/cifar10_resnet8.yaml
    python -m benchmarks paper cifar10 --device cuda --set warmup.epochs=50 --trials 8   # scaled, on a GPU
    python -m benchmarks paper --from-run cifar10=runs/c10  # compare a finished run (e.g. `jointopt search`)
    python -m benchmarks paper                              # check the data, rewrite paper.md (published figures)

Each benchmark runs ``jointopt.search`` on its config where the data exist under ``--data-dir`` (or
the configured root); otherwise the loader's message says which files are missing and where to put
them, and nothing is downloaded unless ``--download`` is given. The resulting front is compared with
the figures of Motetti et al. 2024 (REFERENCE.md §1) in ``benchmarks/results/paper.md``: for every
published front point, the run's best test accuracy at no more memory and its smallest memory at
no less than the published accuracy minus 0.5 points; the uniform baselines side by side; and the
run's own iso-accuracy reductions next to the paper's headline numbers.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from benchmarks._studies import RESULTS, Timer, analyse, hypervolume, machine  # noqa: E402

# Published figures, REFERENCE.md §1 (read off the authors' figure: ±2 % size, ±0.2 pp); kB = 1000 bytes
# of conv/linear weights. Accuracies are test accuracies.
PAPER = {
    "cifar10": {
        "config": "configs/cifar10_resnet8.yaml", "title": "CIFAR-10 / ResNet-8 (MLPerf Tiny)",
        "data": "cifar10", "unit_kb": 1.0,
        "baselines": {"float": (86.1, None), "w8": (86.26, 77.36), "w4": (85.4, 38.7), "w2": (71.8, 19.3)},
        "front": [(62.0, 2.9), (72.8, 5.9), (81.9, 15.3), (84.3, 26.6), (86.4, 59.0)],
        "sequential": [(83.6, 20.0), (85.3, 33.3)],
        "files": "cifar-10-python.tar.gz (170,498,071 bytes, md5 c58f30108f718f92721af3b95e74349a) or its "
                 "extracted cifar-10-batches-py/ under DATA/cifar10/",
    },
    "gsc": {
        "config": "configs/gsc_dscnn.yaml", "title": "Google Speech Commands v2 (12 classes) / DS-CNN (MLPerf Tiny)",
        "data": "gsc", "unit_kb": 1.0,
        "baselines": {}, "front": [], "sequential": [],
        "note": "REFERENCE.md gives no GSC front or baseline figures; the MLPerf Tiny quality target for this "
                "model is 90 % top-1 (reference ~92 %), 22,016 weights = 22.0 kB at 8 bits.",
        "files": "speech_commands_v0.02.tar.gz (2,428,923,189 bytes, md5 6b74f3901214cb2c2934e98196829835) or "
                 "its extracted contents under DATA/gsc/speech_commands_v0.02/",
    },
    "tinyimagenet": {
        "config": "configs/tinyimagenet_resnet18.yaml", "title": "Tiny ImageNet 200 / ResNet-18 (64x64 stem)",
        "data": "tinyimagenet", "unit_kb": 1000.0,  # shown in MB
        "baselines": {"w8": (70.1, 11.26e3), "w4": (69.9, 5.63e3), "w2": (61.1, 2.82e3)},
        "front": [], "sequential": [],
        "note": "REFERENCE.md gives only the uniform baselines for Tiny ImageNet (sizes in MB).",
        "files": "tiny-imagenet-200.zip (248,100,043 bytes, md5 90528d7ca1a48142e341f4ef8d21d0de) or its extracted "
                 "tiny-imagenet-200/ under DATA/tinyimagenet/",
    },
}
HEADLINE = {"reduction_vs_w8_pct": "47.50", "reduction_vs_w2_pct": "69.54"}
TOLERANCE = 0.5


def check_data(name: str, data_dir: Optional[str], download: bool = False) -> Optional[str]:
    """None when the data set loads; otherwise the loader's message (which files, where)."""
    from jointopt.config import Config
    from jointopt.data import get_dataset
    from jointopt.errors import DataError

    config = Config.from_yaml(REPO / PAPER[name]["config"])
    root = data_dir if data_dir is not None else config.data.root
    try:
        get_dataset(config.data.name, root, val_fraction=config.data.val_fraction, seed=config.seed, download=download)
    except DataError as exc:
        return str(exc)
    return None


def run_study(name: str, args) -> dict:
    import jointopt
    from jointopt.config import Config
    from jointopt.tune.study import Study

    config = Config.from_yaml(REPO / PAPER[name]["config"])
    overrides = list(args.set or [])
    if args.trials:
        overrides.append(f"tuner.trials={args.trials}")
    if args.device:
        overrides.append(f"device={args.device}")
    if args.data_dir:
        overrides.append(f"data.root={args.data_dir}")
    config = config.override(overrides) if overrides else config
    run_dir = Path(args.runs) / f"{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    timer, started = Timer(), time.time()
    Study(config, run_dir, listeners=[timer], argv=[sys.executable, *sys.argv]).run()
    timer.close()
    timing = timer.summary(time.time())
    (run_dir / "paper_timing.json").write_text(json.dumps({"timing": timing, "overrides": overrides,
                                                           "jointopt": jointopt.__version__}, indent=2) + "\n")
    print(f"{name}: finished in {(time.time() - started) / 60:.1f} min, run directory {run_dir}", file=sys.stderr)
    return compare(name, run_dir)


def compare(name: str, run_dir: Path) -> dict:
    """A finished run directory against the published figures."""
    summary = json.loads((Path(run_dir) / "front.json").read_text())
    analysis = analyse(summary)
    target, results, paper = summary["target"], summary["results"], PAPER[name]
    kb = lambda bits: bits / 8000.0  # noqa: E731
    rows = []
    for acc, size in paper["front"]:
        fits = [r for r in results if kb(r["costs"][target]) <= size]
        reach = [r for r in results if r["test_acc"] >= acc - TOLERANCE]
        rows.append({"paper_acc": acc, "paper_kb": size,
                     "best_test_acc_at_size": max((r["test_acc"] for r in fits), default=None),
                     "smallest_kb_at_acc": min((kb(r["costs"][target]) for r in reach), default=None)})
    baselines = {k: {"test_acc": b["test_acc"], "val_acc": b["val_acc"],
                     "kb": kb(b["costs"][target]) if target in b["costs"] else None}
                 for k, b in summary["baselines"].items()}
    published = [(s / (paper["baselines"]["w8"][1]), a / 100) for a, s in paper["front"]] if paper["front"] else []
    timing_path = Path(run_dir) / "paper_timing.json"
    return {"bench": name, "run_dir": str(run_dir), "front_rows": rows, "baselines": baselines,
            "analysis": analysis, "hv_published": hypervolume(published) if published else None,
            "timing": json.loads(timing_path.read_text())["timing"] if timing_path.exists() else None,
            "environment": json.loads((Path(run_dir) / "environment.json").read_text())}


def _f(v, fmt=".1f", none="—"):
    return none if v is None else format(v, fmt)


def render(status: Dict[str, Optional[str]], runs: Dict[str, dict], data_dir: Optional[str]) -> str:
    m = machine()
    lines = ["# Paper protocol (Motetti et al. 2024, arXiv 2407.01054) — expected figures and runs", "",
             f"Written by `python -m benchmarks paper` on {datetime.date.today().isoformat()} ({m['cpu']}, "
             f"{m['logical_cpus']} CPUs, load average {[round(v, 2) for v in os.getloadavg()]}).", "",
             "The published numbers below are from REFERENCE.md §1 (read off the authors' figures, ±2 % size, "
             "±0.2 pp accuracy; size = conv/linear weights, kB = 1000 bytes, accuracies are test accuracies). "
             "The protocol (configs/cifar10_resnet8.yaml, gsc_dscnn.yaml, tinyimagenet_resnet18.yaml) is the "
             "paper's: up to 500/200/50 epochs per phase, Adam 1e-3, selector SGD 1e-2, T x exp(-0.045) per epoch.",
             "",
             "Cost of the full protocol: on the 2-core machine these benchmarks were written on, a ResNet-8 "
             "training step at batch 32-64 takes 0.03-0.1 s (load dependent; benchmarks/results/front.md), so one "
             "CIFAR-10 epoch (1,407 steps at batch 32) is ~1-2 min in float and 2-3x that in the search: the "
             "warm-up alone (up to 500 epochs) is about half a day and each of the 16 trials up to two days. Run "
             "them on a GPU (`--device cuda`), with several workers sharing `--storage`, or scaled with `--set` "
             "(the scaled CPU stand-ins are benchmarks/front.py's Fashion-MNIST/ResNet-8 and synthetic-KWS/DS-CNN "
             "studies).", ""]
    for name, paper in PAPER.items():
        lines += [f"## {paper['title']}", "", f"- config: `{paper['config']}`; data files: {paper['files']}",
                  f"- run: `python -m benchmarks paper {name} --data-dir DATA` (add `--device cuda` on a GPU); or "
                  f"compare a run made elsewhere: `python -m benchmarks paper --from-run {name}=RUN_DIR`"]
        if paper.get("note"):
            lines.append(f"- {paper['note']}")
        missing = status.get(name)
        if missing is None:
            lines.append("- data: present" + ("" if name in runs else "; no run recorded here yet"))
        else:
            lines.append(f"- data: **not available on this machine** (no internet), so this study was **not run "
                         f"here**. The loader says: {missing}")
        unit = "MB" if paper["unit_kb"] > 1 else "kB"
        scale = paper["unit_kb"]
        if paper["baselines"] or paper["front"]:
            lines += ["", f"| published | test acc % | size ({unit}) |", "|---|---:|---:|"]
            for k, (acc, size) in paper["baselines"].items():
                lines.append(f"| uniform {k}{'a8' if k != 'float' else ''} | {acc} | {_f(size and size / scale, '.2f')} |")
            for acc, size in paper["front"]:
                lines.append(f"| joint front | {acc} | {size / scale:.1f} |")
            for acc, size in paper["sequential"]:
                lines.append(f"| sequential prune → mixed precision | {acc} | {size / scale:.1f} |")
        lines.append("")
        lines.append(f"Headline claims (abstract, all benchmarks): −{HEADLINE['reduction_vs_w8_pct']} % size vs "
                     f"uniform w8 and −{HEADLINE['reduction_vs_w2_pct']} % vs uniform w2 at iso-accuracy.")
        if name in runs:
            lines += [""] + render_run(runs[name], paper, unit, scale)
        lines.append("")
    return "\n".join(lines)


def render_run(r: dict, paper: dict, unit: str, scale: float) -> List[str]:
    a, env = r["analysis"], r["environment"]
    out = [f"### Run `{r['run_dir']}`", "",
           f"- command: `{env.get('command')}`, started {env.get('started')}, torch {env.get('torch')}, "
           f"device {env.get('device')}"]
    if r.get("timing"):
        t = r["timing"]
        out.append(f"- wall time {t['total_s'] / 60:.1f} min (warm-up {t['warmup_s']:.0f} s, {len(t['trials_s'])} "
                   f"trials {t['trial_mean_s']:.0f} s each), load during the run {t['load_1min_during']}")
    out += ["", f"| uniform | published test % | this run test % (val %) | published {unit} | this run {unit} |",
            "|---|---:|---:|---:|---:|"]
    for k, b in r["baselines"].items():
        pub = paper["baselines"].get(k, (None, None))
        out.append(f"| {k} | {_f(pub[0], 'g')} | {b['test_acc']:.2f} ({b['val_acc']:.2f}) | {_f(pub[1] and pub[1] / scale, '.2f')} "
                   f"| {_f(b['kb'] and b['kb'] / scale, '.2f')} |")
    if r["front_rows"]:
        out += ["", f"| published front point | this run: best test % at ≤ that size | this run: smallest {unit} at ≥ "
                f"acc − {TOLERANCE} pt |", "|---|---:|---:|"]
        for row in r["front_rows"]:
            out.append(f"| {row['paper_acc']} % @ {row['paper_kb'] / scale:.1f} {unit} | {_f(row['best_test_acc_at_size'], '.2f')} "
                       f"| {_f(row['smallest_kb_at_acc'] and row['smallest_kb_at_acc'] / scale, '.2f')} |")
    iso = a["iso_accuracy"]
    cells = []
    for k in ("w8", "w2"):
        row = iso.get(k, {}).get("val")
        cells.append(f"vs {k}: {_f(row and row['reduction_pct'])} % (trial {row['trial']}, test {row['test_acc']:.2f} vs "
                     f"{row['baseline_test_acc']:.2f})" if row else f"vs {k}: no trial at iso-accuracy")
    out += ["", f"Iso-accuracy reductions of this run (selected on validation, {TOLERANCE} pt): " + "; ".join(cells) +
            f" — published: −{HEADLINE['reduction_vs_w8_pct']} % / −{HEADLINE['reduction_vs_w2_pct']} %.",
            f"Hypervolume (x = size / size of w8, y = accuracy / 100, reference (1.1, 0)): this run "
            f"{a['hypervolume']['front_test']:.4f} (test accuracy)" +
            (f", published front {r['hv_published']:.4f}" if r.get("hv_published") is not None else "") + "."]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks paper", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(PAPER)} or all "
                        "(default: none, only check the data and write paper.md)")
    parser.add_argument("--data-dir", default=None, help="data root (default $JOINTOPT_DATA_DIR or ~/.cache/jointopt/data)")
    parser.add_argument("--download", action="store_true", help="let the loaders download missing files")
    parser.add_argument("--check", action="store_true", help="only report which data sets are present (write nothing)")
    parser.add_argument("--from-run", action="append", default=[], metavar="NAME=RUN", help="compare a finished run")
    parser.add_argument("--runs", default=str(REPO / "runs" / "bench-paper"))
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--device", default=None, help="override the config's device (cpu, cuda, auto)")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="config override (repeatable)")
    args = parser.parse_args(argv)

    unknown = [n for n in args.names if n not in (*PAPER, "all")]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(PAPER)} or all")
    names = list(PAPER) if "all" in args.names else list(dict.fromkeys(args.names))
    status = {n: check_data(n, args.data_dir, args.download) for n in PAPER}
    for n, msg in status.items():
        print(f"{n}: {'data present' if msg is None else 'MISSING: ' + msg}", file=sys.stderr)
    runs: Dict[str, dict] = {}
    for item in args.from_run:
        name, _, path = item.partition("=")
        if name not in PAPER or not path:
            parser.error(f"--from-run {item!r}: expected NAME=RUN with NAME one of {', '.join(PAPER)}")
        runs[name] = compare(name, Path(path))
    failed = []
    if not args.check:
        for name in names:
            if status.get(name) is not None:
                failed.append(name)
                continue
            runs[name] = run_study(name, args)
    if not args.check:
        out = Path(args.results)
        out.mkdir(parents=True, exist_ok=True)
        (out / "paper.md").write_text(render(status, runs, args.data_dir))
        print(f"wrote {out / 'paper.md'}")
    if failed:
        print(f"not run, data missing: {', '.join(failed)} (see the messages above for the files and where they go)",
              file=sys.stderr)
        return 1
    return 1 if args.check and any(v is not None for v in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
