"""``jointopt data``: list the data sets, download and preprocess one, synthesise the KWS stand-in."""
from __future__ import annotations

import argparse
import sys


LIST_HELP = """\
List the registered data sets (built-ins and any registered with jointopt.register_dataset) with
what is already in the data folder: bundled, prepared (cached tensors), files present, or a
system copy.

examples:
  jointopt data list
  jointopt data list --data-dir /big/disk/data
  jointopt data list --format json
"""

PREPARE_HELP = """\
Make a data set ready: download its official files if missing (size and MD5 verified, resumable),
extract them atomically, preprocess and cache the tensors, then print the splits. Later loads read
the cache in seconds. NAME is a registered name, path/to/file.py:NAME or module:NAME (a file that
registers the data set, or whose NAME is the factory).

examples:
  jointopt data prepare cifar10
  jointopt data prepare gsc --data-dir /big/disk/data
  jointopt data prepare cifar10 --no-download       # offline: use files already in the folder
  jointopt data prepare own_data.py:blobs
"""

SYNTH_HELP = """\
Speak the 35 Speech Commands words with espeak-ng voices and write them in the Speech Commands
layout: a stand-in for gsc on machines without the real corpus (see jointopt.data.synthetic_kws).
Each speaker is one voice, variant, pitch and speed; no speaker is in two splits.

examples:
  jointopt data synth-kws --out ~/.cache/jointopt/data/synthetic_kws/corpus
  jointopt data synth-kws --out DATA_DIR/synthetic_kws/corpus --speakers 1000 --jobs 4
"""


def register(subparsers) -> None:
    from ._options import add_format_option

    raw = argparse.RawDescriptionHelpFormatter
    parser = subparsers.add_parser(
        "data", help="list, download and preprocess data sets", formatter_class=raw,
        description="Data sets are downloaded from their official locations, verified (size, MD5), extracted "
                    "atomically and cached as tensors under the data folder (default $JOINTOPT_DATA_DIR or "
                    "~/.cache/jointopt/data).\n\nexamples:\n  jointopt data list\n  jointopt data prepare cifar10\n"
                    "  jointopt data synth-kws --out ~/.cache/jointopt/data/synthetic_kws/corpus",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")

    listing = actions.add_parser("list", help="list the registered data sets and what is prepared",
                                 description=LIST_HELP, formatter_class=raw)
    _root_option(listing)
    add_format_option(listing)

    prepare = actions.add_parser("prepare", help="download (if needed), verify, preprocess and cache a data set",
                                 description=PREPARE_HELP, formatter_class=raw)
    prepare.add_argument("name", help="a data-set name from `jointopt data list`, file.py:NAME or module:NAME")
    _root_option(prepare)
    prepare.add_argument("--no-download", action="store_true",
                         help="only use files already in the data folder; fail instead of downloading")

    synth = actions.add_parser("synth-kws", help="write a synthetic keyword-spotting corpus with espeak-ng",
                               description=SYNTH_HELP, formatter_class=raw)
    synth.add_argument("--out", required=True, metavar="DIR",
                       help="folder to create, e.g. DATA_DIR/synthetic_kws/corpus")
    synth.add_argument("--speakers", type=int, default=100, metavar="N",
                       help="synthetic speakers, each says every word once (default 100)")
    synth.add_argument("--seed", type=int, default=0, metavar="N",
                       help="seed of the speakers' voices, pitches and speeds, the clip offsets and the noise "
                            "(default 0)")
    synth.add_argument("--jobs", type=int, default=2, metavar="N", help="espeak-ng processes at once (default 2)")

    parser.set_defaults(func=run, parser=parser)


def _root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", "--data-dir", dest="root", default=None, metavar="DIR",
                        help="data folder (default $JOINTOPT_DATA_DIR or ~/.cache/jointopt/data)")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "list":
        return _list(args)
    if args.data_command == "prepare":
        return _prepare(args)
    if args.data_command == "synth-kws":
        return _synth(args)
    args.parser.print_help()
    return 0


def _list(args) -> int:
    from ..data._cache import resolve_root
    from ._listing import as_json, as_text
    from ._options import print_json

    root = resolve_root(args.root)
    data = as_json(["datasets"], root=root)
    if args.output_format == "json":
        print_json({"data_folder": str(root), **data})
    else:
        print(f"data folder: {root}")
        print(as_text("datasets", data["datasets"]))
    return 0


def _prepare(args) -> int:
    import time

    from ..data import get_dataset

    start = time.monotonic()
    dataset = get_dataset(args.name, args.root, download=not args.no_download)
    print(dataset.summary())
    if dataset.notes:
        print(f"  {dataset.notes}")
    print(f"  ready in {time.monotonic() - start:.1f} s", file=sys.stderr)
    return 0


def _synth(args) -> int:
    from ..data.synthetic_kws import generate

    out = generate(args.out, speakers=args.speakers, seed=args.seed, jobs=args.jobs)
    print(f"wrote the synthetic keyword corpus to {out}")
    if out.name == "corpus" and out.parent.name == "synthetic_kws":
        print(f"load it with: jointopt data prepare synthetic_kws --root {out.parent.parent}")
    else:
        print("the synthetic_kws data set reads DATA_DIR/synthetic_kws/corpus: move the folder there")
    return 0
