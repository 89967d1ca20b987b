"""What every phase's epoch loop shares — batches, evaluation, keeping the best epoch — and the float warm-up.

Each phase trains for up to ``epochs`` epochs (``max_steps`` batches each), multiplies the learning
rate by ``lr_decay`` after every epoch, keeps the best state by its validation score and stops early
after ``patience`` epochs without improvement (:class:`EarlyStop`).
"""
from __future__ import annotations

import copy
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, PhaseConfig
from ..errors import DivergedError
from ._losses import StepLosses, read_interval
from .events import EventBus
from .schedule import fused_adam


@torch.no_grad()
def evaluate(model: nn.Module, dataset, split: str, batch_size: int, device) -> Tuple[float, float]:
    """(top-1 accuracy in %, mean cross-entropy) of ``model`` on ``split``, in eval mode."""
    was_training = model.training
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y in dataset.batches(split, batch_size, device=device):
        out = model(x)
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        n += len(y)
    model.train(was_training)
    return 100.0 * correct / max(n, 1), loss / max(n, 1)


def batches(dataset, config: Config, phase: PhaseConfig, generator, device):
    limit = phase.max_steps
    for i, batch in enumerate(dataset.batches("train", config.data.batch_size, shuffle=True,
                                              augment=config.data.augment, generator=generator, device=device,
                                              drop_last=True)):
        if limit is not None and i >= limit:
            return
        yield batch


def steps_per_epoch(dataset, config: Config, phase: PhaseConfig) -> int:
    n = dataset.len_batches("train", config.data.batch_size, drop_last=True)
    return min(n, phase.max_steps) if phase.max_steps is not None else n


class EarlyStop:
    """The best epoch so far by a validation score and its state; :meth:`update` says when ``patience``
    epochs have passed without a better one."""

    def __init__(self, patience: int, higher_is_better: bool):
        self.patience, self.sign = patience, 1 if higher_is_better else -1
        self.best, self.best_epoch, self.state = -math.inf, -1, None

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "state": self.state}

    def load_state_dict(self, saved: dict) -> None:
        self.best, self.best_epoch, self.state = saved["best"], saved["best_epoch"], saved["state"]

    def update(self, epoch: int, score: float, model: nn.Module) -> bool:
        """Record ``score``; return True when the phase should stop."""
        if self.sign * score > self.best:
            self.best, self.best_epoch = self.sign * score, epoch
            self.state = copy.deepcopy(model.state_dict())
        return epoch - self.best_epoch >= self.patience


def train_float(model: nn.Module, dataset, config: Config, bus: EventBus, device, seed: int,
                trial: Optional[int] = None) -> Tuple[nn.Module, float]:
    """Float warm-up (BatchNorm on): Adam, best validation accuracy kept. Returns (model, val acc)."""
    phase = config.warmup
    model.to(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if phase.epochs == 0:
        return model, evaluate(model, dataset, "val", config.data.eval_batch_size, device)[0]
    opt = fused_adam(model.parameters(), lr=phase.lr, weight_decay=phase.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, phase.lr_decay)
    stop = EarlyStop(phase.patience, higher_is_better=True)
    bus.emit("phase_start", trial, "warmup", epochs=phase.epochs, steps=steps_per_epoch(dataset, config, phase))
    losses = StepLosses(read_interval(device))  # one host read per step on the CPU, per 32 on a GPU
    for epoch in range(phase.epochs):
        model.train()
        total, count = 0.0, 0

        def consume(rows, last: int) -> float:
            for i, (value,) in enumerate(rows):
                if not math.isfinite(value):  # on the CPU before the step spreads it: a NaN warm-up is never cached
                    raise DivergedError(f"the warm-up diverged at epoch {epoch} step {last - len(rows) + 1 + i}: the "
                                        f"loss is {value} ({weights_state(model)}); lower warmup.lr (now {phase.lr:g})")
            return sum(v for (v,) in rows)

        for x, y in batches(dataset, config, phase, generator, device):
            loss = F.cross_entropy(model(x), y)
            total += consume(losses.add(loss), count)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            count += 1
        total += consume(losses.flush(), count - 1)
        sched.step()
        val_acc, val_loss = evaluate(model, dataset, "val", config.data.eval_batch_size, device)
        bus.emit("epoch", trial, "warmup", epoch, loss=total / max(count, 1), task_loss=total / max(count, 1),
                 val_acc=val_acc, val_loss=val_loss, lr=opt.param_groups[0]["lr"])
        if stop.update(epoch, val_acc, model):
            break
    if stop.state is None:
        raise DivergedError("the warm-up kept no network: no epoch had a finite validation score; lower warmup.lr "
                            f"(now {phase.lr:g})")
    model.load_state_dict(stop.state)
    bus.emit("phase_end", trial, "warmup", best_epoch=stop.best_epoch, val_acc=stop.best)
    return model, stop.best


def weights_state(model: nn.Module) -> str:
    """Why a loss stopped being finite: the first parameter that is not finite, if any."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            return f"the weights became non-finite, first {name!r}: a non-finite gradient or an exploding step"
    return "the weights are finite: the forward pass overflowed"
