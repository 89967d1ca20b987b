"""Google Speech Commands v0.02 as the 12-class MLPerf Tiny keyword-spotting task, MFCC 49x10.

Layout (the archive extracts without a top-level folder; it is extracted into
``root/gsc/speech_commands_v0.02/``)::

    <word>/<speaker>_nohash_<n>.wav     35 words, 16 kHz mono, at most 1 s
    _background_noise_/*.wav            long noise recordings
    validation_list.txt, testing_list.txt   lines "word/file.wav"; everything else is train

Classes: the ten keywords, ``_silence_`` and ``_unknown_``. In every split the unknown class is a
random sample of the other 25 words and the silence class is cut from the noise recordings, each
``ceil(10 %)`` of the keyword clips of that split (TensorFlow's ``input_data`` convention used by
MLPerf Tiny, ≈8 % of the split each). Noise recordings are cut 80/10/10 % in time between
train/val/test so silence and noise never cross splits.

Augmentation, two parts:

* background noise is mixed into 80 % of the training clips at a volume uniform in [0, 0.1]
  **on the waveforms, once, when the cache is built** (MFCCs are not additive in noise), so each
  clip keeps the same noise draw in every epoch;
* a time shift of ±100 ms is applied **per batch on the cached features**: the 20 ms hop makes
  that a shift of ±5 frames, the vacated frames filled with the MFCCs of silence.

The features are computed once (a few minutes for the full data set) and cached as float16 in
``root/gsc/cache.pt``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..errors import DataError
from ._audio import noise_clip, read_wav, split_noise
from ._base import Augmentation, Dataset, Split
from ._cache import cache_path, load_cache, locate, save_cache
from ._download import RemoteFile, extract, fetch, not_found
from ._mfcc import (
    CLIP_SAMPLES,
    FRAMES,
    NUM_MFCC,
    PARAMS,
    fit_length,
    mfcc,
    silence_frame,
)
from ._progress import Counter

NAME = "gsc"
FOLDER = "speech_commands_v0.02"
ARCHIVE = RemoteFile(
    url="http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
    filename="speech_commands_v0.02.tar.gz",
    size=2_428_923_189,
    md5="6b74f3901214cb2c2934e98196829835",
)
KEYWORDS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes"]
CLASS_NAMES = KEYWORDS + ["_silence_", "_unknown_"]
SILENCE, UNKNOWN = 10, 11
SILENCE_SHARE = 0.1  # of the keyword clips of a split
UNKNOWN_SHARE = 0.1
SILENCE_VOLUME = 1.0  # silence clips: noise at a volume uniform in [0, SILENCE_VOLUME]
NOISE_PROB = 0.8  # share of training clips that get background noise
NOISE_VOLUME = 0.1
NOISE_SHARES = (0.8, 0.1, 0.1)
SHIFT_FRAMES = 5  # ±100 ms at a 20 ms hop
BUILD_SEED = 1234  # the corpus composition and noise draws are fixed, independent of the caller's seed
CHUNK = 512
NOISE_DIR = "_background_noise_"
SPLIT_NAMES = ("train", "val", "test")


def load(root: Path, download: bool = True) -> Dataset:
    """The Speech Commands loader; the official validation list is the validation split."""
    return load_corpus(NAME, root, lambda: _find_or_fetch(root, download))


def load_corpus(name: str, root: Path, find: Callable[[], Path], *, substitute: Optional[str] = None) -> Dataset:
    """Load (or build and cache) the features of a corpus in the Speech Commands layout."""
    key = {"dataset": name, "frontend": PARAMS, "silence": SILENCE_SHARE, "unknown": UNKNOWN_SHARE,
           "noise": [NOISE_PROB, NOISE_VOLUME, list(NOISE_SHARES)], "seed": BUILD_SEED}
    path = cache_path(root, name)
    cached = load_cache(path, key)
    if cached is None:
        folder = find()
        cached = build_features(folder, label=name)
        save_cache(path, key, cached)
    splits = {s: Split(cached[f"{s}_x"], cached[f"{s}_y"]) for s in SPLIT_NAMES}
    return Dataset(
        name=name, **splits, input_shape=(1, FRAMES, NUM_MFCC), num_classes=len(CLASS_NAMES),
        class_names=list(CLASS_NAMES), substitute=substitute,
        augmentation=Augmentation(shift_h=SHIFT_FRAMES, fill=tuple(float(v) for v in silence_frame())),
        notes=f"MFCC features cached at {path}",
    )


def _find_or_fetch(root: Path, download: bool) -> Path:
    folder = locate(root, NAME, FOLDER)
    if folder is not None:
        return folder
    for flat in (root / NAME, root):  # the archive extracted by hand, without a top folder
        if (flat / "testing_list.txt").is_file():
            return flat
    archive = locate(root, NAME, ARCHIVE.filename)
    if archive is None and not download:
        raise not_found("Speech Commands v0.02", NAME, root, FOLDER, ARCHIVE)
    archive = fetch(ARCHIVE, archive.parent if archive is not None else root / NAME)
    return extract(archive, root / NAME / FOLDER)


def _read_list(path: Path) -> set:
    if not path.is_file():
        raise DataError(f"{str(path)!r} is missing; {str(path.parent)!r} is not a complete Speech Commands folder")
    return {line.strip().replace("\\", "/") for line in path.read_text().splitlines() if line.strip()}


def _index(folder: Path) -> Dict[str, List[Tuple[str, int]]]:
    """Every word clip as (relative path, label), by split, sorted."""
    val, test = _read_list(folder / "validation_list.txt"), _read_list(folder / "testing_list.txt")
    splits: Dict[str, List[Tuple[str, int]]] = {s: [] for s in SPLIT_NAMES}
    words = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_"))
    for word in words:
        label = KEYWORDS.index(word.name) if word.name in KEYWORDS else UNKNOWN
        for wav in sorted(word.glob("*.wav")):
            rel = f"{word.name}/{wav.name}"
            split = "val" if rel in val else "test" if rel in test else "train"
            splits[split].append((rel, label))
    if not any(label != UNKNOWN for items in splits.values() for _, label in items):
        raise DataError(f"no keyword clips ({', '.join(KEYWORDS)}) found in {str(folder)!r}")
    return splits


def build_features(folder: Path, *, label: str = NAME) -> Dict[str, torch.Tensor]:
    """Compute the MFCCs of every split of the corpus in ``folder``."""
    splits = _index(folder)
    noise_files = sorted((folder / NOISE_DIR).glob("*.wav")) if (folder / NOISE_DIR).is_dir() else []
    noises = [read_wav(p) for p in noise_files]
    parts = split_noise(noises, NOISE_SHARES)
    if noises and not all(parts):  # recordings too short to cut three ways: share them
        parts = [noises for _ in NOISE_SHARES]
    out: Dict[str, torch.Tensor] = {}
    for index, split in enumerate(SPLIT_NAMES):
        rng = np.random.default_rng(BUILD_SEED + index)
        clips = _compose(splits[split], rng)
        x = _features(folder, clips, parts[index], parts[0] if split == "train" else None, rng, f"{label} {split}")
        y = torch.tensor([c[1] for c in clips], dtype=torch.int64)
        if split == "train":  # a fixed shuffle, so that limit_train keeps a representative subset
            order = torch.from_numpy(rng.permutation(len(clips)))
            x, y = x[order], y[order]
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out


def _compose(items: List[Tuple[str, int]], rng: np.random.Generator) -> List[Tuple[Optional[str], int]]:
    known = [item for item in items if item[1] != UNKNOWN]
    unknown = [item for item in items if item[1] == UNKNOWN]
    n_unknown = min(len(unknown), math.ceil(UNKNOWN_SHARE * len(known)))
    picked = [unknown[i] for i in sorted(rng.choice(len(unknown), n_unknown, replace=False))] if n_unknown else []
    silence = [(None, SILENCE)] * math.ceil(SILENCE_SHARE * len(known))
    return known + picked + silence


def _features(folder: Path, clips, noise_part: List[np.ndarray], train_noise: Optional[List[np.ndarray]],
              rng: np.random.Generator, label: str) -> torch.Tensor:
    x = torch.empty(len(clips), 1, FRAMES, NUM_MFCC, dtype=torch.float16)
    report = Counter(f"computing MFCC features ({label})", len(clips), "clips", minimum=4 * CHUNK)
    for start in range(0, len(clips), CHUNK):
        waves = np.zeros((min(CHUNK, len(clips) - start), CLIP_SAMPLES), dtype=np.float32)
        for row, (rel, _) in enumerate(clips[start:start + CHUNK]):
            if rel is None:
                waves[row] = rng.uniform(0, SILENCE_VOLUME) * noise_clip(noise_part, rng)
                continue
            waves[row] = fit_length(read_wav(folder / rel))
            if train_noise and rng.random() < NOISE_PROB:
                waves[row] += rng.uniform(0, NOISE_VOLUME) * noise_clip(train_noise, rng)
        np.clip(waves, -1.0, 1.0, out=waves)
        x[start:start + len(waves), 0] = torch.from_numpy(mfcc(waves)).half()
        report.update(start + len(waves))
    return x
