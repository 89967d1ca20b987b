"""Zoo tests: registrations that do not outlive a test."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch):
    """Models a test registers go into a copy, so later tests that list the zoo do not see them."""
    from jointopt.zoo import _registry

    _registry._REGISTRY.names()  # load everything first
    monkeypatch.setattr(_registry._REGISTRY, "_entries", dict(_registry._REGISTRY._entries))
