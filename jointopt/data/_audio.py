"""Reading WAV files and mixing background noise, for the keyword-spotting data sets."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Tuple

import numpy as np

from ..errors import DataError
from ._mfcc import CLIP_SAMPLES, SAMPLE_RATE


def read_wav(path: Path) -> np.ndarray:
    """Mono float32 samples in [-1, 1) at 16 kHz (other rates are resampled, channels averaged)."""
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)  # unknown chunks in some files
            rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"cannot read WAV file {str(path)!r}: {exc}") from None
    if data.dtype == np.int16:
        wave = data.astype(np.float32) / 32768.0
    elif data.dtype == np.int32:
        wave = data.astype(np.float32) / 2147483648.0
    elif data.dtype == np.uint8:
        wave = (data.astype(np.float32) - 128.0) / 128.0
    elif data.dtype.kind == "f":
        wave = data.astype(np.float32)
    else:
        raise DataError(f"WAV file {str(path)!r} has unsupported sample type {data.dtype}")
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(rate), SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)
    return wave


def split_noise(noises: List[np.ndarray], shares: Tuple[float, ...]) -> List[List[np.ndarray]]:
    """Cut every noise recording into consecutive parts by ``shares`` (one list of parts per share).

    Silence and noise for train, validation and test come from different stretches of each
    recording, so no split sees the noise another split is evaluated on.
    """
    parts: List[List[np.ndarray]] = [[] for _ in shares]
    total = float(sum(shares))
    for noise in noises:
        start = 0
        for i, share in enumerate(shares):
            stop = len(noise) if i == len(shares) - 1 else start + int(len(noise) * share / total)
            if stop - start >= CLIP_SAMPLES:
                parts[i].append(noise[start:stop])
            start = stop
    return parts


def noise_clip(noises: List[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A random 1 s stretch of a random recording (zero-padded if no recording is long enough)."""
    if not noises:
        return np.zeros(CLIP_SAMPLES, dtype=np.float32)
    noise = noises[rng.integers(len(noises))]
    if len(noise) <= CLIP_SAMPLES:
        return np.pad(noise, (0, CLIP_SAMPLES - len(noise)))
    start = rng.integers(0, len(noise) - CLIP_SAMPLES + 1)
    return noise[start:start + CLIP_SAMPLES]
