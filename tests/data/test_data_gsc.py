"""Speech Commands loader on a tiny corpus in the real layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jointopt.data import _gsc, _mfcc, get_dataset
from jointopt.data._audio import read_wav
from jointopt.errors import DataError

SPLIT_SIZES = {"train": (12, 2, 2), "val": (3, 1, 1), "test": (3, 1, 1)}  # keywords, unknown, silence


@pytest.fixture
def gsc_root(tmp_path, write_gsc):
    clips = write_gsc(tmp_path / "gsc" / _gsc.FOLDER)
    return tmp_path, clips


def test_gsc_splits_classes_and_shapes(gsc_root):
    root, _ = gsc_root
    ds = get_dataset("gsc", root, download=False)
    assert ds.input_shape == (1, 49, 10) and ds.num_classes == 12 and ds.substitute is None
    assert ds.class_names[:3] == ["down", "go", "left"] and ds.class_names[-2:] == ["_silence_", "_unknown_"]
    for split, (known, unknown, silence) in SPLIT_SIZES.items():
        data = ds.split(split)
        assert data.x.dtype == torch.float16 and data.x.shape[1:] == (1, 49, 10)
        counts = torch.bincount(data.y, minlength=12)
        assert int(counts[_gsc.UNKNOWN]) == unknown and int(counts[_gsc.SILENCE]) == silence
        assert int(counts[: _gsc.SILENCE].sum()) == known
        for word in ("yes", "no", "up"):
            assert int(counts[_gsc.KEYWORDS.index(word)]) == known // 3
    assert (root / "gsc" / "cache.pt").is_file()


def test_gsc_test_clips_are_the_clean_front_end_of_the_padded_wav(gsc_root):
    root, clips = gsc_root
    ds = get_dataset("gsc", root, download=False)
    rel = "yes/00000005_nohash_0.wav"  # speaker 5 is listed in testing_list.txt
    expected = _mfcc.mfcc(_mfcc.fit_length(read_wav(root / "gsc" / _gsc.FOLDER / rel)))[0]
    index = (ds.test.y == _gsc.KEYWORDS.index("yes")).nonzero()[0, 0]
    assert np.allclose(ds.test.x[index, 0].float().numpy(), expected, atol=0.05)  # float16 storage
    assert len(clips[rel]) < 16000


def test_gsc_training_clips_get_background_noise_at_cache_time(gsc_root):
    root, _ = gsc_root
    ds = get_dataset("gsc", root, download=False)
    folder = root / "gsc" / _gsc.FOLDER
    clean = {w: _mfcc.mfcc(_mfcc.fit_length(read_wav(folder / f"{w}/{s:08x}_nohash_0.wav")))[0]
             for w in ("yes", "no", "up") for s in range(4)}
    keyword = ds.train.y < _gsc.SILENCE
    noisy = 0
    for x in ds.train.x[keyword]:
        nearest = min(np.abs(x[0].float().numpy() - c).max() for c in clean.values())
        noisy += nearest > 0.1
    assert noisy >= 4  # 80 % of 12 clips are mixed with noise (at volume > 0 with probability 1)


def test_gsc_time_shift_fills_with_silence_frames(gsc_root):
    root, _ = gsc_root
    ds = get_dataset("gsc", root, download=False)
    assert ds.augmentation.shift_h == 5 and ds.augmentation.shift_w == 0
    raw = ds.test.x[:4].float()
    shifted = ds.augmentation(raw, torch.Generator().manual_seed(0))
    silence = torch.tensor(_mfcc.silence_frame())
    for a, b in zip(raw, shifted):
        ok = False
        for s in range(-5, 6):
            moved = torch.roll(a[0], s, 0)
            if s > 0:
                moved[:s] = silence
            elif s < 0:
                moved[s:] = silence
            ok |= torch.allclose(moved, b[0], atol=1e-3)
        assert ok


def test_gsc_missing_lists_and_missing_data_are_clear_errors(tmp_path, write_gsc):
    with pytest.raises(DataError, match="prepare gsc"):
        get_dataset("gsc", tmp_path, download=False)
    folder = tmp_path / "gsc" / _gsc.FOLDER
    write_gsc(folder)
    (folder / "testing_list.txt").unlink()
    with pytest.raises(DataError, match="testing_list.txt"):
        get_dataset("gsc", tmp_path, download=False)
