"""The MLPerf Tiny KWS front-end against an independent, loop-based implementation."""
from __future__ import annotations

import math

import numpy as np
import scipy.fft

from jointopt.data import _mfcc


def reference_mfcc(wave: np.ndarray) -> np.ndarray:
    """Written from the description, differently: explicit loops, Hz-domain triangles, scipy's DCT."""
    x = np.zeros(16000)
    x[: min(len(wave), 16000)] = wave[:16000]
    window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / 480) for i in range(480)])

    def mel(f):
        return 1127.0 * math.log(1.0 + f / 700.0)

    edges = [mel(20) + i * (mel(4000) - mel(20)) / 41 for i in range(42)]
    bank = np.zeros((257, 40))
    for k in range(1, 257):
        m = mel(k * 8000.0 / 256)
        for j in range(40):
            low, center, high = edges[j], edges[j + 1], edges[j + 2]
            if low < m <= center:
                bank[k, j] = (m - low) / (center - low)
            elif center < m < high:
                bank[k, j] = (high - m) / (high - center)
    rows = []
    for t in range(49):
        frame = x[320 * t: 320 * t + 480] * window
        magnitude = np.abs(scipy.fft.rfft(frame, 512))
        rows.append(scipy.fft.dct(np.log(magnitude @ bank + 1e-6), type=2, norm="ortho")[:10])
    return np.array(rows)


def test_one_second_gives_49_by_10():
    assert _mfcc.FRAMES == 49
    assert _mfcc.mfcc(np.zeros(16000, dtype=np.float32)).shape == (1, 49, 10)


def test_matches_the_independent_implementation_on_a_short_clip():
    rng = np.random.default_rng(0)
    t = np.arange(11200) / 16000  # 0.7 s: the rest is zero padding
    wave = 0.4 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.05 * rng.standard_normal(len(t))
    ours = _mfcc.mfcc(wave.astype(np.float32))[0]
    theirs = reference_mfcc(wave.astype(np.float32))
    assert np.abs(ours - theirs).max() < 2e-3 * max(1.0, np.abs(theirs).max())
    assert np.allclose(ours[-5:], _mfcc.silence_frame(), atol=1e-4)  # padded tail is silence


def test_longer_clips_are_cut_and_batches_are_independent():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(17000) * 0.1, rng.standard_normal(16000) * 0.1
    both = _mfcc.mfcc(np.stack([a[:16000], b]).astype(np.float32))
    assert np.allclose(both[0], _mfcc.mfcc(a.astype(np.float32))[0], atol=1e-5)
    assert np.allclose(both[1], reference_mfcc(b), atol=2e-3)


def test_a_tone_peaks_in_the_mel_band_around_its_frequency():
    t = np.arange(16000) / 16000
    log_mel = _mfcc.log_mel(np.sin(2 * np.pi * 1000 * t).astype(np.float32))[0]
    centers = 700 * (np.exp(np.linspace(_mfcc.hz_to_mel(20), _mfcc.hz_to_mel(4000), 42)[1:-1] / 1127) - 1)
    assert abs(centers[log_mel[10].argmax()] - 1000) < 100


def test_silence_frame_is_log_offset_through_the_dct():
    expected = np.zeros(10)
    expected[0] = math.log(1e-6) * math.sqrt(40)
    assert np.allclose(_mfcc.silence_frame(), expected, atol=1e-3)


# Frames 0, 24 (a 440 Hz + 2500 Hz tone) and 48 (the zero padding after 0.7 s) as the front-end gave
# them before it used scipy.fft.dct / scipy.signal.get_window (a float32 matrix product for the DCT,
# the Hann formula written out), to six decimals.
BEFORE_SCIPY = {
    0: [-20.844687, 6.728858, 4.253784, -4.393692, -14.122497, 2.908225, -6.028080, 3.899796, 4.276606, -1.121801],
    24: [-20.618101, 6.665554, 3.988623, -4.079955, -14.075985, 2.742191, -5.870574, 4.068617, 4.195467, -1.025179],
    48: [-87.376991, 0.000003, -0.000001, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
}


def test_numbers_are_those_of_the_front_end_before_scipy():
    t = np.arange(11200) / 16000
    wave = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32)
    ours = _mfcc.mfcc(wave)[0]
    for frame in (0, 24):
        assert np.abs(ours[frame] - BEFORE_SCIPY[frame]).max() < 1e-5
    # the silent frame: the old float32 product was itself 3e-5 off the exact -87.37696 (1e-5 of its size)
    assert np.abs(ours[48] - BEFORE_SCIPY[48]).max() < 1e-5 * 87.4


def test_the_window_and_dct_are_the_textbook_formulas_to_float32_rounding():
    n = np.arange(480)
    assert np.array_equal(_mfcc._window(), (0.5 - 0.5 * np.cos(2 * np.pi * n / 480)).astype(np.float32))
    rng = np.random.default_rng(2)
    waves = np.concatenate([0.3 * rng.standard_normal((3, 16000)), np.zeros((1, 16000))]).astype(np.float32)
    log_mel = _mfcc.log_mel(waves).astype(np.float64)
    k, m = np.arange(10)[None, :], np.arange(40)[:, None]
    basis = np.cos(np.pi * k * (2 * m + 1) / 80) * np.sqrt(2 / 40)  # orthonormal DCT-II, written out
    basis[:, 0] = np.sqrt(1 / 40)
    assert np.abs(_mfcc.mfcc(waves) - log_mel @ basis).max() < 1e-5
