"""A synthetic stand-in for Speech Commands: the 35 words spoken by espeak-ng, in the same layout.

Google Speech Commands is a 2.4 GB download; where it cannot be had, this generator writes a small
corpus with the same folder layout (``<word>/<speaker>_nohash_0.wav``, ``_background_noise_/``,
``validation_list.txt``, ``testing_list.txt``), which the ``gsc`` loader then reads with the same
front-end. A "speaker" is one espeak-ng voice x variant x pitch x speed and says every word once;
ordered by a hash of their name, the first 10 % of the speakers are the validation split and the
next 10 % the test split (as Speech Commands splits by a hash of the speaker), so no voice crosses
splits. The words are trimmed of silence, scaled to a random level and placed at a random offset
in the 1 s clip; ``_background_noise_`` holds 30 s each of white, pink and brown noise, mains hum
and a running-tap-like noise.

It is a substitute: synthetic speech is far more regular than people, so accuracies on it are not
comparable with Speech Commands results. ``jointopt data synth-kws --out DIR`` runs it; the
``synthetic_kws`` data set builds it under its root on first use when espeak-ng is installed
(``apt-get install espeak-ng``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..errors import DataError
from ._mfcc import CLIP_SAMPLES, SAMPLE_RATE
from ._progress import Counter

NAME = "synthetic_kws"
CORPUS = "corpus"
WORDS = ["backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
         "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
         "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero"]
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "croak"]
SUBSTITUTE = ("synthetic keyword spotting: the Speech Commands words spoken by espeak-ng voices, not people; "
              "a stand-in for gsc, accuracies are not comparable with Speech Commands results")
NOISE_SECONDS = 30


def espeak() -> Optional[str]:
    """Path of the espeak-ng (or espeak) executable, or None."""
    return shutil.which("espeak-ng") or shutil.which("espeak")


def load(root: Path, download: bool = True):
    """The ``synthetic_kws`` data set: the gsc loader on ``root/synthetic_kws/corpus``."""
    from ._gsc import load_corpus

    def find() -> Path:
        corpus = root / NAME / CORPUS
        if (corpus / "testing_list.txt").is_file():
            return corpus
        if download and espeak():
            return generate(corpus)
        raise DataError(
            f"synthetic keyword-spotting corpus not found at {str(corpus)!r}; install espeak-ng "
            f"(apt-get install espeak-ng) and run `jointopt data synth-kws --out {corpus}`"
        )

    return load_corpus(NAME, root, find, substitute=SUBSTITUTE)


def _speakers(count: int, seed: int) -> List[Tuple[str, str, int, int, float]]:
    """``count`` distinct (voice, variant, pitch, speed, gain) draws."""
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    while len(out) < count:
        voice, variant = VOICES[rng.integers(len(VOICES))], VARIANTS[rng.integers(len(VARIANTS))]
        pitch, speed = int(rng.integers(20, 81)), int(rng.integers(120, 201))
        if (voice, variant, pitch, speed) in seen:
            continue
        seen.add((voice, variant, pitch, speed))
        out.append((voice, variant, pitch, speed, float(rng.uniform(0.3, 1.0))))
    return out


def _speaker_id(speaker) -> str:
    return hashlib.sha1(repr(speaker[:4]).encode()).hexdigest()[:8]


def _assign(speaker_ids: List[str]) -> dict:
    """Speaker id -> split: ordered by id (a hash), the first 10 % val, the next 10 % test (at least one each)."""
    ordered = sorted(speaker_ids)
    n_held = max(1, round(0.1 * len(ordered)))
    return {sid: "val" if i < n_held else "test" if i < 2 * n_held else "train" for i, sid in enumerate(ordered)}


def _render(exe: str, word: str, speaker, offset_rng: np.random.Generator, out: Path) -> None:
    from scipy.io import wavfile

    from ._audio import read_wav

    voice, variant, pitch, speed, gain = speaker
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        cmd = [exe, "-v", f"{voice}+{variant}", "-p", str(pitch), "-s", str(speed), "-w", str(raw), word]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not raw.is_file():
            raise DataError(f"espeak-ng failed on {word!r} ({' '.join(cmd)}): {result.stderr.strip()}")
        wave = read_wav(raw)  # resampled to 16 kHz
    loud = np.nonzero(np.abs(wave) > 0.02 * max(np.abs(wave).max(), 1e-6))[0]
    if len(loud):
        wave = wave[loud[0]:loud[-1] + 1]
    wave = wave[:CLIP_SAMPLES]
    wave = gain * wave / max(np.abs(wave).max(), 1e-6)
    start = int(offset_rng.integers(0, CLIP_SAMPLES - len(wave) + 1))
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    clip[start:start + len(wave)] = wave
    wavfile.write(out, SAMPLE_RATE, (clip * 32767).astype(np.int16))


def _noises(rng: np.random.Generator) -> dict:
    n = NOISE_SECONDS * SAMPLE_RATE
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    freqs[0] = freqs[1]
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    brown = np.fft.irfft(spectrum / freqs, n)
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
    hum = hum + 0.3 * rng.standard_normal(n)
    tap = np.convolve(white, np.ones(8) / 8, mode="same") * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
    out = {}
    for name, wave in {"white_noise": white, "pink_noise": pink, "brown_noise": brown, "hum": hum,
                       "running_tap": tap}.items():
        out[name] = (0.5 * wave / np.abs(wave).max() * 32767).astype(np.int16)
    return out


def generate(out: os.PathLike, *, speakers: int = 100, seed: int = 0, jobs: int = 2, quiet: bool = False) -> Path:
    """Write the corpus to ``out`` (atomically: built next to it, then renamed); return ``out``.

    Args:
        speakers: number of synthetic speakers; each says every one of the 35 words once.
        seed: draws of the speakers, clip offsets and noise.
        jobs: espeak-ng processes run at once.
    """
    from scipy.io import wavfile

    if speakers < 3:
        raise DataError(f"speakers={speakers}: at least 3 are needed (one each for train, val and test)")
    exe = espeak()
    if exe is None:
        raise DataError("espeak-ng is not installed; install it (apt-get install espeak-ng) to synthesise the corpus")
    out = Path(out)
    if out.exists():
        raise DataError(f"{str(out)!r} already exists; remove it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".synth-"))
    try:
        rng = np.random.default_rng(seed)
        cast = _speakers(speakers, seed)
        split_of = _assign([_speaker_id(s) for s in cast])
        lists = {"train": [], "val": [], "test": []}
        tasks = []
        for speaker in cast:
            sid = _speaker_id(speaker)
            for word in WORDS:
                (tmp / word).mkdir(exist_ok=True)
                rel = f"{word}/{sid}_nohash_0.wav"
                tasks.append((word, speaker, np.random.default_rng(rng.integers(2**63)), tmp / rel))
                lists[split_of[sid]].append(rel)
        done, report = 0, Counter("synthesising keywords", len(tasks), "clips", quiet=quiet)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for future in [pool.submit(_render, exe, w, s, r, p) for w, s, r, p in tasks]:
                future.result()
                done += 1
                if done % 50 == 0 or done == len(tasks):
                    report.update(done)
        (tmp / "_background_noise_").mkdir()
        for name, wave in _noises(rng).items():
            wavfile.write(tmp / "_background_noise_" / f"{name}.wav", SAMPLE_RATE, wave)
        (tmp / "validation_list.txt").write_text("".join(f"{r}\n" for r in sorted(lists["val"])))
        (tmp / "testing_list.txt").write_text("".join(f"{r}\n" for r in sorted(lists["test"])))
        (tmp / "README.txt").write_text(f"Synthetic keyword corpus by jointopt ({exe}), {speakers} speakers, "
                                        f"seed {seed}.\n{SUBSTITUTE}\n")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
