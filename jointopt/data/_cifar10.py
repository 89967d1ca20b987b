"""CIFAR-10 from the official python pickles (``cifar-10-python.tar.gz``).

Each batch file is a pickled dict with ``data`` (uint8 [10000, 3072]: 1024 red, then 1024 green,
then 1024 blue values, each a row-major 32x32 plane) and ``labels``. The files were pickled by
Python 2, so their keys load as bytes; both spellings are accepted. Files are checked against the
official MD5 of every member before they are unpickled.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ..errors import DataError
from ._base import Augmentation, Dataset, Split, stratified_split
from ._cache import cache_path, load_cache, save_cache
from ._download import RemoteFile, find_or_fetch, md5sum

NAME = "cifar10"
FOLDER = "cifar-10-batches-py"
ARCHIVE = RemoteFile(
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    filename="cifar-10-python.tar.gz",
    size=170_498_071,
    md5="c58f30108f718f92721af3b95e74349a",
)
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
MEMBER_MD5: Dict[str, Optional[str]] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load(root: Path, val_fraction: float = 0.1, seed: int = 0, download: bool = True) -> Dataset:
    key = {"dataset": NAME, "member_md5": dict(MEMBER_MD5)}
    cached = load_cache(cache_path(root, NAME), key)
    if cached is None:
        folder = find_or_fetch("CIFAR-10", NAME, root, FOLDER, ARCHIVE, download)
        cached = _read_folder(folder)
        save_cache(cache_path(root, NAME), key, cached)
    train, val = stratified_split(Split(cached["train_x"], cached["train_y"]), val_fraction, seed)
    return Dataset(
        name=NAME, train=train, val=val, test=Split(cached["test_x"], cached["test_y"]),
        input_shape=(3, 32, 32), num_classes=10, class_names=list(cached["class_names"]),
        augmentation=Augmentation(shift_h=4, shift_w=4, flip=True),
        notes=f"cached at {cache_path(root, NAME)}",
    )



def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"CIFAR-10 file {str(path)!r} is missing; the folder {str(path.parent)!r} is incomplete "
                        "(delete it to extract or download again)")
    expected = MEMBER_MD5.get(path.name)
    if expected is not None and md5sum(path) != expected:
        raise DataError(f"CIFAR-10 file {str(path)!r} is corrupt (MD5 mismatch); delete {str(path.parent)!r} "
                        "to extract or download it again")
    with open(path, "rb") as handle:
        try:
            raw = pickle.load(handle, encoding="bytes")
        except Exception as exc:
            raise DataError(f"cannot unpickle CIFAR-10 file {str(path)!r}: {exc}") from None
    # Python-2 pickles give bytes keys; normalise to str
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _read_batches(folder: Path, names: List[str]) -> Tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for name in names:
        batch = _unpickle(folder / name)
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = batch.get("labels", batch.get("fine_labels"))
        if data.ndim != 2 or data.shape[1] != 3072 or labels is None or len(labels) != data.shape[0]:
            raise DataError(f"CIFAR-10 file {str(folder / name)!r} does not hold data [N, 3072] and N labels")
        xs.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        ys.append(torch.as_tensor(np.asarray(labels, dtype=np.int64)))
    return torch.cat(xs), torch.cat(ys)


def _read_folder(folder: Path) -> dict:
    train_x, train_y = _read_batches(folder, TRAIN_FILES)
    test_x, test_y = _read_batches(folder, TEST_FILES)
    names = CLASS_NAMES
    if (folder / "batches.meta").is_file():
        meta = _unpickle(folder / "batches.meta")
        label_names = meta.get("label_names")
        if label_names:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in label_names]
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "class_names": names}
