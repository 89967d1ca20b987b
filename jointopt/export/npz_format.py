"""The ``npz`` format: packed integer weights and quantizer parameters, one array per field.

``NAME.packed.npz`` holds, for every layer (key prefix ``"<layer>/"``, layers in execution order):

===================  =======  =========================================================
key                  dtype    content
===================  =======  =========================================================
``weight``           uint8    codes bit-packed at their channel's width (LSB-first stream,
                              channels contiguous, layer padded to a whole byte)
``bits``             uint8    weight bits of each output channel
``bit_offset``       uint32   stream bit where each channel's codes start
``shape``            int64    shape of the unpacked codes ``[out, in/groups, *kernel]``
``scale``            float32  weight scale per output channel (``w = code · scale``)
``zero_point``       int8     weight zero point per output channel (always 0: symmetric)
``bias``             float32  bias per output channel (0 where the layer has none)
``act_scale``        float32  input-activation scale (``x ≈ code · act_scale``)
``act_zero_point``   int32    input-activation zero point (always 0)
``act_range``        int32    [lo, hi] of the input-activation codes
===================  =======  =========================================================

plus ``meta``, a JSON string (0-d unicode array): format, version, layer order and geometry.
Everything is read with ``numpy.load(allow_pickle=False)``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Union

import numpy as np

from ..errors import ExportError
from ..nn._op import LayerGeometry
from .packing import PackedLayer

FORMAT = "jointopt.packed"
VERSION = 1
SUFFIX = ".packed.npz"
PACKING = ("per layer: output channels in order, each channel's codes row-major, b-bit two's complement, "
           "LSB-first bit stream, channels contiguous (no padding), layer padded to a whole byte")


def write_packed(layers: List[PackedLayer], path: Union[str, Path], extra: dict | None = None) -> Path:
    """Write ``layers`` to ``path`` (an ``.npz``)."""
    from .. import __version__

    arrays = {}
    meta_layers = []
    for layer in layers:
        p = f"{layer.name}/"
        lo, hi = layer.act_range
        arrays.update({
            p + "weight": layer.weight, p + "bits": layer.bits.astype(np.uint8), p + "bit_offset": layer.bit_offsets,
            p + "shape": np.asarray(layer.weight_shape, np.int64), p + "scale": layer.scale.astype(np.float32),
            p + "zero_point": np.zeros(len(layer.bits), np.int8), p + "bias": layer.bias.astype(np.float32),
            p + "act_scale": np.float32(layer.act_scale), p + "act_zero_point": np.int32(0),
            p + "act_range": np.asarray([lo, hi], np.int32),
        })
        meta_layers.append({"name": layer.name, "geometry": layer.geometry.to_dict(), "has_bias": layer.has_bias,
                            "act_bits": layer.act_bits, "act_signed": layer.act_signed,
                            "packed_bits": layer.packed_bits, "bytes": int(layer.weight.size)})
    meta = {"format": FORMAT, "version": VERSION, "jointopt": __version__, "packing": PACKING,
            "layers": meta_layers, **(extra or {})}
    arrays["meta"] = np.asarray(json.dumps(meta))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def read_packed(path: Union[str, Path]) -> List[PackedLayer]:
    """The layers of a packed ``.npz``; ``layer.codes()`` unpacks a layer's weights.

    Raises:
        ExportError: the file is not a packed jointopt export or is incomplete.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {str(path)!r}: {exc}") from None
    try:
        meta = json.loads(str(arrays["meta"]))
    except (KeyError, json.JSONDecodeError):
        raise ExportError(f"{str(path)!r} is not a packed jointopt export (no meta)") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ExportError(f"{str(path)!r}: format {meta.get('format')!r} version {meta.get('version')!r}; "
                          f"this jointopt reads {FORMAT!r} version {VERSION}")
    layers = []
    for info in meta["layers"]:
        p = f"{info['name']}/"
        try:
            layers.append(PackedLayer(
                info["name"], LayerGeometry.from_dict(info["geometry"]), tuple(arrays[p + "shape"].tolist()),
                arrays[p + "bits"], arrays[p + "weight"], arrays[p + "scale"], arrays[p + "bias"], info["has_bias"],
                info["act_bits"], info["act_signed"], float(arrays[p + "act_scale"])))
        except KeyError as exc:
            raise ExportError(f"{str(path)!r}: layer {info['name']!r} lacks {exc}") from None
    return layers
