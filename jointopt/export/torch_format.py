"""The ``torch`` format: ``NAME.json`` (the manifest) + ``NAME.weights.npz`` (float tensors, no pickle).

``jointopt.load(path)`` rebuilds the same frozen network (same float weights, bits and quantizer
parameters: it computes exactly what the exported network computed). Loading never runs code
from the files: the manifest is validated against an allow-list (see :mod:`.manifest`), the
weights are read with ``numpy.load(allow_pickle=False)`` and must match the manifest's checksum of
them, and the manifest must match its own (``sha256``: editing a stride or an activation width
in the JSON is refused, not loaded as a different network).
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Dict, Union

import numpy as np
import torch
from torch import fx

from .._files import atomic_write_bytes, atomic_write_text
from ..errors import ExportError
from .manifest import build_manifest, build_network, check_digest, manifest_digest

MANIFEST_SUFFIX = ".json"
WEIGHTS_SUFFIX = ".weights.npz"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_torch(frozen: fx.GraphModule, directory: Union[str, Path], name: str, input_shape,
               extra: dict | None = None) -> Dict[str, Path]:
    """Write the manifest and the weights; returns ``{"manifest": path, "weights": path}``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / f"{name}{WEIGHTS_SUFFIX}"
    buffer = io.BytesIO()
    state = {k: v.detach().cpu().numpy() for k, v in frozen.state_dict().items()}
    np.savez(buffer, **state)
    data = buffer.getvalue()
    atomic_write_bytes(weights_path, data)
    manifest = build_manifest(frozen, input_shape, extra)
    manifest["weights"] = {"file": weights_path.name, "sha256": _sha256(data), "bytes": len(data)}
    manifest["sha256"] = manifest_digest(manifest)
    manifest_path = directory / f"{name}{MANIFEST_SUFFIX}"
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return {"manifest": manifest_path, "weights": weights_path}


def _find_manifest(path: Path) -> Path:
    if path.is_dir():
        candidates = sorted(p for p in path.glob(f"*{MANIFEST_SUFFIX}") if p.name != "verify.json")
        if len(candidates) > 1:
            candidates = [p for p in candidates if _looks_like_manifest(p)]
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "none"
            raise ExportError(f"{str(path)!r} must hold exactly one torch-format manifest (found: {found}); "
                              "pass the .json file itself")
        return candidates[0]
    if path.suffix == ".onnx":
        raise ExportError(f"{str(path)!r} is an ONNX file: run it with onnxruntime; jointopt.load reads the torch "
                          "format (NAME.json + NAME.weights.npz)")
    if path.name.endswith(".packed.npz"):
        raise ExportError(f"{str(path)!r} holds packed integers: read it with jointopt.export.read_packed")
    if not path.exists():
        raise ExportError(f"no export at {str(path)!r}")
    return path


def _looks_like_manifest(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return b'"jointopt.frozen"' in handle.read(4096)
    except OSError:
        return False


def _read_weights(manifest: dict, directory: Path) -> Dict[str, torch.Tensor]:
    info = manifest.get("weights")
    if not isinstance(info, dict) or not isinstance(info.get("file"), str):
        raise ExportError("manifest: 'weights' must name the weights file")
    name = info["file"]
    if Path(name).name != name or name in (".", "..") or not name.endswith(".npz"):
        raise ExportError(f"manifest: weights file {name!r} must be a plain .npz file name next to the manifest")
    path = directory / name
    if not path.is_file():
        raise ExportError(f"the weights file {str(path)!r} named by the manifest is missing")
    data = path.read_bytes()
    if info.get("sha256") != _sha256(data):
        raise ExportError(f"{str(path)!r} does not match the manifest's checksum: the weights were changed or "
                          "belong to another export")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ExportError(f"cannot read the weights file {str(path)!r}: {exc}") from None
    tensors = {}
    for key, value in arrays.items():
        if value.dtype.kind not in "fiub":
            raise ExportError(f"weights file: tensor {key!r} has dtype {value.dtype}; only numbers are allowed")
        tensors[key] = torch.from_numpy(np.array(value, copy=True, order="C"))
    return tensors


def load(path: Union[str, Path]) -> fx.GraphModule:
    """Load a torch-format export: the frozen network, in eval mode.

    Args:
        path: the export directory (holding one ``NAME.json``) or the manifest file itself.

    Raises:
        ExportError: the files are missing, corrupt, tampered with, or from an unsupported version.
    """
    manifest_path = _find_manifest(Path(path))
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{str(manifest_path)!r} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ExportError(f"{str(manifest_path)!r} is not a jointopt manifest")
    try:
        check_digest(manifest)
        tensors = _read_weights(manifest, manifest_path.parent)
        return build_network(manifest, tensors)
    except ExportError as exc:
        raise ExportError(f"{manifest_path.name}: {exc}") from None
