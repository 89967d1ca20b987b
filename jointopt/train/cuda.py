"""CUDA as a first-class device: the data set resident on the GPU, cuDNN autotuning.

The data sets are in-memory tensors (uint8 or float16), small next to a GPU's memory (Tiny
ImageNet's 100,000 training images are 1.2 GB as uint8), so they are copied to the device once and
every batch is gathered there: no host-to-device copy per step. The batch order and the
augmentation's random draws still come from the CPU generator of each phase, so a study draws the
same batches on CPU and GPU.
"""
from __future__ import annotations

import dataclasses

import torch

from ..data._base import SPLITS, Split


def prepare(dataset, device, resident=None):
    """The data set with its splits on ``device`` (itself on the CPU), and cuDNN set to autotune there.

    ``torch.backends.cudnn.benchmark`` picks the fastest convolution algorithm per input shape;
    every training batch has one shape (``drop_last``), so the search pays for it once.
    ``resident`` forces the copy (default: on CUDA only).
    """
    device = torch.device(device)
    if not (device.type == "cuda" if resident is None else resident):
        return dataset
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    moved = {name: Split(dataset.split(name).x.to(device), dataset.split(name).y.to(device)) for name in SPLITS}
    return dataclasses.replace(dataset, **moved)
