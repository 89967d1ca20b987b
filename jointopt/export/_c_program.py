"""``NAME.c``: the constant data of an integer program and ``NAME_run()``, its kernel calls in order."""
from __future__ import annotations

from typing import List

import numpy as np

from .integer import (AddOp, AvgPoolOp, ClampOp, ConcatOp, ConvOp, Head, IntegerProgram, LutOp, MaxPoolOp, PadOp,
                      QuantizeOp)

PAD_MODES = {"constant": 0, "reflect": 1, "replicate": 2, "circular": 3}


def _ints(values) -> List[str]:
    return [str(int(v)) for v in np.asarray(values).reshape(-1).tolist()]


def _hex(values) -> List[str]:
    return [f"0x{int(v):02x}" for v in np.asarray(values, dtype=np.uint8).reshape(-1).tolist()]


class _Writer:
    def __init__(self, program: IntegerProgram, lower: str):
        from .c_format import c_array, c_float

        self.program, self.p = program, lower
        self.array, self.float = c_array, c_float
        self.data: List[str] = []
        self.layers: List[str] = []
        self.body: List[str] = []

    def ptr(self, index: int) -> str:
        t = self.program.tensors[index]
        return f"{self.p}_arena + {t.offset // 4}" if t.dtype == "int32" else f"a + {t.offset}"

    def heads(self, stem: str, heads: List[Head]) -> str:
        items = []
        for h, head in enumerate(heads):
            self.data.append(self.array("int32_t", f"{stem}_mult{h}", _ints(head.mult)))
            self.data.append(self.array("int8_t", f"{stem}_shift{h}", _ints(head.shift)))
            items.append(f"{{{self.ptr(head.tensor)}, {stem}_mult{h}, {stem}_shift{h}, {head.zero}, {head.lo}, {head.hi}}}")
        return ", ".join(items)

    def pool(self, stem: str, op) -> str:
        c, h, w = op.in_shape
        _, oh, ow = op.out_shape
        dilation = getattr(op, "dilation", (1, 1))
        zero = self.program.tensors[op.input].zero
        fields = [c, h, w, oh, ow, *op.kernel, *op.stride, *op.padding, *dilation, zero]
        self.data.append(f"static const jointopt_pool_t {stem} = {{{', '.join(str(int(v)) for v in fields)}}};\n")
        return stem

    def conv(self, k: int, op: ConvOp) -> None:
        from .c_format import width_fields

        i, stem = len(self.layers), f"{self.p}_l{len(self.layers)}"
        hist = ", ".join(f"{int((op.bits == b).sum())} x {b} bit" for b in sorted(set(op.bits.tolist()), reverse=True))
        self.data.append(f"/* layer {i}: {op.name.replace('*/', '* /')} ({op.kind}, {op.in_shape[0]} -> {op.out_shape[0]} "
                         f"channels, kernel {op.kernel[0]}x{op.kernel[1]}, groups {op.groups}; weights {hist}) */\n")
        self.data.append(self.array("uint8_t", f"{stem}_weight", _hex(op.weight)))
        self.data.append(self.array("uint8_t", f"{stem}_widths", _hex(width_fields(op.bits))))
        self.data.append(self.array("int32_t", f"{stem}_bias", _ints(op.bias)))
        fields = [*op.in_shape, *op.out_shape, op.groups, *op.kernel, *op.stride, *op.padding, *op.dilation,
                  self.program.tensors[op.input].zero]  # the field order of jointopt_conv_t
        self.layers.append(f"    {{{stem}_weight, {stem}_widths, {stem}_bias, {', '.join(str(int(v)) for v in fields)}}}")
        heads = self.heads(stem, op.heads)
        acc = self.ptr(op.logits) if op.logits is not None else "0"
        call = f"jointopt_conv(&{self.p}_layers[{i}], {self.ptr(op.input)}, {self.ptr(op.scratch)}, "
        if op.heads:
            self.body.append(f"    {{ /* op {k}: {op.name} */\n        const jointopt_head_t heads[{len(op.heads)}] = "
                             f"{{{heads}}};\n        {call}heads, {len(op.heads)}u, {acc});\n    }}")
        else:
            self.body.append(f"    {call}0, 0u, {acc}); /* op {k}: {op.name} */")

    def op(self, k: int, op) -> None:
        t = self.program.tensors
        stem = f"{self.p}_op{k}"
        if isinstance(op, QuantizeOp):
            self.body.append(f"    jointopt_quantize(input, {self.ptr(op.output)}, {t[op.output].numel}u, "
                             f"{self.float(op.lo_real)}, {self.float(op.hi_real)}, {self.float(op.inv)}, {op.zero}, "
                             f"{op.lo}, {op.hi}); /* op {k}: quantize {op.name} */")
        elif isinstance(op, ConvOp):
            self.conv(k, op)
        elif isinstance(op, AddOp):
            for h, head in enumerate(op.heads):
                items = self.heads(f"{stem}_{h}", [head])
                self.body.append(f"    {{ /* op {k}: add {op.name} */\n        const jointopt_head_t head = {items};\n"
                                 f"        jointopt_add({self.ptr(op.a)}, {t[op.a].zero}, {self.ptr(op.b)}, {t[op.b].zero}, "
                                 f"{t[op.a].numel}u, &head, {int(head.mult_b[0])});\n    }}")
        elif isinstance(op, AvgPoolOp):
            desc = self.pool(stem, op)
            items = self.heads(stem, op.heads)
            self.body.append(f"    {{ /* op {k}: average pool {op.name} */\n        const jointopt_head_t heads"
                             f"[{len(op.heads)}] = {{{items}}};\n        jointopt_avgpool(&{desc}, "
                             f"{self.ptr(op.input)}, heads, {len(op.heads)}u);\n    }}")
        elif isinstance(op, MaxPoolOp):
            desc = self.pool(stem, op)
            self.body.append(f"    jointopt_maxpool(&{desc}, {self.ptr(op.input)}, {self.ptr(op.output)}); "
                             f"/* op {k}: max pool {op.name} */")
        elif isinstance(op, PadOp):
            c, h, w = op.in_shape
            _, oh, ow = op.out_shape
            self.body.append(f"    jointopt_pad({self.ptr(op.input)}, {self.ptr(op.output)}, {c}u, {h}u, {w}u, {oh}u, {ow}u, "
                             f"{op.pads[0]}u, {op.pads[2]}u, {PAD_MODES[op.mode]}, {t[op.input].zero}); "
                             f"/* op {k}: pad {op.name} ({op.mode}) */")
        elif isinstance(op, ClampOp):
            self.body.append(f"    jointopt_clamp({self.ptr(op.input)}, {self.ptr(op.output)}, {t[op.output].numel}u, "
                             f"{op.lo}, {op.hi}); /* op {k}: clamp {op.name} */")
        elif isinstance(op, ConcatOp):
            offset = t[op.output].offset
            for i in op.inputs:
                self.body.append(f"    jointopt_copy({self.ptr(i)}, a + {offset}, {t[i].numel}u); /* op {k}: concat "
                                 f"{op.name} */")
                offset += t[i].numel
        elif isinstance(op, LutOp):
            self.data.append(self.array("int8_t", f"{stem}_table", _ints(op.table)))
            self.body.append(f"    jointopt_lut({self.ptr(op.input)}, {self.ptr(op.output)}, {t[op.output].numel}u, "
                             f"{stem}_table); /* op {k}: table {op.name} */")

    def output(self) -> None:
        out = self.program.tensors[self.program.output]
        if out.dtype == "int32":
            self.data.append(self.array("float", f"{self.p}_output_scale", [self.float(float(v)) for v in out.scale]))
            self.body.append(f"    jointopt_dequantize_acc({self.ptr(out.index)}, {self.p}_output_scale, {out.numel}u, "
                             "output);")
        else:
            self.body.append(f"    jointopt_dequantize({self.ptr(out.index)}, {out.zero}, {self.float(float(out.scale))}, "
                             f"{out.numel}u, output);")


def _preprocess(lower: str, program: IntegerProgram, pre) -> List[str]:
    """``NAME_preprocess()``: (raw - mean[c]) * inv_std[c] in float32, as the data pipeline computes it."""
    from .c_format import c_float

    upper = lower.upper()
    head = f"int {lower}_preprocess(const float *raw, float *input) {{"
    if not pre:
        return [head, "    uint32_t i;", f"    for (i = 0; i < {upper}_INPUT_SIZE; ++i)", "        input[i] = raw[i];",
                "    return 1;", "}", ""]
    channels = int(program.input_shape[0]) if program.input_shape else 1
    per = int(np.prod(program.input_shape[1:])) if len(program.input_shape) > 1 else 1
    return [f"static const float {lower}_mean[{channels}] = {{{', '.join(c_float(v) for v in pre['mean'])}}};",
            f"static const float {lower}_inv_std[{channels}] = {{{', '.join(c_float(v) for v in pre['inv_std'])}}};",
            head, "    uint32_t c, i;", f"    for (c = 0; c < {channels}u; ++c)", f"        for (i = 0; i < {per}u; ++i)",
            f"            input[c * {per}u + i] = (raw[c * {per}u + i] - {lower}_mean[c]) * {lower}_inv_std[c];",
            "    return 0;", "}", ""]


def run_function(program: IntegerProgram, lower: str, preprocessing=None) -> str:
    """The text of ``NAME.c`` for ``program``."""
    from .. import __version__

    w = _Writer(program, lower)
    for k, op in enumerate(program.ops):
        w.op(k, op)
    w.output()
    upper = lower.upper()
    words = max(1, -(-program.arena_bytes // 4))
    parts = [f"/* {lower}.c: generated by jointopt {__version__}: constant data and {lower}_run(). */",
             f'#include "{lower}.h"', "", *w.data,
             f"const jointopt_conv_t {lower}_layers[{upper}_NUM_LAYERS] = {{\n" + ",\n".join(w.layers) + "\n};\n",
             f"/* The one activation buffer: every tensor lives at a fixed offset ({upper}_ARENA_BYTES bytes). */",
             f"static int32_t {lower}_arena[{words}];", "",
             f"int {lower}_run(const float *input, float *output) {{",
             f"    int8_t *const a = (int8_t *){lower}_arena;", *w.body, "    return 0;", "}", "",
             *_preprocess(lower, program, preprocessing)]
    return "\n".join(parts)
