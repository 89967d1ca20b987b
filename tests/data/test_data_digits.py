"""scikit-learn's digits: shapes, value range, the fixed test split, the seeded validation split."""
from __future__ import annotations

import numpy as np
import torch

from jointopt.data import get_dataset


def test_digits_loads_as_uint8_images_with_a_fixed_test_split():
    a = get_dataset("digits", seed=0)
    b = get_dataset("digits", seed=1)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10 and a.substitute is None
    assert a.train.x.dtype == torch.uint8 and int(a.train.x.max()) == 255
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert abs(len(a.test) - 0.2 * 1797) < 10
    assert torch.equal(a.test.x, b.test.x)  # the test split does not depend on the seed
    assert not torch.equal(a.val.x, b.val.x)
    assert torch.bincount(a.test.y, minlength=10).min() >= 30
    x, y = next(a.batches("train", 32, shuffle=True, augment=True, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (32, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_digits_splits_partition_the_data_set():
    from sklearn.datasets import load_digits

    ds = get_dataset("digits")
    bunch = load_digits()
    original = torch.from_numpy((bunch.images * (255 / 16)).round()).to(torch.uint8).flatten(1)
    ours = torch.cat([ds.train.x, ds.val.x, ds.test.x]).flatten(1)
    labels = torch.cat([ds.train.y, ds.val.y, ds.test.y])
    key = lambda x, y: sorted(zip(y.tolist(), map(tuple, x.tolist())))
    assert key(ours, labels) == key(original, torch.from_numpy(bunch.target))


def test_the_bundled_csv_is_read_as_scikit_learn_reads_it(monkeypatch):
    """read_digits reads scikit-learn's CSV without importing scikit-learn, and falls back to it."""
    from sklearn.datasets import load_digits

    from jointopt.data import _digits

    assert _digits._bundled_csv() is not None  # the fast path is the one taken here
    images, labels = _digits.read_digits()
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and np.array_equal(labels, bunch.target)
    assert images.dtype == bunch.images.dtype and labels.dtype == bunch.target.dtype
    monkeypatch.setattr(_digits, "_bundled_csv", lambda: None)
    again, again_labels = _digits.read_digits()
    assert np.array_equal(again, images) and np.array_equal(again_labels, labels)
