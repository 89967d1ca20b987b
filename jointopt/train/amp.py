"""Mixed precision (``amp: true``): the training forward passes under bf16 autocast, the rest in fp32.

Safe where it is applied: convolutions and matrix products run in bf16 (autocast's list), the
quantizers run in fp32 inside it (:mod:`jointopt.quant._amp`), the network's output is cast back to
fp32 before the loss, and the cost, the optimizer steps and every evaluation (validation, test,
early stopping, the accuracy a trial reports) stay in fp32. bf16 has fp32's range, so no loss
scaling is needed (fp16 would need a GradScaler in every phase).
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from .phases import TrialRunner


@contextlib.contextmanager
def autocast_forward(module: nn.Module, device, enabled: bool = True):
    """While open, ``module``'s forward in training mode runs under bf16 autocast and returns fp32.

    Evaluation (eval mode) is untouched. On leaving, the module's forward is what it was before.
    It wraps whatever forward the module has at the time (its class's, or another wrapper such as
    :func:`jointopt.train.distributed.data_parallel`'s), so the two compose in either order.
    """
    if not enabled:
        yield module
        return
    kind = torch.device(device).type
    previous = module.__dict__.get("forward")
    plain = previous or type(module).forward.__get__(module)

    def forward(*args, **kwargs):
        if not module.training:
            return plain(*args, **kwargs)
        with torch.autocast(kind, dtype=torch.bfloat16):
            out = plain(*args, **kwargs)
        return out.float()

    module.forward = forward
    try:
        yield module
    finally:
        restore_forward(module, previous)


def restore_forward(module: nn.Module, previous) -> None:
    """Put back the instance-level forward a wrapper replaced (none: the class's)."""
    if previous is None:
        module.__dict__.pop("forward", None)
    else:
        module.forward = previous


class AmpTrialRunner(TrialRunner):
    """:class:`TrialRunner` whose search and fine-tune train under bf16 autocast (a mixin too: see
    :class:`jointopt.train.distributed.DistributedAmpTrialRunner`)."""

    def search(self, net, *args, **kwargs):
        with autocast_forward(net, self.device):
            return super().search(net, *args, **kwargs)

    def finetune(self, frozen, teacher, seed):
        frozen.to(self.device)
        with autocast_forward(frozen, self.device):
            return super().finetune(frozen, teacher, seed)


def runner_class(config):
    """The trial runner a configuration asks for."""
    return AmpTrialRunner if config.amp else TrialRunner
