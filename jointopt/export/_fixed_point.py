"""Fixed-point arithmetic of the integer network, shared by the Python reference and the C generator.

Every rescaling in the integer network multiplies an integer ``v`` by a positive real factor ``f``
and rounds once: ``round_half_up(v · f)``. ``f`` is stored as an integer multiplier ``m`` and a
right shift ``r`` with ``f ≈ m / 2^r``, and the product is computed exactly in 64 bits::

    requantize(v, m, r) = floor((v · m + 2^(r-1)) / 2^r)

which is ``v · m / 2^r`` rounded to the nearest integer, ties toward +∞ (CMSIS-NN's single-rounding
``arm_nn_requantize`` rounds the same way). ``m`` is a Q31 mantissa in ``[2^30, 2^31)`` (31
significant bits), so ``|v| < 2^31`` keeps ``v · m`` inside 62 bits.
"""
from __future__ import annotations

import math
import struct
from typing import Tuple

import numpy as np

from ..errors import ExportError

Q31 = 1 << 31


def f32(value: float) -> float:
    """``value`` rounded to the nearest float32, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", float(value)))[0]


def quantize_multiplier(factor: float) -> Tuple[int, int]:
    """``(m, r)`` with ``m / 2^r`` the closest Q31 approximation of ``factor`` (> 0).

    A factor below ``2^-32`` rounds every 32-bit input to 0 and is stored as ``(0, 1)``.

    Raises:
        ExportError: ``factor`` is not finite and positive, or so large that ``r`` would be < 1.
    """
    if not math.isfinite(factor) or factor <= 0:
        raise ExportError(f"cannot represent the rescaling factor {factor!r} in fixed point; a scale is zero, "
                          "negative or not finite — check the activation clips and weight steps of the network")
    mantissa, exponent = math.frexp(factor)  # factor = mantissa · 2^exponent, mantissa in [0.5, 1)
    m = int(round(mantissa * Q31))
    if m == Q31:
        m, exponent = m // 2, exponent + 1
    r = 31 - exponent
    if r < 1:
        raise ExportError(f"rescaling factor {factor:.6g} is too large for a Q31 multiplier (>= 2^30); an output "
                          "scale is far finer than its input scale")
    if r > 62:
        return 0, 1
    return m, r


def quantize_multipliers(factors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`quantize_multiplier` of every entry: (int32 multipliers, int8 shifts)."""
    pairs = [quantize_multiplier(float(f)) for f in np.asarray(factors, dtype=np.float64).reshape(-1)]
    mult = np.array([p[0] for p in pairs], dtype=np.int64).astype(np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int8)
    return mult, shift


def requantize(values: np.ndarray, mult, shift) -> np.ndarray:
    """``floor((v · m + 2^(r-1)) / 2^r)`` in exact 64-bit integer arithmetic (arrays broadcast)."""
    v = np.asarray(values, dtype=np.int64)
    m = np.asarray(mult, dtype=np.int64)
    r = np.asarray(shift, dtype=np.int64)
    return (v * m + (np.int64(1) << (r - 1))) >> r  # numpy's >> on int64 is an arithmetic (floor) shift


ADD_MANTISSA_BITS = 21  # the larger add multiplier lies in [2^20, 2^21): two products + rounding fit int32
ADD_MAX_SHIFT = 30


def add_multipliers(factor_a: float, factor_b: float) -> Tuple[int, int, int]:
    """``(m_a, m_b, r)`` with ``m_i / 2^r ≈ factor_i`` and one shared shift, for a 32-bit add.

    With ``|code - zero| <= 255`` both products and the rounding term fit a signed 32-bit integer:
    ``2 · 255 · 2^21 + 2^29 < 2^31``.

    Raises:
        ExportError: a factor is not finite and positive, or one input scale is more than 2^19
            times the output scale.
    """
    for f in (factor_a, factor_b):
        if not math.isfinite(f) or f <= 0:
            raise ExportError(f"cannot rescale an add input by {f!r}: an activation scale is zero or not finite")
    largest = max(factor_a, factor_b)
    r = ADD_MANTISSA_BITS - math.frexp(largest)[1]  # largest · 2^r in [2^20, 2^21)
    r = min(r, ADD_MAX_SHIFT)
    if r < 1:
        raise ExportError(f"an add input scale is {largest:.3g} times the output scale (at most 2^19 is supported); "
                          "the calibration batch gives the add output a far smaller range than its inputs")
    m_a, m_b = (int(round(f * (1 << r))) for f in (factor_a, factor_b))
    if max(m_a, m_b) >= 1 << ADD_MANTISSA_BITS:
        r -= 1
        m_a, m_b = (int(round(f * (1 << r))) for f in (factor_a, factor_b))
    return m_a, m_b, r


def round_to_codes(values: np.ndarray, lo_real: float, hi_real: float, inv: float) -> np.ndarray:
    """Float32 values → integer codes exactly as the fake quantizer computes them.

    ``rint(clamp(x, lo_real, hi_real) · inv)`` with every step in float32 and ties to even; NaN
    becomes ``lo_real``. The C runtime's ``jointopt_quantize`` performs the same three float32
    operations (a comparison, a multiplication, ``rintf``).
    """
    x = np.asarray(values, dtype=np.float32)
    lo, hi, k = np.float32(lo_real), np.float32(hi_real), np.float32(inv)
    x = np.where(x >= lo, x, lo)
    x = np.where(x > hi, hi, x)
    return np.rint((x * k).astype(np.float32)).astype(np.int64)
