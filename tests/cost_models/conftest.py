"""Fixtures of the cost-model tests; the data live in cost_fixtures.py."""
import pytest
import torch

from cost_fixtures import make_stats


@pytest.fixture
def stats():
    return make_stats


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

