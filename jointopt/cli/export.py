"""``jointopt export``: one point of a run's front as deployable files, each verified."""
from __future__ import annotations

import argparse

HELP = """\
Export one trial of a run directory as deployable files and verify each one:

  torch  NAME.json (architecture manifest) + NAME.weights.npz; reload with jointopt.load(DIR)
  onnx   NAME.onnx: INT8/INT4/INT2 weight initializers per bit-width group + DequantizeLinear,
         Q/DQ of every layer's input activations (opset 21; runs on onnxruntime's CPU provider)
  npz    NAME.packed.npz: weight codes bit-packed per channel width, scales, biases
  c      integer-only C99: NAME.h, NAME.c, jointopt_runtime.c/.h and NAME_main.c (a host program:
         cc -std=c99 -O2 -Wall -Wextra -Werror OUT/*.c -I OUT -lm -o infer; ./infer < input.f32)
  onnx_int8  NAME.int8.onnx: the integer network as ONNX integer operators (QLinearConv, ...)

Choose the point with --trial N, or from the Pareto front: --max-cost X (the most accurate point
whose target cost is at most X) and/or --min-accuracy A (the cheapest point with at least A %
validation accuracy). Verification runs onnxruntime against the PyTorch network on a validation
batch, reloads every file, and checks the packed weight bits against the memory cost model; the
results go to verify.json, the per-layer table to summary.txt.

examples:
  jointopt export runs/quickstart --trial 3
  jointopt export runs/quickstart --max-cost 5 --format onnx --format c
  jointopt export runs/cifar --min-accuracy 85 --format all --out deploy/
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a trial as PyTorch, ONNX, packed npz and a C header (verified)",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory written by `jointopt search`")
    p.add_argument("--trial", type=int, metavar="N", help="trial number to export (any completed trial)")
    p.add_argument("--max-cost", type=float, metavar="X",
                   help="pick the most accurate front point whose target cost is <= X, in the target cost model's "
                        "display unit as the front table prints it (memory: kB = 1000 bytes; see `jointopt cost-models`)")
    p.add_argument("--min-accuracy", type=float, metavar="A",
                   help="pick the cheapest front point with validation accuracy >= A percent (e.g. 85)")
    p.add_argument("--format", dest="formats", action="append", metavar="F",
                   help="torch, onnx, npz, c, onnx_int8 or all (repeatable or comma-separated; default all)")
    p.add_argument("--out", metavar="DIR", help="output directory (default RUN/trials/N/export)")
    p.add_argument("--name", default="model", help="base name of the files and prefix of the C identifiers")
    p.add_argument("--int2", choices=("int4", "native"), default="int4",
                   help="ONNX storage of 2-bit weights: in INT4 containers (default, opset 21, runs on onnxruntime's "
                        "CPU provider) or native INT2 (opset 25; onnxruntime runs it only with graph optimisations off)")
    p.add_argument("--opset", type=int, metavar="N", help="ONNX opset (default: the smallest that holds the weights)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="validation samples used for verification (default 256)")
    p.add_argument("--min-agreement", type=float, default=99.9, metavar="PERCENT",
                   help="fail unless onnxruntime (running the graph as written) and PyTorch agree on the top-1 "
                        "class of this percentage of the batch (default 99.9)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import ExportError
    from ..export import ExportOptions
    from ..export._run import check_run, export_trial, select_trial

    check_run(args.run)
    if args.trial is not None and (args.max_cost is not None or args.min_accuracy is not None):
        raise ExportError("pass either --trial or --max-cost/--min-accuracy, not both")
    if args.trial is None:
        trial, why = select_trial(args.run, args.max_cost, args.min_accuracy)
        print(f"selected trial {trial}: {why}")
    else:
        trial = args.trial
    if args.batch_size < 1:
        raise ExportError(f"--batch-size {args.batch_size} must be >= 1")
    options = ExportOptions(formats=tuple(args.formats or ["all"]), name=args.name, int2=args.int2,
                            opset=args.opset, min_agreement=args.min_agreement / 100)
    result, problem = export_trial(args.run, trial, args.out, options, args.batch_size)
    if problem:
        print(f"note: verified on a random normal batch, the validation data could not be loaded ({problem})")
    print(f"exported trial {trial} of {args.run} to {result.directory}\n")
    print(result.table())
    print("\nverification:")
    print("  " + result.report().replace("\n", "\n  "))
    print("\nfiles:")
    for kind, path in result.files.items():
        print(f"  {kind:<9} {path}  ({path.stat().st_size:,} bytes)")
    return 0
