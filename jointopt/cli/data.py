"""``jointopt data``: list the data sets, download and preprocess one, synthesise the KWS stand-in."""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="list, download and preprocess data sets",
        description="Data sets are downloaded from their official locations, verified (size, MD5), extracted "
                    "atomically and cached as tensors under the data folder (default $JOINTOPT_DATA_DIR or "
                    "~/.cache/jointopt/data).",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")

    listing = actions.add_parser("list", help="list the registered data sets and what is prepared")
    _root_option(listing)

    prepare = actions.add_parser("prepare", help="download (if needed), verify, preprocess and cache a data set")
    prepare.add_argument("name", help="a data-set name from `jointopt data list`")
    _root_option(prepare)
    prepare.add_argument("--no-download", action="store_true",
                         help="only use files already in the data folder; fail instead of downloading")

    synth = actions.add_parser("synth-kws", help="write a synthetic keyword-spotting corpus with espeak-ng",
                               description="Speak the 35 Speech Commands words with espeak-ng voices and write them "
                                           "in the Speech Commands layout (a stand-in for gsc; see synthetic_kws).")
    synth.add_argument("--out", required=True, help="folder to create, e.g. DATA_DIR/synthetic_kws/corpus")
    synth.add_argument("--speakers", type=int, default=100, help="synthetic speakers, each says every word once")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--jobs", type=int, default=2, help="espeak-ng processes at once")

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
    from ..data import describe_dataset, list_datasets
    from ..data._cache import resolve_root

    root = resolve_root(args.root)
    print(f"data folder: {root}")
    names = list_datasets()
    width = max(len(n) for n in names)
    for name in names:
        state = "prepared" if (root / name / "cache.pt").is_file() else "files present" if (root / name).is_dir() else ""
        if name == "digits":
            state = "bundled"
        elif name == "fashion_mnist" and not state:
            from ..data._fashion_mnist import FILES, SYSTEM_DIR

            if all((SYSTEM_DIR / f.filename).is_file() for f in FILES.values()):
                state = f"system copy in {SYSTEM_DIR}"
        print(f"  {name:<{width}}  {describe_dataset(name)}" + (f"  [{state}]" if state else ""))
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
