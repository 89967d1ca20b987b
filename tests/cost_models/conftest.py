"""Fixtures of the cost-model tests; the data live in cost_fixtures.py."""
import pytest

from cost_fixtures import make_stats


@pytest.fixture
def stats():
    return make_stats


