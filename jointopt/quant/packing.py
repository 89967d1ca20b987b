"""Bit packing of integer weight codes at per-channel widths.

The layout, used by every packed export (``.npz``, C header, the raw data of ONNX INT4/INT2
tensors):

* One layer is one **bit stream**: its output channels in order, and within a channel the codes
  in row-major order of ``weight[c]`` (input channel, then kernel positions).
* A ``b``-bit code is stored as ``b``-bit two's complement (2 bits: ``-1 → 0b11``, ``1 → 0b01``).
* The stream is **LSB-first**: bit ``j`` of the stream is bit ``j % 8`` of byte ``j // 8``, and the
  lowest bit of each code comes first. With a uniform width of 4 (2) bits this is exactly the
  nibble (crumb) order ONNX uses for INT4 (INT2): the first code in the low bits of byte 0.
* Channels are packed **contiguously**, without padding; only the end of the layer is padded
  with zero bits to a whole byte. A channel can therefore start inside a byte;
  :func:`channel_bit_offsets` gives where each one starts.

So a layer of ``C`` channels with ``n`` codes each takes ``Σ_c n · bits[c]`` bits — exactly the
``memory`` cost model's count — and ``ceil(that / 8)`` bytes.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

ArrayLike = Union[np.ndarray, Sequence[int]]


def _check(codes: np.ndarray, bits: np.ndarray) -> None:
    if codes.ndim != 2 or bits.ndim != 1 or codes.shape[0] != bits.shape[0]:
        raise ValueError(f"codes must be [C, n] and bits [C]; got {codes.shape} and {bits.shape}")
    if np.any(bits < 1) or np.any(bits > 32):
        raise ValueError(f"bit-widths must be in 1..32, got {sorted(set(bits.tolist()))}")
    for b in np.unique(bits):
        rows = codes[bits == b]
        lo, hi = -(1 << (int(b) - 1)), (1 << (int(b) - 1)) - 1
        if rows.size and (rows.min() < lo or rows.max() > hi):
            raise ValueError(f"codes of {b}-bit channels must lie in [{lo}, {hi}], found [{rows.min()}, {rows.max()}]")


def packed_bits(bits: ArrayLike, codes_per_channel: int) -> int:
    """Number of meaningful bits in the stream (before the final byte padding)."""
    return int(np.asarray(bits, dtype=np.int64).sum()) * int(codes_per_channel)


def packed_bytes(bits: ArrayLike, codes_per_channel: int) -> int:
    """Bytes the packed layer occupies: ``ceil(packed_bits / 8)``."""
    return -(-packed_bits(bits, codes_per_channel) // 8)


def channel_bit_offsets(bits: ArrayLike, codes_per_channel: int) -> np.ndarray:
    """Bit position in the stream where each channel's first code starts (uint32 when it fits)."""
    widths = np.asarray(bits, dtype=np.int64) * int(codes_per_channel)
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]) if len(widths) else np.zeros(0, np.int64)
    return offsets.astype(np.uint32 if (offsets.max(initial=0) < 2**32) else np.uint64)


def pack_codes(codes: ArrayLike, bits: ArrayLike) -> np.ndarray:
    """Pack ``codes`` [C, n] (signed integers) whose row ``c`` uses ``bits[c]`` bits; returns uint8.

    Raises:
        ValueError: shapes disagree, or a code does not fit its channel's width.
    """
    codes = np.asarray(codes, dtype=np.int64)
    bits = np.asarray(bits, dtype=np.int64).reshape(-1)
    if codes.ndim == 1:
        codes = codes.reshape(1, -1)
    _check(codes, bits)
    channels, n = codes.shape
    rows = [None] * channels
    for b in np.unique(bits):
        index = np.flatnonzero(bits == b)
        dtype = np.uint8 if b <= 8 else np.uint32
        unsigned = (codes[index] & ((1 << int(b)) - 1)).astype(dtype)  # two's complement in b bits
        planes = ((unsigned[..., None] >> np.arange(int(b), dtype=dtype)) & 1).astype(np.uint8)  # lowest bit first
        for k, c in enumerate(index):
            rows[c] = planes[k].reshape(-1)
    stream = np.concatenate(rows).astype(np.uint8) if rows else np.zeros(0, np.uint8)
    return np.packbits(stream, bitorder="little")


def unpack_codes(packed: ArrayLike, bits: ArrayLike, codes_per_channel: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: int32 codes [C, codes_per_channel].

    Raises:
        ValueError: ``packed`` is shorter than the stream the widths describe.
    """
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1)
    bits = np.asarray(bits, dtype=np.int64).reshape(-1)
    n = int(codes_per_channel)
    need = packed_bytes(bits, n)
    if packed.size < need:
        raise ValueError(f"packed data has {packed.size} bytes; the widths need {need}")
    stream = np.unpackbits(packed, bitorder="little")
    out = np.zeros((len(bits), n), dtype=np.int64)
    offsets = channel_bit_offsets(bits, n).astype(np.int64)
    for c, (start, b) in enumerate(zip(offsets.tolist(), bits.tolist())):
        planes = stream[start:start + n * b].reshape(n, b).astype(np.int64)
        out[c] = planes @ (np.int64(1) << np.arange(b, dtype=np.int64))
    signs = (np.int64(1) << (bits - 1))[:, None]
    out -= (out >= signs) * (signs << 1)  # sign-extend each b-bit two's complement code
    return out.astype(np.int32)
