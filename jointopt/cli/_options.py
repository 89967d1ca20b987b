"""Option conventions shared by every subcommand.

Lists: every option that takes several values accepts them comma-separated, repeated, or both, so
``--exclude fc,conv1.conv``, ``--exclude fc --exclude conv1.conv`` and
``--weight-bits 0,4 --weight-bits 8`` all work. (``--set KEY=VALUE`` is the one exception: a value
may itself contain commas, ``--set space.act_bits=[2,4,8]``, so it is repeated only. Its value is read
with the type of the field it sets, ``jointopt.Config.parse_overrides``: ``--set search.epochs=abc``
is a one-line error naming the key and the type.)

Output: ``--format text|json`` on the commands that list or report something; JSON goes to
stdout as one document, so ``jointopt inspect resnet8 --format json | jq`` works.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence


def split_items(values) -> list:
    """``["a,b", "c"]`` (or ``"a,b"``) → ``["a", "b", "c"]``; empty items are dropped."""
    values = [values] if isinstance(values, str) else list(values)
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


class ListAction(argparse.Action):
    """Collect comma-separated and repeated values into one list; the first use replaces the default.

    ``item`` converts each element (``int`` for bit-widths); a bad element is an argparse error that
    quotes it.
    """

    def __init__(self, option_strings, dest, item: Callable = str, **kwargs):
        self.item = item
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        items = [] if current is None or current is self.default else list(current)
        for text in split_items(values):
            try:
                items.append(self.item(text))
            except ValueError:
                kind = getattr(self.item, "__name__", "value")
                raise argparse.ArgumentError(self, f"{text!r} is not a valid {kind}; give a comma-separated "
                                                   f"list or repeat the option") from None
        setattr(namespace, self.dest, items)


def add_list_option(parser: argparse.ArgumentParser, *flags: str, item: Callable = str, default: Sequence = (),
                    help: str = "", **kwargs) -> None:
    """An option following the list convention; ``help`` gets the convention and the default appended."""
    shown = ",".join(map(str, default)) if default else "none"
    parser.add_argument(*flags, action=ListAction, item=item, default=list(default),
                        help=f"{help} (comma-separated or repeated; default: {shown})", **kwargs)


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", dest="output_format", choices=("text", "json"), default="text",
                        help="text for people (default) or json for scripts (one document on stdout)")


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
