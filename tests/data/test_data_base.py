"""The in-memory Dataset: splits, normalisation, batches, augmentation, registry."""
from __future__ import annotations

import pytest
import torch

import jointopt
from jointopt.data import (
    Augmentation,
    Dataset,
    Split,
    get_dataset,
    image_folder,
    list_datasets,
    register_dataset,
)
from jointopt.data._base import channel_stats, stratified_split
from jointopt.errors import ConfigError, DataError, UnknownNameError


def make(n_train=40, n_test=10, shape=(2, 5, 6), classes=4, seed=0, **kwargs):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n_train, *shape), generator=g, dtype=torch.uint8)
    y = torch.arange(n_train) % classes
    xt = torch.randint(0, 256, (n_test, *shape), generator=g, dtype=torch.uint8)
    return Dataset.from_tensors("toy", (x, y), (xt, torch.arange(n_test) % classes), **kwargs)


def test_from_tensors_holds_out_a_stratified_validation_split():
    ds = make(val_fraction=0.25)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (30, 10, 10)
    assert torch.bincount(ds.val.y).tolist() == [3, 3, 2, 2]  # 2.5 per class, remainders to the first
    assert ds.input_shape == (2, 5, 6) and ds.num_classes == 4 and ds.class_names == ["0", "1", "2", "3"]


def test_stratified_split_is_disjoint_complete_and_seeded():
    data = Split(torch.arange(50).view(50, 1, 1, 1), torch.arange(50) % 5)
    rest, held = stratified_split(data, 0.2, seed=3)
    ids = torch.cat([rest.x.flatten(), held.x.flatten()]).sort().values
    assert torch.equal(ids, torch.arange(50))
    assert torch.bincount(held.y).tolist() == [2] * 5
    again = stratified_split(data, 0.2, seed=3)[1]
    other = stratified_split(data, 0.2, seed=4)[1]
    assert torch.equal(held.x, again.x) and not torch.equal(held.x, other.x)


def test_normalisation_uses_train_statistics_per_channel():
    ds = make()
    mean, std = channel_stats(ds.train.x)
    flat = ds.train.x.double().transpose(0, 1).reshape(2, -1)
    assert torch.allclose(mean.double(), flat.mean(1), atol=1e-4)
    assert torch.allclose(std.double(), flat.std(1, unbiased=False), atol=1e-4)
    x = torch.cat([b for b, _ in ds.batches("train", 7)])
    assert x.dtype == torch.float32
    assert torch.allclose(x.transpose(0, 1).reshape(2, -1).mean(1), torch.zeros(2), atol=1e-4)
    assert torch.allclose(x.transpose(0, 1).reshape(2, -1).std(1, unbiased=False), torch.ones(2), atol=1e-4)


def test_batches_cover_the_split_once_and_respect_drop_last():
    ds = make()
    ys = torch.cat([y for _, y in ds.batches("train", 7, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert torch.equal(ys.sort().values, ds.train.y.sort().values)
    assert ds.len_batches("train", 7) == len(list(ds.batches("train", 7))) == -(-len(ds.train) // 7)
    sizes = [len(y) for _, y in ds.batches("train", 7, drop_last=True)]
    assert sizes == [7] * (len(ds.train) // 7) == [7] * ds.len_batches("train", 7, drop_last=True)
    assert all(y.dtype == torch.int64 for _, y in ds.batches("val", 4))


def test_shuffle_is_reproducible_with_a_generator():
    ds = make()

    def visit(seed, shuffle=True, augment=True):
        batches = list(ds.batches("train", 8, shuffle=shuffle, augment=augment,
                                  generator=torch.Generator().manual_seed(seed)))
        return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])

    first, second = visit(1), visit(1)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    # a real shuffle: every sample once, in another order than the split's, and another order for another seed
    plain, shuffled, other = visit(1, shuffle=False, augment=False), visit(1, augment=False), visit(2, augment=False)
    assert len(shuffled[0]) == len(plain[0]) == len(ds.train)
    as_rows = lambda x: sorted(map(tuple, x.flatten(1).tolist()))
    assert as_rows(shuffled[0]) == as_rows(plain[0])
    assert not torch.equal(shuffled[0], plain[0]) and not torch.equal(shuffled[0], other[0])


def test_random_shift_is_a_translation_with_fill():
    x = torch.arange(1, 3 * 2 * 6 * 7 + 1, dtype=torch.float32).view(3, 2, 6, 7)
    out = Augmentation(shift_h=2, shift_w=3)(x, torch.Generator().manual_seed(0))
    for i in range(3):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-3, 4):
                shifted = torch.zeros_like(x[i])
                src = x[i][:, max(dy, 0):6 + min(dy, 0), max(dx, 0):7 + min(dx, 0)]
                shifted[:, max(-dy, 0):6 + min(-dy, 0), max(-dx, 0):7 + min(-dx, 0)] = src
                matches.append(torch.equal(out[i], shifted))
        assert sum(matches) == 1


def test_flip_mirrors_about_half_and_per_column_fill():
    x = torch.arange(64 * 1 * 2 * 3, dtype=torch.float32).view(64, 1, 2, 3)
    out = Augmentation(flip=True)(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and 16 < sum(flipped) < 48
    fill = (-1.0, -2.0, -3.0)
    shifted = Augmentation(shift_h=2, fill=fill)(torch.zeros(32, 1, 4, 3), torch.Generator().manual_seed(0))
    rows = shifted[:, 0].reshape(-1, 3)
    assert all(torch.equal(r, torch.zeros(3)) or torch.equal(r, torch.tensor(fill)) for r in rows)
    assert (rows == torch.tensor(fill)).all(1).any()
    with pytest.raises(ConfigError):
        Augmentation(shift_w=1, fill=fill)


def test_augmentation_runs_before_normalisation():
    g = torch.Generator().manual_seed(0)
    raw = torch.randint(1, 256, (40, 2, 5, 6), generator=g, dtype=torch.uint8)  # no black pixel in the data
    ds = Dataset.from_tensors("toy", (raw, torch.arange(40) % 4), (raw[:8], torch.arange(8) % 4),
                              augmentation=Augmentation(shift_h=2, shift_w=3))
    x, _ = next(ds.batches("train", len(ds.train), augment=True, generator=torch.Generator().manual_seed(0)))
    padded = (-ds.mean / ds.std).view(1, -1, 1, 1)  # the normalised value of a black (fill 0) pixel
    black = torch.isclose(x, padded.expand_as(x))
    assert black.any() and not torch.isclose(x, torch.zeros_like(x)).any()  # fill 0 after would stay 0
    # exactly: shift the raw batch with the same draws, then normalise
    expected = ds.augmentation(ds.train.x.float(), torch.Generator().manual_seed(0))
    mean, std = ds.mean.view(1, -1, 1, 1), ds.std.view(1, -1, 1, 1)
    assert torch.allclose(x, (expected - mean) / std, atol=1e-5)
    plain, _ = next(ds.batches("train", len(ds.train), augment=False))
    assert not torch.isclose(plain, padded.expand_as(plain)).any()  # without augmentation: no padding at all


def test_limit_train_keeps_the_first_samples_and_the_normalisation():
    ds = make()
    small = get_dataset(ds, limit_train=5)
    assert len(small.train) == 5 and torch.equal(small.train.x, ds.train.x[:5])
    assert torch.equal(small.mean, ds.mean) and len(small.val) == len(ds.val)


def test_shape_mismatch_and_bad_split_are_errors():
    with pytest.raises(ConfigError, match="shape"):
        Dataset("bad", Split(torch.zeros(2, 1, 3, 3), torch.zeros(2)), Split(torch.zeros(1, 1, 4, 4), torch.zeros(1)),
                Split(torch.zeros(1, 1, 3, 3), torch.zeros(1)), (1, 3, 3), 1, ["a"])
    with pytest.raises(ConfigError, match="split"):
        next(make().batches("dev", 4))


def test_registry_lists_builtins_and_suggests_close_names():
    assert {"digits", "cifar10", "fashion_mnist", "gsc", "synthetic_kws", "tinyimagenet"} <= set(list_datasets())
    assert list_datasets("c*") == ["cifar10"]
    with pytest.raises(UnknownNameError, match="'cifar10'"):
        get_dataset("cifar")
    assert jointopt.get_dataset is get_dataset


def test_register_dataset_passes_only_the_keywords_a_factory_names(tmp_path):
    seen = {}

    @register_dataset("toy_registered", description="a toy")
    def toy(seed=0):
        seen["seed"] = seed
        return make(seed=seed)

    ds = get_dataset("toy_registered", tmp_path, seed=5, limit_train=3)
    assert seen == {"seed": 5} and len(ds.train) == 3
    register_dataset("toy_plain", lambda: make())
    assert get_dataset("toy_plain").name == "toy"
    register_dataset("toy_wrong", lambda: "not a data set")
    with pytest.raises(ConfigError, match="not a jointopt.data.Dataset"):
        get_dataset("toy_wrong")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("toy_plain", lambda: make())


def test_image_folder(tmp_path):
    from PIL import Image

    for split, count in (("train", 4), ("test", 2)):
        for c, cls in enumerate(["cat", "dog"]):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for k in range(count):
                Image.new("RGB", (10, 8), (100 * c, k, 0)).save(folder / f"{k}.png")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    ds = image_folder(tmp_path, val_fraction=0.25)
    assert ds.class_names == ["cat", "dog"] and ds.input_shape == (3, 8, 10)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (6, 2, 4) and ds.train.x.dtype == torch.uint8
    assert int(ds.test.x[ds.test.y == 1][0, 0, 0, 0]) == 100
    gray = image_folder(tmp_path, grayscale=True, size=(4, 4))
    assert gray.input_shape == (1, 4, 4)
    with pytest.raises(DataError, match="test"):
        image_folder(tmp_path / "train")
