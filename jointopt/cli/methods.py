"""``jointopt methods``: the methods ``jointopt search --method NAME`` can run, one line each."""
from __future__ import annotations

import argparse

HELP = """\
List the methods a study can run its trials with. `joint` (the default) is the joint pruning +
channel-wise mixed-precision search; the others are the methods it is compared with, on the same
data, model, cost models, budget and run-directory format. Each method's own knobs are the config
section methods.NAME (e.g. --set methods.magnitude.scope=global); `jointopt report RUN_A --compare
RUN_B ...` overlays the fronts of several runs.

examples:
  jointopt methods
  jointopt methods --format json
  jointopt search --method magnitude --out runs/magnitude
  jointopt report runs/joint --compare runs/magnitude runs/uniform
"""


def register(subparsers) -> None:
    from ._options import add_format_option

    p = subparsers.add_parser("methods", help="the search methods (--method NAME), one line each",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_format_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .listing import print_listings

    print_listings(["methods"], args.output_format)
    return 0
