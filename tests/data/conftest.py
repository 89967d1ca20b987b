"""Fixtures written in the real on-disk formats of each data set, tiny enough to load in a second,
and a local HTTP server for the download path."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from data_formats import GSC_WORDS, FileServer, cifar_batch, idx_bytes, md5, write_wav

from jointopt.data import _cifar10, _download
from jointopt.data import _registry as _data_registry


@pytest.fixture(autouse=True)
def _quiet_and_fast(monkeypatch):
    monkeypatch.setattr(_download, "RETRY_WAIT_S", 0.0)
    monkeypatch.setattr(_download, "TIMEOUT_S", 5.0)


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch):
    """Data sets a test registers go into a copy, so later tests that list them do not see them."""
    _data_registry._REGISTRY.names()  # load the built-ins first
    monkeypatch.setattr(_data_registry._REGISTRY, "_entries", dict(_data_registry._REGISTRY._entries))


# -- CIFAR-10 -----------------------------------------------------------------------------------
@pytest.fixture
def write_cifar(monkeypatch):
    """Write ``cifar-10-batches-py`` (4 images per batch) under ``parent``; patch the member MD5s."""

    def write(parent: Path, per_batch: int = 4) -> dict:
        folder = parent / _cifar10.FOLDER
        folder.mkdir(parents=True)
        batches = {name: cifar_batch(per_batch, i) for i, name in enumerate(_cifar10.TRAIN_FILES + _cifar10.TEST_FILES)}
        batches["batches.meta"] = {b"num_cases_per_batch": per_batch, b"num_vis": 3072,
                                   b"label_names": [n.encode() for n in _cifar10.CLASS_NAMES]}
        sums = {}
        for name, content in batches.items():
            blob = pickle.dumps(content, protocol=2)
            (folder / name).write_bytes(blob)
            sums[name] = md5(blob)
        monkeypatch.setattr(_cifar10, "MEMBER_MD5", sums)
        return batches

    return write


# -- Fashion-MNIST ------------------------------------------------------------------------------
@pytest.fixture
def write_fashion():
    """Write the four IDX .gz files (``n_train``/``n_test`` images) into ``folder``."""

    def write(folder: Path, n_train: int = 12, n_test: int = 6) -> dict:
        rng = np.random.default_rng(0)
        arrays = {
            "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
            "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
            "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
            "t10k-labels-idx1-ubyte.gz": np.arange(n_test) % 10,
        }
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in arrays.items():
            (folder / name).write_bytes(gzip.compress(idx_bytes(array)))
        return arrays

    return write


# -- Speech Commands ----------------------------------------------------------------------------
@pytest.fixture
def write_gsc():
    """A Speech Commands folder: 3 keywords + 2 other words, 6 speakers each, clips under 1 s,
    11 s of background noise, and validation/testing lists (speaker 4 -> val, speaker 5 -> test)."""

    def write(folder: Path) -> dict:
        rng = np.random.default_rng(0)
        val, test, clips = [], [], {}
        for w, (word, seconds) in enumerate(GSC_WORDS.items()):
            for speaker in range(6):
                n = int(16000 * seconds) - 37 * speaker
                t = np.arange(n) / 16000
                wave = 0.3 * np.sin(2 * np.pi * (300 + 150 * w + 20 * speaker) * t) + 0.01 * rng.standard_normal(n)
                rel = f"{word}/{speaker:08x}_nohash_0.wav"
                write_wav(folder / rel, wave)
                clips[rel] = wave
                (val if speaker == 4 else test if speaker == 5 else []).append(rel)
        write_wav(folder / "_background_noise_" / "white_noise.wav", 0.5 * rng.standard_normal(16000 * 11))
        (folder / "validation_list.txt").write_text("\n".join(val) + "\n")
        (folder / "testing_list.txt").write_text("\n".join(test) + "\n")
        return clips

    return write


# -- Tiny ImageNet ------------------------------------------------------------------------------
@pytest.fixture
def write_tinyimagenet():
    """``tiny-imagenet-200`` with 2 classes x 3 train images and 2 val images, one grayscale."""
    from PIL import Image

    def write(parent: Path) -> Path:
        folder = parent / "tiny-imagenet-200"
        wnids = ["n01443537", "n01629819"]
        (folder / "val" / "images").mkdir(parents=True)
        (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
        (folder / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n")
        for c, wnid in enumerate(wnids):
            images = folder / "train" / wnid / "images"
            images.mkdir(parents=True)
            for k in range(3):
                color = (200 * c, 50 * k, 100)
                Image.new("RGB", (64, 64), color).save(images / f"{wnid}_{k}.JPEG", quality=95)
        Image.new("L", (64, 64), 77).save(folder / "val" / "images" / "val_0.JPEG", quality=95)  # grayscale
        Image.new("RGB", (64, 64), (10, 200, 30)).save(folder / "val" / "images" / "val_1.JPEG", quality=95)
        (folder / "val" / "val_annotations.txt").write_text(
            f"val_0.JPEG\t{wnids[1]}\t0\t0\t63\t63\nval_1.JPEG\t{wnids[0]}\t0\t0\t63\t63\n")
        return folder

    return write


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()
