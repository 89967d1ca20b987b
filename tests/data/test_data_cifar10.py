"""CIFAR-10 from Python-2-style pickles with bytes keys."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jointopt.data import _cifar10, get_dataset
from jointopt.errors import DataError


def test_cifar10_reads_pickles_with_bytes_keys_in_channel_plane_order(tmp_path, write_cifar):
    batches = write_cifar(tmp_path / "cifar10")
    ds = get_dataset("cifar10", tmp_path, val_fraction=0.25, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (15, 5, 4)
    assert ds.input_shape == (3, 32, 32) and ds.train.x.dtype == torch.uint8
    assert ds.class_names == _cifar10.CLASS_NAMES
    test = batches["test_batch"]
    assert ds.test.y.tolist() == test[b"labels"]
    first = test[b"data"][0]
    # 1024 red values, then green, then blue, each row-major 32x32
    assert np.array_equal(ds.test.x[0, 0].numpy(), first[:1024].reshape(32, 32))
    assert np.array_equal(ds.test.x[0, 2].numpy(), first[2048:].reshape(32, 32))
    all_train = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    ours = torch.cat([ds.train.x, ds.val.x]).flatten(1).numpy()
    assert sorted(map(bytes, ours)) == sorted(map(bytes, all_train))


def test_cifar10_cache_is_written_and_reused(tmp_path, write_cifar):
    write_cifar(tmp_path)  # files directly under the root also count
    first = get_dataset("cifar10", tmp_path, download=False)
    cache = tmp_path / "cifar10" / "cache.pt"
    assert cache.is_file()
    (tmp_path / _cifar10.FOLDER / "data_batch_1").unlink()  # the cache no longer needs the files
    again = get_dataset("cifar10", tmp_path, download=False)
    assert torch.equal(first.test.x, again.test.x) and torch.equal(first.train.y, again.train.y)


def test_cifar10_corrupt_member_and_missing_files_are_clear_errors(tmp_path, write_cifar):
    write_cifar(tmp_path / "cifar10")
    member = tmp_path / "cifar10" / _cifar10.FOLDER / "data_batch_3"
    member.write_bytes(member.read_bytes()[:-10])
    with pytest.raises(DataError, match="data_batch_3.*corrupt"):
        get_dataset("cifar10", tmp_path, download=False)
    assert not (tmp_path / "cifar10" / "cache.pt").exists()
    with pytest.raises(DataError, match="without --no-download"):
        get_dataset("cifar10", tmp_path / "empty", download=False)
