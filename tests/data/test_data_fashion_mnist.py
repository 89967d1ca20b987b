"""Fashion-MNIST from IDX .gz files: under the root, from the system copy, and the checks."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from jointopt.data import _fashion_mnist, get_dataset
from jointopt.errors import DataError


@pytest.fixture
def no_system_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(_fashion_mnist, "SYSTEM_DIR", tmp_path / "no-system-copy")


def test_fashion_mnist_reads_idx_gz_from_the_root(tmp_path, write_fashion, no_system_copy):
    arrays = write_fashion(tmp_path / "fashion_mnist", n_train=20, n_test=6)
    ds = get_dataset("fashion_mnist", tmp_path, val_fraction=0.1, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (18, 2, 6)
    assert ds.input_shape == (1, 28, 28) and ds.test.x.dtype == torch.uint8
    assert np.array_equal(ds.test.x[:, 0].numpy(), arrays["t10k-images-idx3-ubyte.gz"])
    assert ds.test.y.tolist() == list(arrays["t10k-labels-idx1-ubyte.gz"])
    assert ds.class_names[9] == "Ankle boot"


def test_fashion_mnist_truncated_idx_is_rejected(tmp_path, write_fashion, no_system_copy):
    write_fashion(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    with pytest.raises(DataError, match="truncated or corrupt"):
        get_dataset("fashion_mnist", tmp_path, download=False)
    path.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot decompress"):
        get_dataset("fashion_mnist", tmp_path, download=False)


def test_fashion_mnist_system_copy_is_checked_by_decompressed_size(tmp_path, write_fashion, monkeypatch):
    system = tmp_path / "system"
    write_fashion(system, n_train=10, n_test=5)
    sizes = {"train_x": 16 + 10 * 784, "train_y": 8 + 10, "test_x": 16 + 5 * 784, "test_y": 8 + 5}
    monkeypatch.setattr(_fashion_mnist, "SYSTEM_DIR", system)
    monkeypatch.setattr(_fashion_mnist, "SYSTEM_SIZES", sizes)
    ds = get_dataset("fashion_mnist", tmp_path / "root", download=False)
    assert len(ds.test) == 5 and str(system) in ds.notes
    monkeypatch.setattr(_fashion_mnist, "SYSTEM_SIZES", {**sizes, "test_x": sizes["test_x"] + 1})
    with pytest.warns(UserWarning, match="ignoring the system copy"), pytest.raises(DataError, match="not found"):
        get_dataset("fashion_mnist", tmp_path / "root", download=False)


@pytest.mark.skipif(not all((_fashion_mnist.SYSTEM_DIR / f.filename).is_file() for f in _fashion_mnist.FILES.values()),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_real_system_copy(tmp_path):
    ds = get_dataset("fashion_mnist", tmp_path, download=False)
    assert (len(ds.train) + len(ds.val), len(ds.test)) == (60000, 10000)
    assert torch.bincount(ds.test.y).tolist() == [1000] * 10
