"""One trial on several processes (``torchrun``): DistributedDataParallel over warm-up, search and fine-tune.

Every process (rank) holds the whole in-memory data set and draws the same shuffled global batches
(same seed); each trains on its slice of every batch (``x[rank::world]``) and DDP averages the
gradients, so a step equals a single-process step on the whole batch up to rounding: weights,
selector logits and quantizer steps and clips stay identical on every rank. The cost term is the
same on every rank (it depends on the selectors only), so averaging leaves its gradient unchanged.
Evaluation runs unsharded on every rank, so early stopping decides the same everywhere. Rank 0
alone writes files and reports events.

BatchNorm (warm-up only: ``convert`` folds it) normalises each rank's slice with that slice's
statistics, as DDP does; on CUDA, ``SyncBatchNorm`` would make the warm-up equal to the
single-process one, which PyTorch supports on GPUs only.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from .amp import AmpTrialRunner, restore_forward
from .phases import TrialRunner


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job."""

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher setting ``WORLD_SIZE``) with >1 process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def setup(device: str) -> Ranks:
    """Join the process group torchrun describes: NCCL on CUDA (one GPU per local rank), gloo on CPU."""
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), torch.device(f"cuda:{local}") if cuda else torch.device("cpu"))


def teardown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class ShardedData:
    """A data set whose shuffled (training) batches are this rank's slice of the global batch.

    Fixed-order passes (evaluation, the example batch ``convert`` traces with) are whole on every
    rank. Everything else is the wrapped data set's.
    """

    def __init__(self, dataset, ranks: Ranks):
        self._dataset, self._ranks = dataset, ranks

    def __getattr__(self, name):
        return getattr(self._dataset, name)

    def batches(self, split: str, batch_size: int, *, shuffle: bool = False, **kwargs) -> Iterator:
        if batch_size % self._ranks.world and shuffle:
            from ..errors import ConfigError

            raise ConfigError(f"data.batch_size={batch_size} must be a multiple of the {self._ranks.world} processes "
                              "(each trains on an equal slice of every batch)")
        for x, y in self._dataset.batches(split, batch_size, shuffle=shuffle, **kwargs):
            if shuffle:
                x, y = x[self._ranks.rank::self._ranks.world], y[self._ranks.rank::self._ranks.world]
            yield x, y


@contextlib.contextmanager
def data_parallel(module: nn.Module, ranks: Ranks, find_unused: bool = False):
    """While open, ``module``'s forward in training mode runs through DistributedDataParallel.

    The phases call ``module(x)`` themselves; this routes that call through a DDP wrapper (which
    prepares the gradient all-reduce) and leaves evaluation (eval mode) and the module's state_dict
    as they are. On leaving, the module is its plain self again.
    """
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(module, device_ids=[ranks.device] if ranks.device.type == "cuda" else None,
                                  find_unused_parameters=find_unused)
    previous = module.__dict__.get("forward")  # another wrapper (bf16 autocast), kept inside this one
    plain = previous or type(module).forward.__get__(module)
    inside = [False]

    def forward(*args, **kwargs):
        if not module.training or inside[0]:
            return plain(*args, **kwargs)
        inside[0] = True
        try:
            return ddp(*args, **kwargs)  # calls module(...) again, which lands in plain()
        finally:
            inside[0] = False

    module.forward = forward
    try:
        yield module
    finally:
        restore_forward(module, previous)


class DistributedTrialRunner(TrialRunner):
    """:class:`TrialRunner` whose search and fine-tune train with DistributedDataParallel."""

    def __init__(self, *args, ranks: Ranks, **kwargs):
        super().__init__(*args, **kwargs)
        self.ranks = ranks

    def search(self, net, *args, **kwargs):
        with data_parallel(net, self.ranks, find_unused=True):  # hard-sampled steps may leave selectors unused
            return super().search(net, *args, **kwargs)

    def finetune(self, frozen, teacher, seed):
        frozen.to(self.device)
        with data_parallel(frozen, self.ranks):
            return super().finetune(frozen, teacher, seed)


class DistributedAmpTrialRunner(AmpTrialRunner, DistributedTrialRunner):
    """DistributedDataParallel and bf16 autocast together (``amp: true`` under torchrun).

    The autocast wrapper is installed first and the DDP one around it: DDP's forward (which prepares
    the gradient all-reduce) runs in fp32, the network's layers under autocast, the quantizers in fp32.
    """
