"""The integer-only meaning of a frozen network, and its Python reference implementation.

An :class:`IntegerProgram` is the frozen network as a list of integer operations in execution
order. It is what the generated C runtime executes (bit for bit) and what :func:`run_reference`
executes in numpy/torch integer arithmetic. :func:`build_program` makes one from a frozen network
and a calibration batch (``jointopt/export/_integer_build.py``).

**Tensors.** Every activation is stored as int8 with a per-tensor scale and zero point:
``real = (q - zero) · scale``. A tensor that only holds non-negative values (after a ReLU, the
input of a layer with an unsigned activation quantizer) has ``zero = -128``: its unsigned code
``u`` in ``[0, 2^b - 1]`` is stored as ``u - 128``. Signed tensors have ``zero = 0`` and codes
in ``[-(2^(b-1) - 1), 2^(b-1) - 1]``. Each tensor also has a stored code range ``[lo, hi]`` (the
activation bits and any fused ReLU/ReLU6/clip). Layout: channels first, then rows, then columns
(PyTorch's NCHW without the batch); a flatten is a no-op. The only int32 tensor is a network
output produced directly by a Conv/Linear (its accumulators, dequantized per channel).

**Weights** of a Conv1d/Conv2d/Linear: per output channel ``c``, ``bits[c]`` in {2, 4, 8} and
integer codes in ``[-2^(bits-1), 2^(bits-1) - 1]`` (real weight = code · step[c]); stored as one
LSB-first bit stream per layer (:mod:`jointopt.quant.packing`). **Bias**: int32,
``round(bias / (input scale · step[c]))``. **Accumulator**: int32,
``bias[c] + Σ (x - zero_in) · code``. **Output**: per output tensor ("head") and channel, the
accumulator times ``input scale · step[c] / output scale`` as a Q31 multiplier and right shift
(:mod:`jointopt.export._fixed_point`), plus the output zero point, clamped to ``[lo, hi]``.

The other operations: ``quantize`` (float input → codes, exactly as the first layer's fake
quantizer), ``add`` (both inputs rescaled to the output scale by 32-bit multipliers with a shared
shift, one rounding), ``avgpool`` (int32 sum, one requantization), ``maxpool`` and ``clamp``
(on the codes: exact), ``concat`` (channel blocks copied; every input already has the output's
scale) and ``lut`` (any elementwise function as a 256-entry table from input code to output code) and ``pad``
(zero point, or copies of the codes for reflect / replicate / circular).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..quant.packing import unpack_codes
from ._fixed_point import requantize, round_to_codes

__all__ = ["IntegerProgram", "QTensor", "Head", "QuantizeOp", "ConvOp", "AddOp", "AvgPoolOp", "MaxPoolOp", "PadOp",
           "ClampOp", "ConcatOp", "LutOp", "run_reference", "build_program"]


@dataclass
class QTensor:
    """One activation tensor of the integer network (batch 1).

    Attributes:
        index: position in :attr:`IntegerProgram.tensors`.
        name: the fx node it holds and the representation (``node@layer:NAME`` = quantized for that
            layer's input, ``node@cal`` = calibrated, ``node@out`` = output accumulators).
        shape: per-sample shape, PyTorch order without the batch: (C, H, W), (C, L) or (F,).
        dtype: ``"int8"`` or ``"int32"``.
        scale: real = (q - zero) · scale; float32 per tensor (int8) or per channel [C] (int32).
        zero, lo, hi: zero point and stored code range (int8 only).
        storage: tensors with the same storage share memory (a flatten or a fused ReLU is an alias).
        offset: byte offset in the arena (set by the memory planner).
    """

    index: int
    name: str
    shape: Tuple[int, ...]
    dtype: str
    scale: Union[float, np.ndarray]
    zero: int = 0
    lo: int = -128
    hi: int = 127
    storage: int = -1
    offset: int = -1

    @property
    def numel(self) -> int:
        """Elements (codes) of the tensor."""
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        """Bytes it takes in the arena (int8 codes, or int32 accumulators)."""
        return self.numel * (4 if self.dtype == "int32" else 1)


@dataclass
class Head:
    """One requantized output of a Conv/Linear, add or average pool.

    ``mult``/``shift`` are per output channel for a Conv/Linear and one value for the others; an
    add also has ``mult_b`` for its second input (both inputs share ``shift``).
    """

    tensor: int
    mult: np.ndarray
    shift: np.ndarray
    zero: int
    lo: int
    hi: int
    mult_b: Optional[np.ndarray] = None


@dataclass
class QuantizeOp:
    """Float input → int8: ``clamp(zero + rint(clamp(x, lo_real, hi_real) · inv), lo, hi)`` in float32."""

    name: str
    output: int
    lo_real: float
    hi_real: float
    inv: float
    zero: int
    lo: int
    hi: int


@dataclass
class ConvOp:
    """A Conv1d/Conv2d/Linear. Shapes are (C, H, W); a Conv1d has H = 1, a Linear H = W = 1."""

    name: str
    kind: str
    input: int
    heads: List[Head]
    logits: Optional[int]
    in_shape: Tuple[int, int, int]
    out_shape: Tuple[int, int, int]
    groups: int
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    weight: np.ndarray  # packed codes, uint8
    bits: np.ndarray  # uint8 [C_out]
    bias: np.ndarray  # int32 [C_out]
    scratch: int = -1  # tensor index of the scratch: one output row of int32 accumulators + one channel's codes

    @property
    def codes_per_channel(self) -> int:
        """Weights per output channel: C_in / groups x kernel height x kernel width."""
        return (self.in_shape[0] // self.groups) * self.kernel[0] * self.kernel[1]

    def codes(self) -> np.ndarray:
        """Unpacked weight codes [C_out, C_in / groups, kh, kw] (int32)."""
        c_out = self.out_shape[0]
        shape = (c_out, self.in_shape[0] // self.groups, *self.kernel)
        return unpack_codes(self.weight, self.bits, self.codes_per_channel).reshape(shape)


@dataclass
class AddOp:
    """``a + b``: both rescaled to each head's output scale (``mult``, ``mult_b``, shared shift), one rounding."""

    name: str
    a: int
    b: int
    heads: List[Head]


@dataclass
class AvgPoolOp:
    """Average over windows (padding counts as zeros in the divisor, as PyTorch's default)."""

    name: str
    input: int
    heads: List[Head]
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    in_shape: Tuple[int, int, int]
    out_shape: Tuple[int, int, int]


@dataclass
class MaxPoolOp:
    """Maximum over windows of the codes (exact: rounding is monotone); padding is skipped."""

    name: str
    input: int
    output: int
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    in_shape: Tuple[int, int, int]
    out_shape: Tuple[int, int, int]


@dataclass
class PadOp:
    """Spatial padding of the codes: zeros (the zero point), or copies (reflect, replicate, circular)."""

    name: str
    input: int
    output: int
    pads: Tuple[int, int, int, int]  # top, bottom, left, right
    mode: str
    in_shape: Tuple[int, int, int]
    out_shape: Tuple[int, int, int]


@dataclass
class ClampOp:
    """Clip the codes of ``input`` to ``[lo, hi]`` (a ReLU, ReLU6 or clamp that could not be fused): exact."""

    name: str
    input: int
    output: int
    lo: int
    hi: int


@dataclass
class ConcatOp:
    """Channel blocks of ``inputs`` copied one after another; every input already has the output's scale."""

    name: str
    inputs: List[int]
    output: int


@dataclass
class LutOp:
    """``out = table[in + 128]``: an elementwise function tabulated for every int8 input code."""

    name: str
    input: int
    output: int
    table: np.ndarray  # int8 [256]


Op = Union[QuantizeOp, ConvOp, AddOp, AvgPoolOp, MaxPoolOp, PadOp, ClampOp, ConcatOp, LutOp]


@dataclass
class IntegerProgram:
    """A frozen network as integer operations in execution order, with its memory plan.

    Attributes:
        tensors: every activation tensor (aliases share a storage and an offset).
        ops: the operations in execution order.
        input_shape: per-sample float input shape.
        output: index of the output tensor; its dequantized values are the logits.
        arena_bytes: size of the one activation buffer (offsets are multiples of 4).
        notes: where the integer network differs from the fake-quantized one, for the report.
    """

    tensors: List[QTensor]
    ops: List[Op]
    input_shape: Tuple[int, ...]
    output: int
    arena_bytes: int = 0
    notes: List[str] = field(default_factory=list)

    def conv_ops(self) -> List[ConvOp]:
        """The Conv/Linear operations, in execution order."""
        return [op for op in self.ops if isinstance(op, ConvOp)]

    def output_scale(self) -> np.ndarray:
        """The output tensor's scale, one per channel for int32 accumulators (float32, flat)."""
        t = self.tensors[self.output]
        return np.asarray(t.scale, dtype=np.float32).reshape(-1)

    def dequantize(self, raw: np.ndarray) -> np.ndarray:
        """Output codes [N, ...] → float32 logits [N, K]: ``float(acc) · scale[c]`` or ``float(q - zero) · scale``."""
        t = self.tensors[self.output]
        raw = np.asarray(raw, dtype=np.int64).reshape(raw.shape[0], -1)
        if t.dtype == "int32":
            return raw.astype(np.float32) * self.output_scale()[None, :]
        return (raw - t.zero).astype(np.float32) * np.float32(t.scale)


# -- the reference implementation ------------------------------------------------------------------
def _heads(values: np.ndarray, heads: Sequence[Head], env: Dict[int, np.ndarray], tensors: List[QTensor],
           per_channel: bool) -> None:
    for head in heads:
        shape = (1, -1, 1, 1) if per_channel else (1,)
        mult = head.mult.astype(np.int64).reshape(shape) if per_channel else np.int64(head.mult[0])
        shift = head.shift.astype(np.int64).reshape(shape) if per_channel else np.int64(head.shift[0])
        q = np.clip(requantize(values, mult, shift) + head.zero, head.lo, head.hi)
        env[head.tensor] = q.reshape((q.shape[0],) + tensors[head.tensor].shape)


def _conv(op: ConvOp, env, tensors) -> None:
    x = env[op.input].reshape((-1,) + tuple(op.in_shape)) - tensors[op.input].zero
    weight = torch.from_numpy(op.codes().astype(np.float64))
    # integers below 2^53 are exact in float64: this convolution is exact integer arithmetic
    acc = F.conv2d(torch.from_numpy(x.astype(np.float64)), weight, None, op.stride, op.padding, op.dilation, op.groups)
    acc = acc.numpy().astype(np.int64) + op.bias.astype(np.int64).reshape(1, -1, 1, 1)
    if np.abs(acc).max(initial=0) >= 2**31:
        raise OverflowError(f"layer {op.name!r}: an int32 accumulator overflows")
    if op.logits is not None:
        env[op.logits] = acc.reshape((acc.shape[0],) + tensors[op.logits].shape)
    _heads(acc, op.heads, env, tensors, per_channel=True)


def _window_sums(x: np.ndarray, op, reduce: str) -> np.ndarray:
    t = torch.from_numpy(x.reshape((x.shape[0],) + tuple(op.in_shape)).astype(np.float64))
    if reduce == "sum":
        kh, kw = op.kernel
        out = F.avg_pool2d(t, op.kernel, op.stride, op.padding, count_include_pad=True) * (kh * kw)
        return np.rint(out.numpy()).astype(np.int64)
    out = F.max_pool2d(t, op.kernel, op.stride, op.padding, op.dilation)
    return out.numpy().astype(np.int64)


def run_reference(program: IntegerProgram, x) -> Tuple[np.ndarray, np.ndarray]:
    """Run ``program`` on a float batch ``x`` [N, *input_shape] in integer arithmetic.

    Returns:
        (logits float32 [N, K], raw output codes int64 [N, K]) — the C runtime prints the same
        logits, bit for bit.
    """
    x = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    if tuple(x.shape[1:]) != tuple(program.input_shape):
        raise ValueError(f"input shape {tuple(x.shape[1:])} differs from the program's {tuple(program.input_shape)}")
    tensors, env = program.tensors, {}
    for op in program.ops:
        if isinstance(op, QuantizeOp):
            q = np.clip(round_to_codes(x, op.lo_real, op.hi_real, op.inv) + op.zero, op.lo, op.hi)
            env[op.output] = q.reshape((x.shape[0],) + tensors[op.output].shape)
        elif isinstance(op, ConvOp):
            _conv(op, env, tensors)
        elif isinstance(op, AddOp):
            a = env[op.a] - tensors[op.a].zero
            b = env[op.b] - tensors[op.b].zero
            for head in op.heads:
                total = a * np.int64(head.mult[0]) + b * np.int64(head.mult_b[0]) + (np.int64(1) << np.int64(head.shift[0] - 1))
                q = np.clip((total >> np.int64(head.shift[0])) + head.zero, head.lo, head.hi)
                env[head.tensor] = q.reshape((q.shape[0],) + tensors[head.tensor].shape)
        elif isinstance(op, AvgPoolOp):
            sums = _window_sums(env[op.input] - tensors[op.input].zero, op, "sum")
            _heads(sums, op.heads, env, tensors, per_channel=False)
        elif isinstance(op, MaxPoolOp):
            out = _window_sums(env[op.input], op, "max")
            env[op.output] = out.reshape((out.shape[0],) + tensors[op.output].shape)
        elif isinstance(op, PadOp):
            t = torch.from_numpy(env[op.input].reshape((-1,) + tuple(op.in_shape)).astype(np.float64))
            top, bottom, left, right = op.pads
            zero = tensors[op.input].zero
            out = F.pad(t, (left, right, top, bottom), mode=op.mode, value=float(zero)) if op.mode == "constant" \
                else F.pad(t, (left, right, top, bottom), mode=op.mode)
            env[op.output] = out.numpy().astype(np.int64).reshape((t.shape[0],) + tensors[op.output].shape)
        elif isinstance(op, ClampOp):
            env[op.output] = np.clip(env[op.input], op.lo, op.hi)
        elif isinstance(op, ConcatOp):
            n = x.shape[0]
            parts = [env[i].reshape(n, -1) for i in op.inputs]
            env[op.output] = np.concatenate(parts, axis=1).reshape((n,) + tensors[op.output].shape)
        elif isinstance(op, LutOp):
            env[op.output] = op.table.astype(np.int64)[env[op.input] + 128]
        else:  # pragma: no cover - every op type is handled above
            raise TypeError(f"unknown operation {type(op).__name__}")
        _alias(program, env)
    raw = env[program.output].reshape(x.shape[0], -1)
    return program.dequantize(raw), raw


def _alias(program: IntegerProgram, env: Dict[int, np.ndarray]) -> None:
    """Make every alias of a computed storage available under its own index and shape."""
    by_storage: Dict[int, np.ndarray] = {}
    for t in program.tensors:
        if t.index in env:
            by_storage.setdefault(t.storage, env[t.index])
    for t in program.tensors:
        if t.index not in env and t.storage in by_storage:
            data = by_storage[t.storage]
            env[t.index] = data.reshape((data.shape[0],) + t.shape)


def build_program(frozen, example, **kwargs) -> IntegerProgram:
    """The integer program of a frozen network, calibrated on ``example`` (see ``_integer_build``)."""
    from ._integer_build import build_program as _build

    return _build(frozen, example, **kwargs)
