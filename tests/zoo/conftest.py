"""Zoo tests: one thread (the machine is shared), and registrations that do not outlive a test."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch):
    """Models a test registers go into a copy, so later tests that list the zoo do not see them."""
    from jointopt.zoo import _registry

    _registry._REGISTRY.names()  # load everything first
    monkeypatch.setattr(_registry._REGISTRY, "_entries", dict(_registry._REGISTRY._entries))
