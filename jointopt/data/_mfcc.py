"""The MLPerf Tiny keyword-spotting front-end: 1 s of 16 kHz audio -> 49 frames x 10 MFCCs.

Steps (as in the MLPerf Tiny KWS reference, which uses ``tf.signal``):

1. pad (at the end) or cut to 16,000 samples, values in [-1, 1);
2. frames of 480 samples (30 ms) every 320 samples (20 ms), no centring: 1 + (16000-480)//320 = 49;
3. periodic Hann window, real FFT of length 512 (the frame zero-padded), magnitude;
4. 40 triangular mel filters between 20 and 4000 Hz on the HTK mel scale
   (mel = 1127 ln(1 + f/700)), the DC bin excluded, not area-normalised (``linear_to_mel_weight_matrix``);
5. log(mel + 1e-6);
6. DCT-II with orthonormal scaling, first 10 coefficients.

One deliberate difference: ``tf.signal.mfccs_from_log_mel_spectrograms`` scales every coefficient
by sqrt(2/N), while the orthonormal DCT used here scales coefficient 0 by sqrt(1/N); the two differ
only in the first coefficient, by a factor sqrt(2).
"""
from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16_000
CLIP_SAMPLES = 16_000
WINDOW = 480
HOP = 320
FFT_SIZE = 512
MEL_BINS = 40
MEL_LOW_HZ = 20.0
MEL_HIGH_HZ = 4000.0
LOG_OFFSET = 1e-6
NUM_MFCC = 10
FRAMES = 1 + (CLIP_SAMPLES - WINDOW) // HOP  # 49

PARAMS = {"sample_rate": SAMPLE_RATE, "clip": CLIP_SAMPLES, "window": WINDOW, "hop": HOP, "fft": FFT_SIZE,
          "mel_bins": MEL_BINS, "mel_low": MEL_LOW_HZ, "mel_high": MEL_HIGH_HZ, "log_offset": LOG_OFFSET,
          "mfcc": NUM_MFCC, "dct": "ortho", "spectrum": "magnitude"}


def hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=None)
def mel_matrix() -> np.ndarray:
    """[FFT_SIZE//2 + 1, MEL_BINS] triangular weights; row 0 (DC) is zero."""
    bins = FFT_SIZE // 2 + 1
    freqs_mel = hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, bins))[1:, None]
    edges = np.linspace(hz_to_mel(MEL_LOW_HZ), hz_to_mel(MEL_HIGH_HZ), MEL_BINS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs_mel - lower) / (center - lower)
    falling = (upper - freqs_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, MEL_BINS)), weights]).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _window() -> np.ndarray:
    import scipy.signal

    return scipy.signal.get_window("hann", WINDOW, fftbins=True).astype(np.float32)  # periodic Hann


def fit_length(wave: np.ndarray) -> np.ndarray:
    """Cut or zero-pad (at the end) to CLIP_SAMPLES."""
    wave = np.asarray(wave, dtype=np.float32)[..., :CLIP_SAMPLES]
    pad = CLIP_SAMPLES - wave.shape[-1]
    if pad:
        wave = np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(0, pad)])
    return wave


def log_mel(waves: np.ndarray) -> np.ndarray:
    """[B, samples] float waveforms -> [B, 49, 40] log-mel magnitudes."""
    waves = fit_length(np.atleast_2d(waves))
    frames = np.lib.stride_tricks.sliding_window_view(waves, WINDOW, axis=-1)[:, ::HOP]  # [B, 49, 480]
    spectrum = np.abs(np.fft.rfft(frames * _window(), n=FFT_SIZE, axis=-1)).astype(np.float32)
    return np.log(spectrum @ mel_matrix() + LOG_OFFSET)


def mfcc(waves: np.ndarray) -> np.ndarray:
    """[B, samples] (or [samples]) float waveforms in [-1, 1) -> [B, 49, 10] float32 MFCCs."""
    import scipy.fft

    # the DCT in float64, rounded once: within float32 rounding of the exact transform
    coefficients = scipy.fft.dct(log_mel(waves).astype(np.float64), type=2, norm="ortho", axis=-1)
    return coefficients[..., :NUM_MFCC].astype(np.float32)


def silence_frame() -> np.ndarray:
    """The 10 MFCCs of an all-zero frame: what padding with silence looks like after the front-end."""
    return mfcc(np.zeros((1, CLIP_SAMPLES), dtype=np.float32))[0, 0]
