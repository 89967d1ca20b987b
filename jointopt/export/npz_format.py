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

plus ``meta``, a JSON string (0-d unicode array): format, version, layer order, geometry, the
activation quantizer, the search's candidate widths (``weight_bits``), and the preprocessing of
the input (see :mod:`.preprocessing`). Everything is read with ``numpy.load(allow_pickle=False)``,
and :func:`read_packed` checks every field against the others (lengths, dtypes, offsets derived
from ``bits``, the exact byte count, zero points, ranges) before returning anything.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Union

import numpy as np

from .._files import atomic_path
from ..errors import ExportError
from ..quant import act_levels
from ..quant.packing import channel_bit_offsets, packed_bytes
from .packing import PackedLayer

FORMAT = "jointopt.packed"
VERSION = 2  # 2: weight_bits per layer, preprocessing; read strictly
OLD_WIDTHS = (2, 4, 8)  # version 1 did not record the candidate widths: the defaults of that time
_DTYPES = {"weight": np.uint8, "bits": np.uint8, "bit_offset": (np.uint32, np.uint64), "shape": np.int64,
           "scale": np.float32, "zero_point": np.int8, "bias": np.float32, "act_scale": np.float32,
           "act_zero_point": np.int32, "act_range": np.int32}
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
                            "weight_bits": [int(b) for b in layer.weight_bits],
                            "packed_bits": layer.packed_bits, "bytes": int(layer.weight.size)})
    meta = {"format": FORMAT, "version": VERSION, "jointopt": __version__, "packing": PACKING,
            "layers": meta_layers, **(extra or {})}
    arrays["meta"] = np.asarray(json.dumps(meta))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def read_packed(path: Union[str, Path]) -> List[PackedLayer]:
    """The layers of a packed ``.npz``; ``layer.codes()`` unpacks a layer's weights.

    Raises:
        ExportError: the file is not a packed jointopt export, is incomplete, or any field
            disagrees with the others (the message names the layer and the field).
    """
    arrays, meta = _open(path)
    where = str(path)
    layers, used = [], {"meta"}
    infos = meta.get("layers")
    if not isinstance(infos, list) or not infos:
        raise ExportError(f"{where!r}: meta has no list of layers")
    for info in infos:
        layer, keys = _layer(arrays, info, meta["version"], where)
        layers.append(layer)
        used |= keys
    unused = sorted(set(arrays) - used)
    if unused:
        raise ExportError(f"{where!r}: arrays {unused[:4]} belong to no layer in meta; the file was edited")
    return layers


def read_meta(path: Union[str, Path]) -> dict:
    """The ``meta`` record of a packed ``.npz`` (format, layers, metadata, preprocessing)."""
    return _open(path)[1]


def _open(path):
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ExportError(f"cannot read {str(path)!r}: {exc}") from None
    try:
        meta = json.loads(str(arrays["meta"]))
    except (KeyError, json.JSONDecodeError):
        raise ExportError(f"{str(path)!r} is not a packed jointopt export (no meta)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") not in (1, VERSION):
        got = meta if not isinstance(meta, dict) else f"format {meta.get('format')!r} version {meta.get('version')!r}"
        raise ExportError(f"{str(path)!r}: {got}; this jointopt reads {FORMAT!r} versions 1 and {VERSION}")
    return arrays, meta


def _layer(arrays: dict, info, version: int, where: str):
    """One layer, every field checked; returns (layer, the array keys it uses)."""
    from .manifest import _geometry  # the manifest's strict geometry reader

    if not isinstance(info, dict) or not isinstance(info.get("name"), str):
        raise ExportError(f"{where!r}: a meta layer entry is not an object with a name: {info!r}")
    name = info["name"]

    def fail(field: str, problem: str):
        raise ExportError(f"{where!r}: layer {name!r}: {field}: {problem}")

    def get(key: str):
        value = arrays.get(f"{name}/{key}")
        if value is None:
            fail(key, "missing")
        kinds = _DTYPES[key] if isinstance(_DTYPES[key], tuple) else (_DTYPES[key],)
        if value.dtype not in [np.dtype(k) for k in kinds]:
            fail(key, f"dtype {value.dtype}, expected {np.dtype(kinds[0])}")
        return value

    for key, kind in (("act_bits", int), ("act_signed", bool), ("has_bias", bool)):
        if not isinstance(info.get(key), kind) or (kind is int and isinstance(info[key], bool)):
            fail(key, f"{info.get(key)!r} is not a {kind.__name__}")
    if not 1 <= info["act_bits"] <= 16:
        fail("act_bits", f"{info['act_bits']} is outside 1..16")
    try:
        g = _geometry(info.get("geometry"), "geometry")
    except ExportError as exc:
        fail("geometry", str(exc))
    widths = info.get("weight_bits", list(OLD_WIDTHS) if version == 1 else None)
    if not isinstance(widths, list) or not widths or not all(isinstance(b, int) and 1 <= b <= 16 for b in widths):
        fail("weight_bits", f"{widths!r} is not a list of widths in 1..16")
    out = g.out_channels
    shape = tuple(get("shape").tolist())
    want = (out, g.in_channels // g.groups) + tuple(g.kernel_size) if g.kind != "linear" else (out, g.in_channels)
    if shape != want:
        fail("shape", f"{list(shape)}, the geometry needs {list(want)}")
    per_channel = int(np.prod(shape[1:]))
    bits = get("bits")
    if bits.shape != (out,):
        fail("bits", f"{bits.size} values for {out} output channels")
    bad = sorted(set(bits.tolist()) - set(widths))
    if bad:
        fail("bits", f"widths {bad} are not among the layer's candidate widths {widths}")
    weight = get("weight")
    need = packed_bytes(bits, per_channel)
    if weight.shape != (need,):
        fail("weight", f"{weight.size} bytes, the bits need exactly {need} (truncated or padded)")
    used_bits = int(np.sum(bits.astype(np.int64))) * per_channel
    if used_bits % 8 and int(weight[-1]) >> (used_bits % 8):
        fail("weight", "the padding bits after the last code are not zero")
    offsets = get("bit_offset")
    if not np.array_equal(offsets.astype(np.int64), channel_bit_offsets(bits, per_channel).astype(np.int64)):
        fail("bit_offset", "does not follow from bits (each channel starts where the previous one ends)")
    scale, bias, zero = get("scale"), get("bias"), get("zero_point")
    for key, value in (("scale", scale), ("bias", bias), ("zero_point", zero)):
        if value.shape != (out,):
            fail(key, f"{value.size} values for {out} output channels")
    if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
        fail("scale", "must be finite and > 0")
    if not np.all(np.isfinite(bias)) or (not info["has_bias"] and np.any(bias != 0)):
        fail("bias", "must be finite (and zero where has_bias is false)")
    if np.any(zero != 0):
        fail("zero_point", f"{sorted(set(zero.tolist()))}: weights are symmetric, every zero point is 0")
    act_scale, act_zero, act_range = get("act_scale"), get("act_zero_point"), get("act_range")
    if act_scale.shape != () or not (np.isfinite(act_scale) and act_scale > 0):
        fail("act_scale", f"{act_scale!r} is not one finite number > 0")
    if act_zero.shape != () or int(act_zero) != 0:
        fail("act_zero_point", f"{act_zero!r}: activations are quantized with zero point 0")
    levels = list(act_levels(info["act_bits"], info["act_signed"]))
    if act_range.tolist() != levels:
        fail("act_range", f"{act_range.tolist()}, the {info['act_bits']}-bit "
                          f"{'signed' if info['act_signed'] else 'unsigned'} quantizer has {levels}")
    for key, value in (("packed_bits", used_bits), ("bytes", need)):
        if key in info and info[key] != value:
            fail(key, f"meta says {info[key]!r}, the arrays give {value}")
    layer = PackedLayer(name, g, shape, bits, weight, scale, bias, info["has_bias"], info["act_bits"],
                        info["act_signed"], float(act_scale), tuple(widths))
    return layer, {f"{name}/{key}" for key in _DTYPES}
