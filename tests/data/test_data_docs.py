"""The Python examples of the README's data-set and model-zoo sections run as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from jointopt.zoo import _registry as zoo_registry

DOC = Path(__file__).resolve().parents[2] / "README.md"
_TEXT = DOC.read_text()
SECTION = _TEXT[_TEXT.index("\n## Data sets"):_TEXT.index("\n## Bring your own device")]
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, re.S)


def test_the_document_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index, monkeypatch, tmp_path, capsys):
    zoo_registry._REGISTRY.names()  # the example registers into a copy (data sets: see conftest)
    monkeypatch.setattr(zoo_registry._REGISTRY, "_entries", dict(zoo_registry._REGISTRY._entries))
    monkeypatch.setenv("JOINTOPT_DATA_DIR", str(tmp_path))
    exec(compile(BLOCKS[index], f"{DOC.name}[{index}]", "exec"), {"__name__": "docs_example"})
