"""The in-memory data set: compact tensors per split, per-batch augmentation and normalisation.

Every data set is held as whole-split tensors (``uint8`` images, ``float16`` features) so that a
training step costs one indexing operation and a few vectorised tensor ops, not a Python loop over
samples. Augmentation runs on the raw values of a batch (before normalisation), so the padding of a
random crop is black for images and silence for audio features.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch

from ..errors import ConfigError

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """One split: inputs ``x`` ([N, C, H, W]) and integer labels ``y`` ([N], int64)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        if self.x.shape[0] != self.y.shape[0]:
            raise ConfigError(f"split has {self.x.shape[0]} inputs but {self.y.shape[0]} labels")
        if self.y.dtype != torch.int64:
            self.y = self.y.long()

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: torch.Tensor) -> "Split":
        """The samples at ``index`` (a tensor of positions or a boolean mask), labels with them."""
        return Split(self.x[index], self.y[index])


@dataclass(frozen=True)
class Augmentation:
    """Random per-batch augmentation of raw [N, C, H, W] inputs, applied before normalisation.

    Args:
        shift_h: shift along H (image rows, or time frames of audio features) by up to ±shift_h,
            the vacated area filled with ``fill``; for images this is the usual "random crop with
            padding".
        shift_w: the same along W (image columns).
        flip: mirror horizontally with probability 0.5.
        fill: value of the vacated area; a sequence gives one value per W position (an audio
            feature frame of silence).
    """

    shift_h: int = 0
    shift_w: int = 0
    flip: bool = False
    fill: Union[float, Tuple[float, ...]] = 0.0

    def __post_init__(self):
        if self.shift_h < 0 or self.shift_w < 0:
            raise ConfigError(f"augmentation shifts must be >= 0, got ({self.shift_h}, {self.shift_w})")
        if isinstance(self.fill, (tuple, list)) and self.shift_w:
            raise ConfigError("a per-column fill needs shift_w=0 (it describes one row of W values)")

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if self.shift_h or self.shift_w:
            x = _random_shift(x, self.shift_h, self.shift_w, self.fill, generator)
        if self.flip:
            mask = torch.rand(x.shape[0], generator=generator) < 0.5
            x = torch.where(mask.to(x.device)[:, None, None, None], x.flip(-1), x)
        return x


def _random_shift(x: torch.Tensor, ph: int, pw: int, fill, generator) -> torch.Tensor:
    """Pad by (ph, pw) with ``fill`` and crop back at one random offset per sample, in one gather."""
    b, c, h, w = x.shape
    padded = x.new_empty(b, c, h + 2 * ph, w + 2 * pw)
    padded[...] = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    dy = torch.randint(0, 2 * ph + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pw + 1, (b,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


@dataclass
class Dataset:
    """A data set held in memory.

    Attributes:
        name: registry name.
        train, val, test: the splits.
        input_shape: (C, H, W) of one sample.
        num_classes: number of classes.
        class_names: one name per class index.
        substitute: set when the data stand in for another data set (e.g. synthetic keyword
            spotting instead of Speech Commands); says what and why.
        augmentation: what ``batches(..., augment=True)`` does.
        mean, std: per-channel normalisation computed on ``train`` (raw units).
        notes: free-form provenance (where the files were read from, cache path).
    """

    name: str
    train: Split
    val: Split
    test: Split
    input_shape: Tuple[int, ...]
    num_classes: int
    class_names: List[str]
    substitute: Optional[str] = None
    augmentation: Augmentation = field(default_factory=Augmentation)
    mean: Optional[torch.Tensor] = None
    std: Optional[torch.Tensor] = None
    notes: str = ""

    def __post_init__(self):
        self.input_shape = tuple(int(s) for s in self.input_shape)
        for split in SPLITS:
            value = getattr(self, split)
            if isinstance(value, (tuple, list)):
                setattr(self, split, Split(*value))
            shape = tuple(getattr(self, split).x.shape[1:])
            if shape != self.input_shape:
                raise ConfigError(f"data set {self.name!r}: {split} inputs have shape {shape}, expected {self.input_shape}")
        if len(self.class_names) != self.num_classes:
            raise ConfigError(f"data set {self.name!r}: {len(self.class_names)} class names for {self.num_classes} classes")
        if self.mean is None or self.std is None:
            self.mean, self.std = channel_stats(self.train.x)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_tensors(cls, name: str, train: Tuple[torch.Tensor, torch.Tensor],
                     test: Tuple[torch.Tensor, torch.Tensor], *, val: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                     val_fraction: float = 0.1, seed: int = 0, class_names: Optional[Sequence[str]] = None,
                     augmentation: Optional[Augmentation] = None, **kwargs) -> "Dataset":
        """Build a data set from tensors you already have.

        Args:
            train, test: ``(x, y)`` pairs; ``x`` is [N, C, H, W] (uint8 images or float features),
                ``y`` integer class indices.
            val: an explicit validation pair; otherwise ``val_fraction`` of ``train`` is held out
                (stratified by class, shuffled with ``seed``).
            class_names: defaults to ``"0", "1", ...``.
            augmentation: defaults to none.

        Example::

            ds = Dataset.from_tensors("mine", (x_train, y_train), (x_test, y_test))
            jointopt.register_dataset("mine", lambda: ds)
        """
        train_split = Split(*train)
        if val is None:
            train_split, val_split = stratified_split(train_split, val_fraction, seed)
        else:
            val_split = Split(*val)
        y_all = torch.cat([train_split.y, val_split.y, Split(*test).y])
        num_classes = int(y_all.max()) + 1 if len(y_all) else 0
        names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        return cls(name, train_split, val_split, Split(*test), tuple(train_split.x.shape[1:]),
                   len(names), names, augmentation=augmentation or Augmentation(), **kwargs)

    # -- batches ------------------------------------------------------------------------------
    def split(self, split: str) -> Split:
        """The ``"train"``, ``"val"`` or ``"test"`` split; any other name is a :class:`ConfigError`."""
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, split)

    def len_batches(self, split: str, batch_size: int, *, drop_last: bool = False) -> int:
        """Number of batches ``batches(split, batch_size, drop_last=...)`` yields."""
        n = len(self.split(split))
        return n // batch_size if drop_last else -(-n // batch_size)

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: Optional[torch.Generator] = None, device: Union[str, torch.device] = "cpu",
                drop_last: bool = False) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` batches: ``x`` float32 normalised with the train statistics, ``y`` int64.

        Args:
            split: ``train``, ``val`` or ``test``.
            shuffle: visit samples in a random order drawn from ``generator``.
            augment: apply :attr:`augmentation` (random draws from ``generator``).
            device: where the batch is moved (compact dtype first, then converted there).
            drop_last: skip a final batch smaller than ``batch_size``.
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be >= 1")
        data = self.split(split)
        n = len(data)
        order = torch.randperm(n, generator=generator) if shuffle else None
        if order is not None and data.x.device.type != "cpu":  # data resident on a GPU: one index copy per epoch,
            order = order.to(data.x.device)                     # not one per gathered batch
        per_channel = (1, -1) + (1,) * (data.x.dim() - 2)  # [N, C, H, W] or [N, C, L]
        mean = self.mean.to(device=device, dtype=torch.float32).view(per_channel)
        inv_std = (1.0 / self.std).to(device=device, dtype=torch.float32).view(per_channel)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            if order is None:
                x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
            else:
                index = order[start:start + batch_size]
                x, y = data.x[index], data.y[index]
            x = x.to(device, non_blocking=True).float()
            if augment:
                x = self.augmentation(x, generator)
            yield (x - mean) * inv_std, y.to(device, non_blocking=True)

    # -- helpers ------------------------------------------------------------------------------
    def limit_train(self, n: Optional[int]) -> "Dataset":
        """A copy whose train split keeps only its first ``n`` samples (normalisation unchanged)."""
        if n is None or n >= len(self.train):
            return self
        if n < 1:
            raise ConfigError(f"limit_train={n} must be >= 1")
        return dataclasses.replace(self, train=self.train.subset(torch.arange(n)))

    def summary(self) -> str:
        """One line for people: ``cifar10: train 45000, val 5000, test 10000; input (3, 32, 32), 10 classes``."""
        sizes = ", ".join(f"{s} {len(self.split(s))}" for s in SPLITS)
        text = f"{self.name}: {sizes}; input {tuple(self.input_shape)}, {self.num_classes} classes"
        return text + (f" [substitute: {self.substitute}]" if self.substitute else "")


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of [N, C, ...], in chunks (bounded memory)."""
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    for start in range(0, x.shape[0], chunk):
        # float32 within a chunk (torch sums pairwise), float64 across chunks
        part = x[start:start + chunk].transpose(0, 1).reshape(c, -1).float()
        total += part.sum(1).double()
        total_sq += (part * part).sum(1).double()
        count += part.shape[1]
    if count == 0:
        return torch.zeros(c), torch.ones(c)
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    return mean.float(), torch.where(std > 1e-8, std, torch.ones_like(std)).float()


def stratified_split(data: Split, fraction: float, seed: int) -> Tuple[Split, Split]:
    """Hold out ``round(fraction * N)`` samples, shared between classes in proportion to their size.

    Returns (rest, held_out), each in its original order, so the result depends only on the data,
    ``fraction`` and ``seed``.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"val_fraction={fraction} must be in [0, 1)")
    generator = torch.Generator().manual_seed(int(seed))
    labels, counts = torch.unique(data.y, return_counts=True)
    quota = fraction * counts.double()
    take = quota.floor().long()
    missing = int(round(fraction * len(data))) - int(take.sum())
    if missing > 0:  # largest remainders first (ties: lower class index)
        order = sorted(range(len(labels)), key=lambda i: (-(quota[i] - take[i]).item(), i))
        for i in order[:missing]:
            take[i] += 1
    mask = torch.zeros(len(data), dtype=torch.bool)
    for label, k in zip(labels.tolist(), take.tolist()):
        members = torch.nonzero(data.y == label).flatten()
        mask[members[torch.randperm(len(members), generator=generator)[:k]]] = True
    return data.subset(torch.nonzero(~mask).flatten()), data.subset(torch.nonzero(mask).flatten())
