"""Checkpoints, written atomically (``jointopt._files``) and loaded without executing code."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from .._files import atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_text", "load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | Path, obj: Any) -> None:
    """Write ``obj`` (tensors and plain data) to ``path`` with :func:`torch.save`, atomically.

    It is serialised in memory first, so a failure (an unpicklable object, a full disk) leaves the
    previous checkpoint as it was; the file gets ordinary permissions (0644 under umask 022).
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> Any:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain data only)."""
    return torch.load(path, map_location="cpu", weights_only=True)
