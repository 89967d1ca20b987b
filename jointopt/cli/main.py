"""Entry point of the ``jointopt`` command: dispatches to one module per subcommand.

Every subcommand module defines ``register(subparsers)`` which adds its parser and sets
``func=run``. Errors derived from :class:`jointopt.JointoptError` (and bad files) become one line on
stderr and exit code 1; ``--debug`` shows the traceback instead.

The working directory is put on the import path, as ``python -m`` does, so ``module:factory``
names a module in the folder the command runs from (``jointopt inspect mynet:build_net``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from ..errors import JointoptError

SUBCOMMANDS = ["search", "export", "report", "inspect", "listing", "methods", "cost_models", "data"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jointopt",
        description=(
            "Find the Pareto front of accuracy versus hardware cost by searching jointly which "
            "channels to prune and which bit-width each remaining channel uses."
        ),
        epilog="Start with `jointopt search` (the built-in quickstart), then `jointopt report RUN`.",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"jointopt {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"jointopt.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"jointopt.cli.{name}":
                continue  # subcommand not built yet
            raise
        module.register(subparsers)
    return parser


def _cwd_on_import_path() -> None:
    """What ``python -m`` does: modules in the current folder import by name."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def main(argv: Optional[List[str]] = None) -> int:
    _cwd_on_import_path()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `jointopt ... | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("jointopt: interrupted; completed work is kept (resume with --resume)", file=sys.stderr)
        return 130
    except (JointoptError, FileNotFoundError, PermissionError) as exc:
        if args.debug:
            raise
        print(f"jointopt: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
