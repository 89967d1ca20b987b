"""Where data-set files live, and the on-disk cache of preprocessed tensors.

Layout under a root (``--data-dir`` / ``root=``, default ``$JOINTOPT_DATA_DIR`` or
``~/.cache/jointopt/data``)::

    root/<name>/<downloaded archive>        kept after extraction (delete it to save space)
    root/<name>/<extracted folder>/         the official layout
    root/<name>/cache.pt                    preprocessed tensors, rebuilt when the key changes

Files the user already has may also sit directly under ``root`` (``root/cifar-10-batches-py``).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from .._files import atomic_path

ENV_ROOT = "JOINTOPT_DATA_DIR"
CACHE_FORMAT = 1


def default_root() -> Path:
    """``$JOINTOPT_DATA_DIR`` if set, else ``~/.cache/jointopt/data``."""
    env = os.environ.get(ENV_ROOT)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "jointopt" / "data"


def resolve_root(root: Union[str, os.PathLike, None]) -> Path:
    return Path(root).expanduser() if root is not None else default_root()


def locate(root: Path, name: str, relative: str) -> Optional[Path]:
    """Find ``relative`` under ``root/name`` or directly under ``root``; None when absent."""
    for candidate in (root / name / relative, root / relative):
        if candidate.exists():
            return candidate
    return None


def cache_path(root: Path, name: str) -> Path:
    return root / name / "cache.pt"


def load_cache(path: Path, key: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Return the cached payload if ``path`` holds one built with the same ``key``; else None."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: rebuild rather than fail
        warnings.warn(f"ignoring unreadable data cache {str(path)!r} ({exc}); rebuilding it", stacklevel=3)
        return None
    if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT or blob.get("key") != key:
        return None
    return blob.get("payload")


def save_cache(path: Path, key: Dict[str, Any], payload: Dict[str, Any]) -> None:
    """Write atomically (:func:`jointopt._files.atomic_path`); warn, and go on without it, if it cannot be written."""
    try:
        with atomic_path(path) as tmp:
            torch.save({"format": CACHE_FORMAT, "key": key, "payload": payload}, tmp)
    except OSError as exc:
        warnings.warn(f"cannot write the data cache {str(path)!r} ({exc}); it will be rebuilt next time", stacklevel=3)
