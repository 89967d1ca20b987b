"""``jointopt cost-models``: list the installed cost models, or check one with the conformance kit."""
from __future__ import annotations

import argparse
import sys

HELP = """\
List the hardware cost models that are installed: built-ins and plug-ins registered by any
installed package under the entry-point group `jointopt.cost_models`.

With --check SPEC, run the conformance kit (jointopt.testing) on one cost model over the small zoo
models: non-negative, differentiable in the allocation, monotone in kept channels and in bits, and
the hard cost equal to the frozen network's. SPEC is a name, module:Class, path/to/file.py:Class,
or a measured look-up table (.csv/.json).

examples:
  jointopt cost-models
  jointopt cost-models --check ne16
  jointopt cost-models --check my_device.py:MyCost --models resnet8,dscnn
  jointopt cost-models --check measured.csv
"""

SMALL_MODEL_WEIGHTS = 1_000_000  # --check uses the zoo models up to this size unless --models is given


def register(subparsers) -> None:
    from ._options import add_format_option, add_list_option

    p = subparsers.add_parser("cost-models", help="list installed cost models, or check one (--check SPEC)",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", metavar="SPEC", help="run the conformance kit on this cost model")
    add_list_option(p, "--models", metavar="NAMES",
                    help="zoo models for --check (default: every zoo model with at most 1 M weights)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random allocation used by --check (default 0)")
    add_format_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.check:
        return _check(args.check, args.models, args.seed)
    from .listing import print_listings

    print_listings(["cost_models"], args.output_format)
    if args.output_format == "text":
        print("\nAlso accepted wherever a cost model is named: module:Class, path/to/file.py:Class, a measured "
              "table (.csv/.json).\nCheck one with `jointopt cost-models --check SPEC`.")
    return 0


def _small_models():
    from ..zoo import create_model, list_models

    chosen = []
    for name in list_models():
        weights = sum(p.numel() for p in create_model(name).parameters())
        if weights <= SMALL_MODEL_WEIGHTS:
            chosen.append(name)
    return chosen


def _check(spec: str, models, seed: int) -> int:
    import torch

    from ..cost import get_cost_model
    from ..testing import check_cost_model

    torch.set_num_threads(min(torch.get_num_threads(), 4))
    cost_model = get_cost_model(spec)
    names = list(models) or _small_models()
    print(f"checking {cost_model.name!r} ({type(cost_model).__name__}, unit {cost_model.unit}) on "
          f"{', '.join(names)}", flush=True)
    try:
        results = check_cost_model(cost_model, models=names, seed=seed)
    except AssertionError as exc:
        print(f"jointopt: check failed: {exc}", file=sys.stderr)
        return 1
    width = max(len(r.model) for r in results)
    print(f"\n{'model':<{width}}  {'reference':>16}  {'random: soft':>16}  {'hard = frozen':>16}")
    for r in results:
        print(f"{r.model:<{width}}  {cost_model.format(r.reference):>16}  {cost_model.format(r.soft):>16}  "
              f"{cost_model.format(r.hard):>16}")
    print("\nreference: unpruned, widest weights and activations. All checks passed: non-negative, "
          "differentiable,\nmonotone in kept channels and in bits, hard cost equal to the frozen network's.")
    return 0
