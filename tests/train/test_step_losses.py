"""Step losses read on the host in batches (one synchronisation per batch on an accelerator)."""
import math

import pytest
import torch

from jointopt.train._losses import GPU_READ_EVERY, StepLosses, read_interval


def test_rows_come_back_in_step_order_every_n_steps():
    losses = StepLosses(every=3)
    got = []
    for i in range(7):
        rows = losses.add(torch.tensor(float(i)), torch.tensor(10.0 * i))
        assert len(rows) == (3 if i in (2, 5) else 0)
        got += rows
    assert losses.pending == 1
    got += losses.flush()
    assert got == [(float(i), 10.0 * i) for i in range(7)]
    assert losses.flush() == [] and losses.pending == 0


def test_every_step_on_the_cpu_and_a_non_finite_value_survives_the_batch():
    assert read_interval("cpu") == 1 and read_interval(torch.device("cpu")) == 1
    assert read_interval("cuda:1") == GPU_READ_EVERY > 1
    one = StepLosses(read_interval("cpu"))
    assert one.add(torch.tensor(2.5)) == [(2.5,)]
    batched = StepLosses(4)
    for v in (1.0, float("nan"), float("inf")):
        batched.add(torch.tensor(v, requires_grad=True) * 1)  # detached: no graph kept
    rows = batched.flush()
    assert rows[0] == (1.0,) and math.isnan(rows[1][0]) and rows[2] == (float("inf"),)


def test_every_must_be_positive():
    with pytest.raises(ValueError, match="every"):
        StepLosses(0)
