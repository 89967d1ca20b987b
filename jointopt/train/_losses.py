"""Reading a training step's losses without stopping the GPU at every step.

``float(loss)`` waits for the device to finish the step: on CUDA that is one host synchronisation per
step, and the next step cannot be queued while the host waits. :class:`StepLosses` keeps each step's
detached loss values on the device and brings them to the host together, every ``every`` steps (and
whenever the caller asks), as one small copy. On the CPU there is nothing to wait for, so the default
there is every step, and checks (a non-finite loss, a loss that explodes) run before the step's update
as before; on a GPU a check sees a bad step at most ``every - 1`` steps late, which only changes how
much of a diverging phase runs before it stops (the kept network is chosen at epoch ends, from finite
validation scores, either way).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

GPU_READ_EVERY = 32  # steps between host reads on an accelerator: one sync per 32 steps instead of 32


def read_interval(device: torch.device | str | None) -> int:
    """Steps between host reads: 1 on the CPU (reading is free), :data:`GPU_READ_EVERY` elsewhere."""
    kind = torch.device(device).type if device is not None else "cpu"
    return 1 if kind == "cpu" else GPU_READ_EVERY


class StepLosses:
    """Per-step scalar losses kept on their device, read on the host in batches.

    ``add(task, reg)`` records one step (detached 0-d tensors, any number per step, the same number
    every step); it returns the rows read so far when a read is due (every ``every`` steps), else an
    empty list. ``flush()`` reads whatever is pending (at the end of an epoch). Each row is a tuple of
    floats, one per value given to ``add``, in step order.
    """

    def __init__(self, every: int = 1):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self._pending: List[Sequence[torch.Tensor]] = []

    def add(self, *values: torch.Tensor) -> List[Tuple[float, ...]]:
        self._pending.append([v.detach() for v in values])  # 0-d losses
        return self.flush() if len(self._pending) >= self.every else []

    def flush(self) -> List[Tuple[float, ...]]:
        if not self._pending:
            return []
        rows = self._pending
        self._pending = []
        if len(rows) == 1:  # every step on the CPU: plain reads, no stacking on the hot path
            return [tuple(float(v) for v in rows[0])]
        table = torch.stack([torch.stack(list(r)) for r in rows]).float().cpu()  # the one host read
        return [tuple(row) for row in table.tolist()]

    @property
    def pending(self) -> int:
        return len(self._pending)

