"""``jointopt list``: every registered name a command or a config accepts, in one form."""
from __future__ import annotations

import argparse

from ._listing import LISTINGS

HELP = f"""\
List what is registered and where each name can be used: {', '.join(k.replace('_', '-') for k in LISTINGS)}.
With no KIND, all of them. The same tables are printed by `jointopt inspect --list` (models),
`jointopt data list` (data sets, with what is prepared) and `jointopt cost-models`.

Besides registered names, models and data sets accept path/to/file.py:NAME and module:NAME, and
cost models also a measured table (.csv/.json).

examples:
  jointopt list
  jointopt list models
  jointopt list cost-models datasets --format json
"""


def register(subparsers) -> None:
    from ._options import add_format_option

    p = subparsers.add_parser("list", help="list the zoo models, data sets and cost models (--format json)",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kinds", nargs="*", metavar="KIND",
                   help=f"what to list: {', '.join(k.replace('_', '-') for k in LISTINGS)} (default: all)")
    p.add_argument("--data-dir", "--root", dest="root", metavar="DIR",
                   help="data folder whose prepared data sets are shown (default $JOINTOPT_DATA_DIR or "
                        "~/.cache/jointopt/data)")
    add_format_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    print_listings(args.kinds, args.output_format, root=args.root)
    return 0


def print_listings(kinds, output_format: str = "text", **options) -> None:
    from ._listing import as_json, as_text, resolve_kinds
    from ._options import print_json

    data = as_json(resolve_kinds(kinds), **options)
    if output_format == "json":
        print_json(data)
        return
    print("\n\n".join(as_text(kind, rows) for kind, rows in data.items()))
