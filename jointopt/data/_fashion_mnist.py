"""Fashion-MNIST from the IDX files (gzip-compressed), 60,000 train and 10,000 test 28x28 images.

Where the files are looked for, in order: ``root/fashion_mnist/`` (or ``root/`` itself), the
system copy of Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``),
then the official download. Debian re-compresses the files, so the system copy is checked by its
decompressed sizes instead of the upstream MD5 sums; downloaded files are checked by size and MD5.
Every file is also checked against its own IDX header.
"""
from __future__ import annotations

import gzip
import struct
import warnings
import zlib
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from ..errors import DataError
from ._base import Augmentation, Dataset, Split, stratified_split
from ._download import RemoteFile, fetch

NAME = "fashion_mnist"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FILES: Dict[str, RemoteFile] = {
    "train_x": RemoteFile(BASE_URL + "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", 26_421_880,
                          "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train_y": RemoteFile(BASE_URL + "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz", 29_515,
                          "25c81989df183df01b3e8a0aad5dffbe"),
    "test_x": RemoteFile(BASE_URL + "t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", 4_422_102,
                         "bef4ecab320f06d8554ea6380940ec79"),
    "test_y": RemoteFile(BASE_URL + "t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 5_148,
                         "bb300cfdad3c16e7a12a480ee83cd310"),
}
# decompressed sizes of the full data set (16-byte IDX header + 60,000/10,000 28x28 images, 8-byte header +
# one byte per label), used to accept the system copy
SYSTEM_SIZES = {"train_x": 47_040_016, "train_y": 60_008, "test_x": 7_840_016, "test_y": 10_008}
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
_DTYPE = {0x08: np.uint8}


def load(root: Path, val_fraction: float = 0.1, seed: int = 0, download: bool = True) -> Dataset:
    arrays, where = _find(root, download)
    for part in ("train", "test"):
        if len(arrays[f"{part}_x"]) != len(arrays[f"{part}_y"]):
            raise DataError(f"Fashion-MNIST {part}: {len(arrays[part + '_x'])} images but {len(arrays[part + '_y'])} "
                            f"labels in {where}")
    train, val = stratified_split(Split(arrays["train_x"], arrays["train_y"]), val_fraction, seed)
    return Dataset(
        name=NAME, train=train, val=val, test=Split(arrays["test_x"], arrays["test_y"]),
        input_shape=(1, 28, 28), num_classes=10, class_names=list(CLASS_NAMES),
        augmentation=Augmentation(shift_h=2, shift_w=2), notes=f"read from {where}",
    )


def _find(root: Path, download: bool):
    for folder in (root / NAME, root):
        if all((folder / f.filename).is_file() for f in FILES.values()):
            return {k: _read_idx(folder / f.filename) for k, f in FILES.items()}, str(folder)
    system = _read_system_copy()
    if system is not None:
        return system, str(SYSTEM_DIR)
    if not download:
        raise DataError(
            f"Fashion-MNIST not found in {str(root / NAME)!r} nor in {str(SYSTEM_DIR)!r}; install the Debian "
            f"package dataset-fashion-mnist, put the four IDX .gz files in {str(root / NAME)!r} (--data-dir), "
            f"or run `jointopt data prepare {NAME}`"
        )
    return {k: _read_idx(fetch(f, root / NAME)) for k, f in FILES.items()}, str(root / NAME)


def locate() -> Optional[str]:
    """``jointopt data list``: Debian's copy, when the package is installed."""
    if all((SYSTEM_DIR / f.filename).is_file() for f in FILES.values()):
        return f"system copy in {SYSTEM_DIR}"
    return None


def _read_system_copy() -> Optional[dict]:
    if not all((SYSTEM_DIR / f.filename).is_file() for f in FILES.values()):
        return None
    arrays = {}
    for key, remote in FILES.items():
        path = SYSTEM_DIR / remote.filename
        raw = _gunzip(path)
        if len(raw) != SYSTEM_SIZES[key]:
            warnings.warn(f"ignoring the system copy of Fashion-MNIST: {str(path)!r} decompresses to {len(raw):,} "
                          f"bytes, expected {SYSTEM_SIZES[key]:,}", stacklevel=4)
            return None
        arrays[key] = _parse_idx(raw, path)
    return arrays


def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot decompress {str(path)!r}: {exc}; delete it and download again") from None


def _read_idx(path: Path) -> torch.Tensor:
    return _parse_idx(_gunzip(path), path)


def _parse_idx(raw: bytes, path: Path) -> torch.Tensor:
    """IDX: two zero bytes, a type code, the number of dimensions, big-endian int32 sizes, data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPE:
        raise DataError(f"{str(path)!r} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{str(path)!r} is truncated inside its IDX header")
    dims = struct.unpack(f">{ndim}i", raw[4:header])
    count = int(np.prod(dims)) if dims else 0
    if len(raw) != header + count:
        raise DataError(f"{str(path)!r} holds {len(raw) - header:,} data bytes but its header "
                        f"{list(dims)} announces {count:,}; the file is truncated or corrupt")
    data = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy())
    if ndim == 3:
        return data.unsqueeze(1)  # [N, 1, H, W]
    if ndim == 1:
        return data.long()
    raise DataError(f"{str(path)!r} has {ndim} dimensions; expected 3 (images) or 1 (labels)")
