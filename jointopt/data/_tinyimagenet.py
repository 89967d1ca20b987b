"""Tiny ImageNet 200 from its JPEG folders (``tiny-imagenet-200.zip``).

Layout: ``wnids.txt`` (the 200 class ids, in class-index order), ``words.txt`` (id -> names),
``train/<wnid>/images/*.JPEG`` (500 per class) and ``val/images/*.JPEG`` with
``val/val_annotations.txt`` (``file<TAB>wnid<TAB>box``). The labelled ``val`` split is the test
split (the official test split has no labels); the validation split is held out from train. About
1.8 % of the images are grayscale and are converted to RGB. Decoded once, cached as uint8.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch

from ..errors import DataError
from ._base import Augmentation, Dataset, Split, stratified_split
from ._cache import cache_path, load_cache, save_cache
from ._download import RemoteFile, find_or_fetch
from ._progress import Counter

NAME = "tinyimagenet"
FOLDER = "tiny-imagenet-200"
ARCHIVE = RemoteFile(
    url="http://cs231n.stanford.edu/tiny-imagenet-200.zip",
    filename="tiny-imagenet-200.zip",
    size=248_100_043,
    md5="90528d7ca1a48142e341f4ef8d21d0de",
)
SIZE = 64
SHUFFLE_SEED = 0
CACHE_VERSION = 1


def load(root: Path, val_fraction: float = 0.1, seed: int = 0, download: bool = True) -> Dataset:
    key = {"dataset": NAME, "size": SIZE, "version": CACHE_VERSION}
    path = cache_path(root, NAME)
    cached = load_cache(path, key)
    if cached is None:
        cached = _read_folder(find_or_fetch("Tiny ImageNet", NAME, root, FOLDER, ARCHIVE, download))
        save_cache(path, key, cached)
    train, val = stratified_split(Split(cached["train_x"], cached["train_y"]), val_fraction, seed)
    return Dataset(
        name=NAME, train=train, val=val, test=Split(cached["test_x"], cached["test_y"]),
        input_shape=(3, SIZE, SIZE), num_classes=len(cached["class_names"]), class_names=list(cached["class_names"]),
        augmentation=Augmentation(shift_h=4, shift_w=4, flip=True),
        notes=f"cached at {path}; test = the official labelled val split",
    )



def _decode(paths: List[Path], label: str) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), SIZE, SIZE, 3), dtype=np.uint8)
    report = Counter(f"decoding Tiny ImageNet {label}", len(paths), "images", minimum=5000)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")  # grayscale (and CMYK) -> RGB
                if image.size != (SIZE, SIZE):
                    image = image.resize((SIZE, SIZE), Image.BILINEAR)
                out[i] = np.asarray(image)
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot decode image {str(path)!r}: {exc}") from None
        if (i + 1) % 1000 == 0 or i + 1 == len(paths):
            report.update(i + 1)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _class_names(folder: Path, wnids: List[str]) -> List[str]:
    words: Dict[str, str] = {}
    if (folder / "words.txt").is_file():
        for line in (folder / "words.txt").read_text(encoding="utf-8", errors="replace").splitlines():
            wnid, _, names = line.partition("\t")
            words[wnid.strip()] = names.split(",")[0].strip()
    return [words.get(w, w) for w in wnids]


def _read_folder(folder: Path) -> dict:
    if not (folder / "wnids.txt").is_file():
        raise DataError(f"{str(folder / 'wnids.txt')!r} is missing; {str(folder)!r} is not a Tiny ImageNet folder")
    wnids = [w.strip() for w in (folder / "wnids.txt").read_text().split() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    train: List[Tuple[Path, int]] = []
    for wnid in wnids:
        images = sorted((folder / "train" / wnid / "images").glob("*.JPEG"))
        if not images:
            raise DataError(f"no training images in {str(folder / 'train' / wnid / 'images')!r}")
        train += [(p, index[wnid]) for p in images]
    test = _val_annotations(folder, index)
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(train))  # limit_train keeps all classes
    train = [train[i] for i in order]
    return {
        "train_x": _decode([p for p, _ in train], "train"), "train_y": torch.tensor([c for _, c in train]),
        "test_x": _decode([p for p, _ in test], "val"), "test_y": torch.tensor([c for _, c in test]),
        "class_names": _class_names(folder, wnids),
    }


def _val_annotations(folder: Path, index: Dict[str, int]) -> List[Tuple[Path, int]]:
    path = folder / "val" / "val_annotations.txt"
    if not path.is_file():
        raise DataError(f"{str(path)!r} is missing; the Tiny ImageNet folder {str(folder)!r} is incomplete")
    items = []
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        if fields[1] not in index:
            raise DataError(f"{str(path)!r} names class {fields[1]!r}, which is not in wnids.txt")
        image = folder / "val" / "images" / fields[0]
        if not image.is_file():
            raise DataError(f"{str(image)!r} is listed in val_annotations.txt but missing")
        items.append((image, index[fields[1]]))
    return sorted(items)
