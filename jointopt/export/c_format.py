"""The ``c`` format: one self-contained C99 header with the packed network, for microcontroller builds.

Layout of ``NAME.h`` (``P`` = the upper-case prefix, ``p`` = the lower-case one, ``i`` = layer index
in execution order):

* ``jointopt_layer_t``: one struct type describing a layer (geometry, pointers to its arrays,
  activation quantizer), defined once even when several generated headers are included.
* ``P_NUM_LAYERS``, ``P_WEIGHT_BITS`` (Σ of packed weight bits = the ``memory`` cost),
  ``P_WEIGHT_BYTES`` (Σ of per-layer bytes), ``p_input_shape[]``.
* per layer ``i``: ``P_Li_*`` defines (kind, channels, kernel, codes per channel, packed bits and
  bytes, activation bits / range / signedness) and the arrays ``p_li_weight`` (uint8, packed),
  ``p_li_bits`` (uint8), ``p_li_bit_offset`` (uint32), ``p_li_scale`` and ``p_li_bias`` (float).
* ``p_layers[P_NUM_LAYERS]``: the structs, in execution order.

The graph connectivity (residual adds, pooling, ...) is not in the header: it is in the ONNX file
and the torch manifest. Define ``JOINTOPT_WEIGHT_ATTR`` before including the header to place the
packed weights (e.g. ``__attribute__((section(".flash"), aligned(4)))``).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Iterable, List, Sequence, Union


from ..errors import ExportError
from .npz_format import PACKING
from .packing import PackedLayer

KINDS = {"conv1d": 1, "conv2d": 2, "linear": 3}

_STRUCT = """\
#ifndef JOINTOPT_LAYER_T_DEFINED
#define JOINTOPT_LAYER_T_DEFINED
enum { JOINTOPT_CONV1D = 1, JOINTOPT_CONV2D = 2, JOINTOPT_LINEAR = 3 };
typedef struct {
    const char *name;             /* module path in the PyTorch network */
    uint8_t kind;                 /* JOINTOPT_CONV1D, JOINTOPT_CONV2D or JOINTOPT_LINEAR */
    uint16_t in_channels, out_channels, groups;
    uint16_t kernel[2], stride[2], padding[2], dilation[2];   /* unused trailing dims are 1 (0 for padding) */
    uint32_t codes_per_channel;   /* (in_channels / groups) * kernel[0] * kernel[1] */
    uint32_t packed_bits;         /* sum over channels of codes_per_channel * bits[c] */
    uint32_t packed_bytes;        /* ceil(packed_bits / 8) */
    const uint8_t *weight;        /* packed codes, see the packing note at the top */
    const uint8_t *bits;          /* [out_channels] weight bits per output channel */
    const uint32_t *bit_offset;   /* [out_channels] stream bit where channel c starts */
    const float *scale;           /* [out_channels] weight = code * scale[c] (zero point 0) */
    const float *bias;            /* [out_channels] float bias, or 0 when the layer has none */
    uint8_t act_bits;             /* input activation bits */
    uint8_t act_signed;           /* 1: codes in [-(2^(b-1)-1), 2^(b-1)-1]; 0: [0, 2^b - 1] */
    int32_t act_min, act_max;     /* input activation code range */
    float act_scale;              /* input = code * act_scale (zero point 0) */
} jointopt_layer_t;
#endif
"""


def c_identifier(text: str) -> str:
    """``text`` as a C identifier (letters, digits, underscores; not starting with a digit)."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", text)
    return ident if ident and not ident[0].isdigit() else f"m_{ident}"


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise ExportError(f"cannot write the non-finite value {value} into a C header")
    text = "%.9g" % value  # 9 significant digits round-trip every float32
    return (text if ("." in text or "e" in text) else text + ".0") + "f"


def _array(ctype: str, name: str, values: Iterable[str], count: int, attr: str = "") -> str:
    values = list(values)
    rows = [", ".join(values[i:i + 16]) for i in range(0, len(values), 16)]
    body = ",\n    ".join(rows)
    return f"static const {ctype} {name}[{count}] {attr}JOINTOPT_UNUSED = {{\n    {body}\n}};\n"


def _dims(values: Sequence[int], fill: int) -> str:
    values = list(values)[:2]
    return "{" + ", ".join(str(v) for v in values + [fill] * (2 - len(values))) + "}"


def _layer(index: int, layer: PackedLayer, upper: str, lower: str) -> tuple:
    g = layer.geometry
    lo, hi = layer.act_range
    hist = " ".join(f"{b}b:{int((layer.bits == b).sum())}" for b in sorted(set(layer.bits.tolist()), reverse=True))
    P, p = f"{upper}_L{index}", f"{lower}_l{index}"
    n = len(layer.bits)
    text = [f"/* layer {index}: {layer.name.replace('*/', '* /')} - {g.kind} {g.in_channels}->{g.out_channels}"
            f"{', kernel ' + 'x'.join(map(str, g.kernel_size)) if g.kernel_size else ''}"
            f"{', stride ' + 'x'.join(map(str, g.stride)) if g.stride else ''}, groups {g.groups}; "
            f"weight bits {hist}; {layer.codes_per_channel} codes per channel, {layer.packed_bits} bits, "
            f"{layer.weight.size} bytes */"]
    defines = {"KIND": KINDS[g.kind], "IN_CHANNELS": g.in_channels, "OUT_CHANNELS": g.out_channels,
               "GROUPS": g.groups, "CODES_PER_CHANNEL": layer.codes_per_channel, "PACKED_BITS": layer.packed_bits,
               "PACKED_BYTES": layer.weight.size, "ACT_BITS": layer.act_bits, "ACT_SIGNED": int(layer.act_signed),
               "ACT_MIN": lo, "ACT_MAX": hi, "ACT_SCALE": _float(layer.act_scale), "HAS_BIAS": int(layer.has_bias)}
    text += [f"#define {P}_{k} {f'({v})' if str(v).startswith('-') else v}" for k, v in defines.items()]
    text.append(_array("uint8_t", f"{p}_weight", (f"0x{b:02x}" for b in layer.weight.tolist()), layer.weight.size,
                       "JOINTOPT_WEIGHT_ATTR "))
    text.append(_array("uint8_t", f"{p}_bits", map(str, layer.bits.tolist()), n))
    text.append(_array("uint32_t", f"{p}_bit_offset", (f"{v}u" for v in layer.bit_offsets.tolist()), n))
    text.append(_array("float", f"{p}_scale", map(_float, layer.scale.tolist()), n))
    if layer.has_bias:
        text.append(_array("float", f"{p}_bias", map(_float, layer.bias.tolist()), n))
    struct = (f"    {{{json.dumps(layer.name)}, {KINDS[g.kind]}, {g.in_channels}, {g.out_channels}, {g.groups}, "
              f"{_dims(g.kernel_size, 1)}, {_dims(g.stride, 1)}, {_dims(g.padding, 0)}, {_dims(g.dilation, 1)}, "
              f"{layer.codes_per_channel}u, {layer.packed_bits}u, {layer.weight.size}u, {p}_weight, {p}_bits, "
              f"{p}_bit_offset, {p}_scale, {p + '_bias' if layer.has_bias else '0'}, {layer.act_bits}, "
              f"{int(layer.act_signed)}, {lo}, {hi}, {_float(layer.act_scale)}}}")
    return "\n".join(text), struct


def write_header(layers: List[PackedLayer], path: Union[str, Path], prefix: str, input_shape: Sequence[int],
                 comment: str = "") -> Path:
    """Write the C header for ``layers``; identifiers start with ``prefix``."""
    from .. import __version__

    lower = c_identifier(prefix).lower()
    upper = lower.upper()
    guard = f"JOINTOPT_{upper}_H"
    for layer in layers:
        if max(layer.geometry.in_channels, layer.geometry.out_channels) >= 2**16 or layer.packed_bits >= 2**32:
            raise ExportError(f"layer {layer.name!r} is too large for the C header's 16-bit channel / 32-bit size fields")
    comment = comment.replace("*/", "* /")
    parts = [f"/* {Path(path).name}: generated by jointopt {__version__}." + (f"\n * {comment}" if comment else "") + "\n *",
             f" * Weight packing: {PACKING}.",
             " * Code i of output channel c of a layer: b = bits[c]; read stream bits [bit_offset[c] + i*b,",
             " * bit_offset[c] + (i+1)*b) where stream bit k is bit (k % 8) of weight[k / 8], the code's lowest",
             " * bit first; sign-extend from b bits. Real weight = code * scale[c]; real input activation =",
             " * code * act_scale with codes clamped to [act_min, act_max]. All zero points are 0.",
             " */", f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
             "#ifndef JOINTOPT_WEIGHT_ATTR", "#define JOINTOPT_WEIGHT_ATTR", "#endif",
             "#ifndef JOINTOPT_UNUSED", "#if defined(__GNUC__)", "#define JOINTOPT_UNUSED __attribute__((unused))",
             "#else", "#define JOINTOPT_UNUSED", "#endif", "#endif", "", _STRUCT,
             f"#define {upper}_NUM_LAYERS {len(layers)}",
             f"#define {upper}_WEIGHT_BITS {sum(l.packed_bits for l in layers)}u",
             f"#define {upper}_WEIGHT_BYTES {sum(int(l.weight.size) for l in layers)}u",
             f"#define {upper}_INPUT_RANK {len(input_shape)}",
             _array("uint32_t", f"{lower}_input_shape", (f"{int(s)}u" for s in input_shape), len(input_shape))]
    structs = []
    for i, layer in enumerate(layers):
        text, struct = _layer(i, layer, upper, lower)
        parts.append(text)
        structs.append(struct)
    parts.append(f"static const jointopt_layer_t {lower}_layers[{upper}_NUM_LAYERS] JOINTOPT_UNUSED = {{\n"
                 + ",\n".join(structs) + "\n};\n")
    parts.append(f"#endif /* {guard} */\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
