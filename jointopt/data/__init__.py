"""Data sets held in memory as compact tensors, with per-batch augmentation.

``get_dataset(name, root=...)`` returns a :class:`Dataset` whose splits are whole tensors
(uint8 images, float16 audio features); ``dataset.batches("train", 32, shuffle=True, augment=True)``
yields normalised float32 batches. Built in: ``digits`` (ships with scikit-learn), ``cifar10``,
``fashion_mnist``, ``gsc`` (Speech Commands v0.02, MFCC 49x10), ``synthetic_kws`` (espeak-ng
stand-in for gsc) and ``tinyimagenet``. Downloads are verified (size, MD5) and extracted
atomically; preprocessed tensors are cached under the root. Your own data: ``Dataset.from_tensors``
or ``image_folder``, registered with ``register_dataset``.
"""
from __future__ import annotations

from ._base import Augmentation, Dataset, Split
from ._cache import default_root
from ._folder import image_folder
from ._registry import describe_dataset, get_dataset, list_datasets, locate_dataset, register_dataset

__all__ = ["Augmentation", "Dataset", "Split", "default_root", "describe_dataset", "get_dataset", "image_folder",
           "list_datasets", "locate_dataset", "register_dataset"]
