"""Entry point of the ``jointopt`` command: dispatches to one module per subcommand.

Every subcommand module defines ``register(subparsers)`` which adds its parser and sets
``func=run``. Errors derived from :class:`jointopt.JointoptError`, OS errors (a missing file, a
read-only or full disk) and any other error become one line on stderr and exit code 1; Ctrl-C one
line and exit code 130; ``--debug`` shows the traceback instead.

The working directory is put on the import path, as ``python -m`` does, so ``module:factory``
names a module in the folder the command runs from (``jointopt inspect mynet:build_net``).
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import List, Optional

from ..errors import JointoptError

SUBCOMMANDS = ["search", "export", "report", "inspect", "listing", "methods", "cost_models", "data"]


def build_parser() -> argparse.ArgumentParser:
    """The ``jointopt`` parser with one subparser per module in :data:`SUBCOMMANDS`."""
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
        importlib.import_module(f"jointopt.cli.{name}").register(subparsers)
    return parser


def _cwd_on_import_path() -> None:
    """What ``python -m`` does: modules in the current folder import by name."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``jointopt`` with ``argv`` (default: the command line); return the exit code (see the module)."""
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
        if args.debug:
            raise
        print(f"jointopt: interrupted; completed trials are kept{_resume_hint(args)}", file=sys.stderr)
        return 130
    except (JointoptError, OSError) as exc:  # OSError: a read-only or full disk, a missing file
        if args.debug:
            raise
        hint = "; free some space or choose another --out" if getattr(exc, "errno", None) == errno.ENOSPC else ""
        print(f"jointopt: error: {_one_line(exc)}{hint}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, or a library's error jointopt does not know: one line, the traceback on --debug
        if args.debug:
            raise
        storage = _storage_failure(exc)
        if storage is not None:
            print(f"jointopt: error: {storage}; completed trials are kept{_resume_hint(args, 'when it is back')}",
                  file=sys.stderr)
            return 1
        print(f"jointopt: error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _resume_hint(args, when: str = "") -> str:
    if getattr(args, "command", None) == "search" and getattr(args, "out", None):
        return f"; {when + ', ' if when else ''}the interrupted trial is retried by `jointopt search --out {args.out} --resume`"
    return ""


def _storage_failure(exc: BaseException) -> Optional[str]:
    """What failed, when ``exc`` is the study's database failing under a running command (a server that
    stopped, a dropped connection), named by its root cause rather than Optuna's generic commit message."""
    optuna, sqlalchemy = sys.modules.get("optuna"), sys.modules.get("sqlalchemy")
    kinds = tuple(kind for kind in (getattr(getattr(optuna, "exceptions", None), "StorageInternalError", None),
                                    getattr(getattr(sqlalchemy, "exc", None), "DBAPIError", None)) if kind is not None)
    if not kinds or not isinstance(exc, kinds):
        return None
    root, seen = exc, set()
    while (root.__cause__ or root.__context__) is not None and id(root) not in seen:
        seen.add(id(root))
        root = root.__cause__ or root.__context__
    first = (str(root).strip().splitlines() or [type(root).__name__])[0]
    return f"the study's database failed ({type(root).__name__}: {first[:200]})"


if __name__ == "__main__":
    sys.exit(main())
