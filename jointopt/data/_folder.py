"""A data set from your own image folders (the ImageFolder layout), decoded into memory."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import DataError
from ._base import Augmentation, Dataset, Split, stratified_split

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def image_folder(path: Union[str, os.PathLike], *, name: Optional[str] = None,
                 size: Optional[Tuple[int, int]] = None, grayscale: bool = False, val_fraction: float = 0.1,
                 seed: int = 0, augmentation: Optional[Augmentation] = None) -> Dataset:
    """Load ``path/train/<class>/*.png`` and ``path/test/<class>/...`` (and ``path/val/`` if present).

    Args:
        name: the data set's name (default: the folder name).
        size: (height, width) every image is resized to; default: the size of the first image,
            which all images must then share.
        grayscale: one channel instead of RGB.
        val_fraction, seed: the validation hold-out from ``train`` when there is no ``val`` folder.
        augmentation: what ``batches(augment=True)`` does, e.g.
            ``Augmentation(shift_h=4, shift_w=4, flip=True)``; default none.

    Classes are the sub-folders of ``train``, in sorted order.
    """
    root = Path(path)
    if not (root / "train").is_dir():
        raise DataError(f"{str(root / 'train')!r} does not exist; image_folder expects train/<class>/ and test/<class>/")
    if not (root / "test").is_dir():
        raise DataError(f"{str(root / 'test')!r} does not exist; image_folder expects train/<class>/ and test/<class>/")
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{str(root / 'train')!r} has no class sub-folders")
    mode = "L" if grayscale else "RGB"
    train = _read_split(root / "train", classes, mode, size)
    size = size or tuple(train.x.shape[2:])
    test = _read_split(root / "test", classes, mode, size)
    if (root / "val").is_dir():
        val = _read_split(root / "val", classes, mode, size)
    else:
        train, val = stratified_split(train, val_fraction, seed)
    return Dataset(name=name or root.name, train=train, val=val, test=test, input_shape=tuple(train.x.shape[1:]),
                   num_classes=len(classes), class_names=classes, augmentation=augmentation or Augmentation(),
                   notes=f"image folders under {root}")


def _read_split(folder: Path, classes: List[str], mode: str, size: Optional[Tuple[int, int]]) -> Split:
    from PIL import Image, UnidentifiedImageError

    images, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (folder / cls).glob("*") if p.suffix.lower() in EXTENSIONS) if (folder / cls).is_dir() else []
        for file in files:
            try:
                with Image.open(file) as image:
                    image = image.convert(mode)
                    if size is not None and image.size != (size[1], size[0]):
                        image = image.resize((size[1], size[0]), Image.BILINEAR)
                    array = np.asarray(image, dtype=np.uint8)
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"cannot decode image {str(file)!r}: {exc}") from None
            if size is None:
                size = array.shape[:2]
            if array.shape[:2] != tuple(size):
                raise DataError(f"{str(file)!r} is {array.shape[1]}x{array.shape[0]}, the others {size[1]}x{size[0]}; "
                                "pass size=(height, width) to resize")
            images.append(array if array.ndim == 3 else array[:, :, None])
            labels.append(label)
    if not images:
        raise DataError(f"no images ({', '.join(EXTENSIONS)}) under {str(folder)!r}")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return Split(x, torch.tensor(labels, dtype=torch.int64))
