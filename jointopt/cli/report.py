"""``jointopt report``: Pareto figure, CSV, allocation figures, HTML page and TensorBoard runs of a study."""
from __future__ import annotations

import argparse

HELP = """\
Regenerate the report of a study from its run directory (a finished study, or one still running):

  RUN/pareto.png                     accuracy vs cost: front highlighted, other trials faded,
                                     uniform w8/w4/w2 baselines and the float network marked
  RUN/pareto.csv                     the front (raw units, then human units)
  RUN/trials/<n>/allocation.png      per layer: channels kept and the share of each bit-width
  RUN/trials/<n>/allocation_evolution.png   how it evolved during the search
  RUN/report.html                    all of it in one self-contained page (no server, no network)
  RUN/tb/...                         TensorBoard runs, when missing (e.g. after --no-tensorboard)
  RUN/compare.png, compare.csv       with --compare: several studies' fronts on one figure

examples:
  jointopt report runs/a
  jointopt report runs/a --log-cost --accuracy test
  jointopt report runs/a --target bitops            # plot another cost the study reported
  jointopt report runs/memory --compare runs/mpic --target mpic --label memory-target,mpic-target
  jointopt report runs/a --format json              # the front, baselines and files for scripts
  jointopt report runs/a --compare runs/b --min-accuracy 90   # axis from 90 %: collapsed trials off the figure
"""


def _percent(text: str) -> float:
    """An accuracy in percent for --min-accuracy: a number from 0 to below 100."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a percentage such as 90") from None
    if not math.isfinite(value) or not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"{text} is not an accuracy from 0 to below 100 (in %), e.g. 90")
    return value


def register(subparsers) -> None:
    from ._options import ListAction, add_format_option, add_list_option

    p = subparsers.add_parser("report", help="Pareto figure, CSV, allocation figures, HTML page, TensorBoard runs",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory of `jointopt search` (its --out)")
    p.add_argument("--compare", nargs="+", action=ListAction, default=[], metavar="RUN2",
                   help="other run directories whose fronts are overlaid on compare.png (several after one "
                        "--compare, comma-separated or repeated)")
    add_list_option(p, "--label", metavar="TEXT", help="legend labels of RUN, then of each --compare run, in order")
    p.add_argument("--target", metavar="NAME", help="cost to plot (default: the study's target); "
                                                     "any cost the study reported, e.g. bitops")
    p.add_argument("--log-cost", action="store_true", help="log-scale cost axis")
    p.add_argument("--min-accuracy", type=_percent, default=None, metavar="A",
                   help="start the figures' accuracy axis at A %% (e.g. 90), so that collapsed trials do not squeeze "
                        "the front into the top of the figure; the figure says how many trials lie below")
    p.add_argument("--accuracy", choices=("val", "test"), default="val",
                   help="accuracy on the figures (default: val; the front is always selected on validation)")
    p.add_argument("--out", metavar="DIR", help="write the files here instead of into RUN")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write missing TensorBoard runs")
    add_format_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..errors import ConfigError
    from ..report import load_run, tensorboard_command, write_report
    from ..report._tables import text_table, trials_table

    n_runs = 1 + len(args.compare)
    if args.label and len(args.label) != n_runs:
        raise ConfigError(f"--label given {len(args.label)} times for {n_runs} runs (RUN and {len(args.compare)} "
                          "--compare); give one label per run, in order, or none")
    data = load_run(args.run)
    files = write_report(data, target=args.target, log_cost=args.log_cost, accuracy=args.accuracy,
                         compare=args.compare, labels=args.label or None, out=args.out, min_accuracy=args.min_accuracy,
                         tensorboard=not args.no_tensorboard)
    target = args.target or data.target
    compared = None
    if args.compare:  # the same runs, labels and target as compare.png
        from ..report import load_run as _load
        from ..report._compare import compare_table, summary_table
        from ..report._pareto import run_labels

        runs = [data, *(_load(c) for c in args.compare)]
        compared = (runs, list(args.label) if args.label else run_labels(runs), target)
    written = [p for p in [files.pareto_png, files.pareto_csv, files.compare_png, files.compare_csv, files.html]
               if p is not None]
    command = tensorboard_command(args.run, data.config, trials=len(data.results))
    if args.output_format == "json":
        from ._options import print_json

        print_json({"run": str(args.run), "target": target, "trials": len(data.results),
                    "front": [_plain(r) for r in files.front],
                    "baselines": {name: _plain(b) for name, b in data.baselines.items()}, "files": [str(p) for p in written + files.allocations],
                    "tensorboard_runs": files.tensorboard, "tensorboard": command,
                    **({"compare": _compare_json(*compared)} if compared else {})})
        return 0
    print(f"Pareto front of {args.run}: {len(files.front)} of {len(data.results)} trials, target {target}"
          f" (accuracy in %):")
    print(text_table(trials_table(data, files.front, target)) if files.front else "  (no completed trials yet)")
    if compared:
        print(f"\nFronts compared on {target} (accuracy in %; hypervolume of cost / uniform w8 × accuracy, "
              "reference point (1.1, 0)):")
        print(text_table(summary_table(*compared)))
        print()
        print(text_table(compare_table(*compared)))
    print("\nwrote:")
    for path in written:
        print(f"  {path}")
    if files.allocations:
        print(f"  {len(files.allocations)} allocation figures under {Path(files.allocations[0]).parent.parent}/")
    if files.tensorboard:
        print(f"  TensorBoard runs: {', '.join(files.tensorboard)} (under {Path(args.run) / 'tb'})")
    print(f"\nopen {files.html} in a browser, or run:\n  {command}")
    return 0


def _compare_json(runs, names, target) -> list:
    from ..report._compare import run_hypervolume

    return [{"label": name, "run": str(run.path), "method": run.method, "trials": len(run.results),
             "hypervolume_val": run_hypervolume(run, target), "hypervolume_test": run_hypervolume(run, target, "test_acc"),
             "front": [_plain(r) for r in run.front(target)]} for run, name in zip(runs, names)]


def _plain(record):
    """A result record's JSON form (``--format json``)."""
    return record.to_json() if hasattr(record, "to_json") else record
