"""The ``c`` format: the integer network as portable C99 — the runtime, the model and a host program.

``write_c`` writes into the export directory:

* ``jointopt_runtime.h`` / ``jointopt_runtime.c`` — the kernels (shipped unchanged, package data);
* ``NAME.h`` — what the application needs: input shape and preprocessing, output size and class
  names, arena and flash sizes, ``NAME_run()``, and the integer format (code order, rounding,
  flatten order) in its opening comment;
* ``NAME.c`` — the constant data (packed weights, 2-bit width fields, int32 biases, requantization
  multipliers and shifts, tables), one static arena and ``NAME_run()``: the kernel calls in
  execution order;
* ``NAME_main.c`` — ``infer``: reads float32 inputs from standard input, prints the logits.

``cc -std=c99 -O2 -Wall -Wextra -Werror OUT/*.c -I OUT -lm -o infer`` builds the host program;
firmware compiles ``NAME.c`` and ``jointopt_runtime.c`` only. The program is
:class:`~jointopt.export.integer.IntegerProgram`; its Python reference gives the same logits, bit
for bit.
"""
from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from .._files import atomic_write_text
from ..errors import ExportError
from ._c_program import run_function
from .integer import AddOp, AvgPoolOp, ConvOp, IntegerProgram, LutOp, MaxPoolOp

RUNTIME_FILES = ("jointopt_runtime.h", "jointopt_runtime.c")
COMPILE = "cc -std=c99 -O2 -Wall -Wextra -Werror OUT/*.c -I OUT -lm -o infer"
# sizes of the descriptors on a 32-bit microcontroller (pointers of 4 bytes)
CONV_DESCRIPTOR_BYTES = 3 * 4 + 16 * 2 + 2 + 2  # three pointers, 16 uint16 fields, int16, padding
POOL_DESCRIPTOR_BYTES = 13 * 2 + 2


def c_identifier(text: str) -> str:
    """``text`` as a C identifier (letters, digits, underscores; not starting with a digit)."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", text)
    return ident if ident and not ident[0].isdigit() else f"m_{ident}"


def c_float(value: float) -> str:
    """``value`` as a C float literal that reads back as the same float32 (``0.5f``); non-finite is an error."""
    if not math.isfinite(value):
        raise ExportError(f"cannot write the non-finite value {value} into C source")
    text = "%.9g" % value  # 9 significant digits round-trip every float32
    return (text if ("." in text or "e" in text) else text + ".0") + "f"


def c_string(text: str) -> str:
    """``text`` as a C string literal, quotes and escapes included."""
    return json.dumps(str(text), ensure_ascii=True)  # a valid C string literal for printable text


def c_array(ctype: str, name: str, values: Iterable[str], attr: str = "") -> str:
    """A ``static const`` C array definition, 16 values per line (``attr``: e.g. a section attribute)."""
    values = list(values) or ["0"]
    rows = [", ".join(values[i:i + 16]) for i in range(0, len(values), 16)]
    return f"static const {ctype} {name}[{len(values)}] {attr}= {{\n    " + ",\n    ".join(rows) + "\n};\n"


def width_fields(bits: np.ndarray) -> np.ndarray:
    """Per-channel weight bits {2, 4, 8} as 2-bit fields (bits = 2 << field), four channels per byte, LSB first."""
    fields = np.log2(np.asarray(bits, dtype=np.int64)).astype(np.int64) - 1
    out = np.zeros(-(-len(fields) // 4), dtype=np.uint8)
    for c, f in enumerate(fields.tolist()):
        out[c // 4] |= np.uint8(f << (2 * (c % 4)))
    return out


def flash_bytes(program: IntegerProgram, preprocessing: Optional[dict] = None) -> Dict[str, int]:
    """Constant data ``NAME.c`` stores, by kind (descriptors sized for a 32-bit target), and the total."""
    parts = {"weights": 0, "widths": 0, "bias": 0, "requantization": 0, "tables": 0, "output_scales": 0,
             "preprocessing": 8 * len(preprocessing["mean"]) if preprocessing else 0, "descriptors": 0}
    for op in program.ops:
        if isinstance(op, ConvOp):
            c = op.out_shape[0]
            parts["weights"] += int(op.weight.size)
            parts["widths"] += -(-c // 4)
            parts["bias"] += 4 * c
            parts["requantization"] += 5 * c * len(op.heads)  # int32 multiplier + int8 shift per channel and head
            parts["descriptors"] += CONV_DESCRIPTOR_BYTES
        elif isinstance(op, AddOp):
            parts["requantization"] += 5 * len(op.heads)  # the second multiplier is an immediate in the code
        elif isinstance(op, AvgPoolOp):
            parts["requantization"] += 5 * len(op.heads)
            parts["descriptors"] += POOL_DESCRIPTOR_BYTES
        elif isinstance(op, MaxPoolOp):
            parts["descriptors"] += POOL_DESCRIPTOR_BYTES
        elif isinstance(op, LutOp):
            parts["tables"] += 256
    out = program.tensors[program.output]
    if out.dtype == "int32":
        parts["output_scales"] = 4 * out.numel
    parts["total"] = sum(parts.values())
    return parts


def _runtime_text(name: str) -> str:
    return resources.files("jointopt.export").joinpath("c_runtime", name).read_text()


def _shape_text(shape) -> str:
    return " x ".join(str(int(s)) for s in shape)


def _header(program: IntegerProgram, lower: str, comment: str, pre: Optional[dict], flash: Dict[str, int]) -> str:
    from .. import __version__

    upper = lower.upper()
    weight_bits = sum(int(op.bits.astype(np.int64).sum()) * op.codes_per_channel for op in program.conv_ops())
    shape = program.input_shape
    layout = {3: "C x H x W (channels, rows, columns)", 2: "C x L (channels, time)", 1: "F (features)"}.get(len(shape), "")
    n_out = program.tensors[program.output].numel
    doc = [f"/* {lower}.h: generated by jointopt {__version__} (integer runtime format 1).",
           *([f" * {comment.replace('*/', '* /')}"] if comment else []),
           " *",
           " * Host program, in this directory:  cc -std=c99 -O2 -Wall -Wextra -Werror *.c -I . -lm -o infer",
           " *   ./infer < input.f32     (one input: little-endian float32, the shape below; prints the logits)",
           f" * Firmware: compile {lower}.c and jointopt_runtime.c (not {lower}_main.c) and call {lower}_run().",
           " *",
           f" * Input: {int(np.prod(shape))} float32 values, {_shape_text(shape)}, layout {layout}, row-major,",
           " * the network's input tensor after preprocessing (below); it is quantized as the first layer's",
           " * activation quantizer does: q = rint(clamp(x, lo, hi) * inv) in float32, ties to even.",
           f" * Output: {n_out} logits (float32); argmax is the class.",
           " * Weight codes: per layer one bit stream; output channels in order, each channel's codes in the",
           " *   order (input channel, kernel row, kernel column) = PyTorch's weight[c] row-major; a b-bit code is",
           " *   b-bit two's complement, lowest bit first; stream bit k is bit (k % 8) of byte k / 8; channels are",
           " *   contiguous (channel c starts at bit sum_{c'<c} bits[c'] * codes per channel).",
           " * Flatten order: channel, row, column (PyTorch's NCHW flatten); a flatten before a Linear is free.",
           " * Rounding: input quantization rintf (nearest, ties to even); every requantization rounds the exact",
           " *   64-bit product acc * mult / 2^shift to nearest with ties toward +infinity, once.",
           f" * Memory: activation arena {program.arena_bytes} bytes (RAM, static); constant data {flash['total']} bytes",
           f" *   (flash: {flash['weights']} packed weights, {flash['widths']} width fields, {flash['bias']} biases,",
           f" *   {flash['requantization']} requantization, {flash['tables']} tables, {flash['output_scales']} output "
           f"scales, {flash['preprocessing']} preprocessing,",
           f" *   {flash['descriptors']} descriptors on a 32-bit target), plus the code.",
           " */"]
    lines = doc + [f"#ifndef JOINTOPT_{upper}_H", f"#define JOINTOPT_{upper}_H", "", "#include <stdint.h>", "",
                   '#include "jointopt_runtime.h"', "",
                   f"#define {upper}_INPUT_RANK {len(shape)}",
                   f"#define {upper}_INPUT_SHAPE {{{', '.join(str(int(s)) for s in shape)}}}",
                   f"#define {upper}_INPUT_SIZE {int(np.prod(shape))}",
                   f"#define {upper}_OUTPUT_SIZE {n_out}",
                   f"#define {upper}_NUM_LAYERS {len(program.conv_ops())}",
                   f"#define {upper}_ARENA_BYTES {program.arena_bytes}u",
                   f"#define {upper}_FLASH_BYTES {flash['total']}u",
                   f"#define {upper}_WEIGHT_BITS {weight_bits}u",
                   f"#define {upper}_WEIGHT_BYTES {flash['weights']}u"]
    lines += _preprocessing(upper, pre or {})
    lines += ["", "/* The Conv/Linear layers in execution order (packed weights, widths, biases, geometry). */",
              f"extern const jointopt_conv_t {lower}_layers[{upper}_NUM_LAYERS];", "",
              f"/* Run the network on input[{upper}_INPUT_SIZE]; writes output[{upper}_OUTPUT_SIZE]; returns 0. */",
              f"int {lower}_run(const float *input, float *output);",
              "/* Raw data -> network input as the training pipeline normalises it; returns 1 (a copy) when the",
              " * export did not know the preprocessing, else 0. */",
              f"int {lower}_preprocess(const float *raw, float *input);", "", f"#endif /* JOINTOPT_{upper}_H */", ""]
    return "\n".join(lines)


def _preprocessing(upper: str, pre: dict) -> List[str]:
    """Macros describing what the input must look like (from the data set, when the export knows it)."""
    if not pre:
        return ["", "/* Preprocessing: not recorded for this export (export(..., preprocessing=dataset) or a run's "
                "trial records it); feed the network's input. */"]
    lines = ["", f"/* Preprocessing ({pre.get('dataset', 'the data set')}): input = (raw - mean[c]) * inv_std[c] per "
                 f"channel, in float32, raw values in [{upper}_RAW_MIN, {upper}_RAW_MAX]; {upper.lower()}_preprocess() "
                 "does it. */", f"#define {upper}_INPUT_LAYOUT {c_string(pre.get('layout', ''))}"]
    for key, macro in (("mean", "INPUT_MEAN"), ("std", "INPUT_STD"), ("inv_std", "INPUT_INV_STD")):
        lines.append(f"#define {upper}_{macro} {{{', '.join(c_float(float(v)) for v in pre[key])}}}")
    lines.append(f"#define {upper}_RAW_MIN {c_float(float(pre['min']))}")
    lines.append(f"#define {upper}_RAW_MAX {c_float(float(pre['max']))}")
    lines.append(f"#define {upper}_RAW_DTYPE {c_string(pre.get('raw_dtype', ''))}")
    names = pre.get("class_names") or []
    lines.append(f"#define {upper}_NUM_CLASSES {len(names)}")
    lines.append(f"#define {upper}_CLASS_NAMES {{{', '.join(c_string(n) for n in names)}}}")
    return lines


def _main(lower: str) -> str:
    return _runtime_text("main.c.in").replace("@NAME@", lower).replace("@UPPER@", lower.upper())


def write_c(program: IntegerProgram, out, name: str, comment: str = "", preprocessing: Optional[dict] = None
            ) -> Dict[str, Path]:
    """Write the runtime, ``NAME.h``, ``NAME.c`` and ``NAME_main.c`` for ``program`` into ``out``.

    Returns:
        The paths by role: ``c`` (the header), ``c_source``, ``c_main``, ``runtime``, ``runtime_h``.
    """
    lower = c_identifier(name).lower()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    flash = flash_bytes(program, preprocessing)
    files = {"c": out / f"{lower}.h", "c_source": out / f"{lower}.c", "c_main": out / f"{lower}_main.c",
             "runtime_h": out / RUNTIME_FILES[0], "runtime": out / RUNTIME_FILES[1]}
    atomic_write_text(files["c"], _header(program, lower, comment, preprocessing, flash))
    atomic_write_text(files["c_source"], run_function(program, lower, preprocessing))
    atomic_write_text(files["c_main"], _main(lower))
    for role, filename in (("runtime_h", RUNTIME_FILES[0]), ("runtime", RUNTIME_FILES[1])):
        atomic_write_text(files[role], _runtime_text(filename))
    return files
