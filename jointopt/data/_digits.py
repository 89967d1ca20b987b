"""scikit-learn's digits: 1,797 real 8x8 images bundled with scikit-learn, so no download.

The data set has no official test split: 20 % is held out (stratified, fixed seed 0) once and for
all; the validation split is then drawn from the rest with the caller's ``val_fraction``/``seed``.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from ._base import Augmentation, Dataset, Split, stratified_split

TEST_FRACTION = 0.2
TEST_SEED = 0


def locate() -> Optional[str]:
    """``jointopt data list``: the images come with scikit-learn."""
    return "bundled" if _bundled_csv() is not None else None


def _bundled_csv() -> Optional[Path]:
    """scikit-learn's ``datasets/data/digits.csv.gz``, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def read_digits() -> Tuple[np.ndarray, np.ndarray]:
    """Images [1797, 8, 8] (0..16 as float64) and labels, what ``sklearn.datasets.load_digits`` returns.

    The bundled CSV (64 pixels and the label per row) is read directly when it is where scikit-learn
    keeps it: importing ``sklearn.datasets`` takes about a second, longer than the quickstart's warm-up.
    """
    path = _bundled_csv()
    if path is None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)


def load(val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    images, labels = read_digits()
    # 0..16 grey levels -> 0..255 so that all image data sets share the uint8 convention
    x = torch.from_numpy((images * (255.0 / 16.0)).round()).to(torch.uint8).unsqueeze(1)
    y = torch.from_numpy(labels).long()
    rest, test = stratified_split(Split(x, y), TEST_FRACTION, TEST_SEED)
    train, val = stratified_split(rest, val_fraction, seed)
    return Dataset(
        name="digits", train=train, val=val, test=test, input_shape=(1, 8, 8), num_classes=10,
        class_names=[str(i) for i in range(10)],
        # a 1-pixel shift keeps the digit inside the 8x8 frame (see docs/data_and_zoo.md)
        augmentation=Augmentation(shift_h=1, shift_w=1),
        notes="scikit-learn load_digits(); test = 20 % held out with seed 0",
    )
