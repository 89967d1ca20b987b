"""``jointopt search``: run the study (warm-up once, N trials), print the Pareto front."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """\
Run a study: train the float network once (warm-up), then run trials that each search which
channels to prune and which bit-width every kept channel uses under a cost target, freeze the
choice into a smaller integer-weight network, fine-tune it and evaluate it. Optuna picks the
regularisation strength λ of every trial; the trials trace the accuracy-vs-cost Pareto front.

With no --config this runs the built-in quickstart (a small CNN on scikit-learn's digits, 8 trials,
about a minute on a laptop CPU).

examples:
  jointopt search                                  # quickstart, memory target
  jointopt search --target bitops --trials 12
  jointopt search --config configs/cifar10_resnet8.yaml --data-dir ~/data --device cuda
  jointopt search --target latency --cost-model mpic
  jointopt search --lambda 2.0                     # one trial with a fixed strength
  jointopt search --method magnitude --out runs/mag  # another method's trials (`jointopt methods`)
  jointopt search --set search.epochs=30 --set data.batch_size=64
  jointopt search --out runs/a --resume            # continue an interrupted study
  jointopt search --out runs/shared --storage postgresql://user@db/jointopt   # one of many workers
"""


def register(subparsers) -> None:
    from ._options import add_list_option

    p = subparsers.add_parser("search", help="run the study and print the Pareto front (the main job)",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="YAML config (default: the built-in quickstart)")
    p.add_argument("--method", metavar="NAME",
                   help="how the trials are made (default from the config: joint): " + _method_names() +
                        "; `jointopt methods` explains each; knobs: --set methods.NAME.KEY=VALUE")
    p.add_argument("--target", metavar="MODEL",
                   help="cost model to minimise (default from the config: memory): memory, bitops, macs, mpic, ne16, "
                        "module:Class, file.py:Class, a LUT file, or 'latency' (= the first --cost-model, default mpic)")
    add_list_option(p, "--cost-model", metavar="SPEC", help="further cost models to compute and report for every trial")
    p.add_argument("--trials", type=int, metavar="N",
                   help="number of completed trials to reach (default from the config: 8 for the quickstart)")
    p.add_argument("--lambda", dest="fixed_lambda", type=float, metavar="X",
                   help="run one trial with this λ instead of tuning")
    p.add_argument("--out", metavar="DIR", help="run directory (default: a new folder under runs/)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL shared by several workers (default: SQLite in "
                                                    "the run directory); journal:PATH for a journal file")
    p.add_argument("--resume", action="store_true", help="continue the study in --out (completed trials are kept)")
    p.add_argument("--device", metavar="DEV", help="cpu, cuda, cuda:N or auto (default from the config: cpu)")
    p.add_argument("--data-dir", metavar="DIR", help="where the data-set files are, or are downloaded to (default "
                                                     "$JOINTOPT_DATA_DIR or ~/.cache/jointopt/data)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="seed of the whole study (default from the config: 0; same seed, same front on one machine)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default from the config: 1 for the quickstart; unset = torch's "
                        "default, one per core)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, read with the type of its field (the fields are documented in "
                        "jointopt.Config and its sections): --set search.epochs=30, --set data.augment=false, "
                        "--set search.selector_lr=null, --set space.act_bits=[2,4,8], --set "
                        "methods.magnitude.scope=global; repeated, one each (a value may contain commas)")
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard events")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision: train under bf16 autocast (for CUDA; quantizers, costs and evaluation stay "
                        "fp32); the config key amp")
    p.add_argument("--workers", type=int, metavar="N",
                   help="run N worker processes on this machine on one study (journal storage in --out unless "
                        "--storage is given; the warm-up is computed once), one per GPU with --device cuda")
    add_list_option(p, "--devices", metavar="DEV",
                    help="one worker process per device, e.g. --devices cuda:0,cuda:1 (implies --workers)")
    p.set_defaults(func=run)


def _method_names() -> str:
    from ..methods._registry import BUILTINS

    return ", ".join(BUILTINS)


def resolve_config(args):
    from ..config import Config
    from ..tune import quickstart_config

    from ..tune.rundir import CONFIG

    if args.resume and not args.config and args.out and (Path(args.out) / CONFIG).exists():
        config = Config.from_yaml(Path(args.out) / CONFIG)
    else:
        config = Config.from_yaml(args.config) if args.config else quickstart_config()
    # every change as a typed value, applied at once and checked as a whole: --set texts are read with
    # their fields' types (Config.parse_overrides); the options win over --set
    changes = {"method": args.method} if getattr(args, "method", None) else {}
    changes.update(Config.parse_overrides(args.set))
    if args.target == "latency":
        changes["cost.target"] = args.cost_model[0] if args.cost_model else "mpic"
        extra = args.cost_model[1:]
    else:
        if args.target:
            changes["cost.target"] = args.target
        extra = args.cost_model
    if extra:
        changes["cost.report"] = list(dict.fromkeys([*changes.get("cost.report", config.cost.report), *extra]))
    if args.fixed_lambda is not None:  # one trial: the study, its progress and its config say so
        if args.trials not in (None, 1):
            from ..errors import ConfigError

            raise ConfigError(f"--lambda runs one trial with a fixed strength, but --trials {args.trials} was given; "
                              "drop one of them")
        changes["tuner.trials"] = 1
    if getattr(args, "amp", False):
        changes["amp"] = True
    for flag, key in (("trials", "tuner.trials"), ("device", "device"), ("data_dir", "data.root"), ("seed", "seed"),
                      ("threads", "threads")):
        value = getattr(args, flag)
        if value is not None:
            changes[key] = value
    config = config.override(changes) if changes else config
    from ..cost import get_cost_model

    for name in [config.cost.target] + list(config.cost.report) + ([config.cost.second] if config.cost.second else []):
        get_cost_model(name)  # fail now, before any training, on an unknown cost model
    return config


def run(args) -> int:
    from ..report import progress_listener, tensorboard_command
    from ..tune import Study
    from ..tune.rundir import default_run_dir

    config = resolve_config(args)
    out = Path(args.out) if args.out else default_run_dir()
    args.out = str(out)  # what an interrupted study is resumed from (the one-line message says so)
    from ..train.distributed import launched

    if launched():  # started by torchrun: one trial on every process (DistributedDataParallel)
        return _run_torchrun(args, config, out)
    listeners = [progress_listener(quiet=args.quiet)]
    workers = args.workers is not None or bool(args.devices)
    if not args.no_tensorboard:
        from ..report import tensorboard_listener

        # in a study of its own, the figures are drawn in a child process while the trials train
        listeners.append(tensorboard_listener(out, background=not workers))
    if args.workers is not None or args.devices:  # one process per device on one study
        return _run_workers(args, config, out, listeners)
    study = Study(config, out, storage=args.storage, resume=args.resume, listeners=listeners,
                  fixed_lambda=args.fixed_lambda, argv=["jointopt"] + sys.argv[1:])
    summary = study.run()
    print(f"\nPareto front ({len(summary['front'])} of {len(summary['results'])} trials), target "
          f"{config.cost.target}; accuracy on validation (the tuner's objective) and test:")
    print(study.table)
    failed = summary.get("failed") or []
    if failed:  # kept off the front, with their reasons (trials/<n>/failure.json)
        print(f"\n{len(failed)} trial{'s' if len(failed) != 1 else ''} failed (not on the front; "
              f"--resume does not retry them):")
        for f in failed:
            print(f"  trial {f['trial']}: {f['reason']}")
    print(f"\nrun directory: {out}")
    print(f"  report:      jointopt report {out}")
    print(f"  tensorboard: {tensorboard_command(out, config.to_dict(), trials=len(summary['results']))}")
    print(f"  export:      jointopt export {out} --trial N --format onnx")
    return 0


def _run_workers(args, config, out, listeners) -> int:
    from ..errors import ConfigError
    from ..tune.front import front_table
    from ..tune.workers import launch, worker_devices

    if args.fixed_lambda is not None:
        raise ConfigError("--lambda runs one trial; it cannot be shared by --workers")
    devices = worker_devices(config.device, args.workers, args.devices)
    print(f"starting {len(devices)} workers on {out} ({', '.join(devices)}); their own output is in {out}/workers/",
          file=sys.stderr)
    try:
        summary = launch(config, out, devices, storage=args.storage, resume=args.resume,
                         tensorboard=not args.no_tensorboard, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted: every worker stopped; continue with: jointopt search --out {out} --resume "
              f"--workers {len(devices)}", file=sys.stderr)
        return 130
    print(f"\nPareto front ({len(summary['front'])} of {len(summary['results'])} trials, {len(devices)} workers), "
          f"target {config.cost.target}; accuracy on validation (the tuner's objective) and test:")
    print(front_table(summary["front"], config.cost.target, summary["baselines"]))
    print(f"\nrun directory: {out}")
    return 0


def _run_torchrun(args, config, out) -> int:
    import os

    from ..errors import ConfigError
    from ..report import progress_listener
    from ..tune.distributed import run_trial

    if args.fixed_lambda is None:
        raise ConfigError("under torchrun, jointopt search runs one trial on every process: pass --lambda X "
                          "(a study of many trials uses --workers or --storage instead)")
    if args.workers is not None or args.devices or args.storage or args.resume:
        raise ConfigError("under torchrun, jointopt search runs one trial: --workers, --devices, --storage and "
                          "--resume do not apply")
    main = int(os.environ.get("RANK", "0")) == 0
    listeners = [progress_listener(quiet=args.quiet)] if main else []
    if main and not args.no_tensorboard:
        from ..report import tensorboard_listener

        listeners.append(tensorboard_listener(out))
    result = run_trial(config, out, args.fixed_lambda, listeners, argv=["torchrun", "jointopt"] + sys.argv[1:])
    if main:
        print(f"\none trial on {result['world_size']} processes, target {config.cost.target}:")
        print(result["table"])
        print(f"\nrun directory: {out}")
    return 0
