"""Tiny ImageNet from JPEG folders, with a grayscale image and the labelled val split as test."""
from __future__ import annotations

import pytest
import torch

from jointopt.data import get_dataset
from jointopt.errors import DataError


def test_tinyimagenet_reads_jpeg_folders(tmp_path, write_tinyimagenet):
    write_tinyimagenet(tmp_path / "tinyimagenet")
    ds = get_dataset("tinyimagenet", tmp_path, val_fraction=0.34, download=False)
    assert ds.input_shape == (3, 64, 64) and ds.num_classes == 2
    assert ds.class_names == ["goldfish", "European fire salamander"]
    assert (len(ds.train), len(ds.val), len(ds.test)) == (4, 2, 2)
    assert ds.test.x.dtype == torch.uint8 and ds.test.y.tolist() == [1, 0]
    gray = ds.test.x[0].float()
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])  # grey -> RGB
    assert abs(gray.mean().item() - 77) < 2
    assert abs(ds.test.x[1, 1].float().mean().item() - 200) < 3
    assert (tmp_path / "tinyimagenet" / "cache.pt").is_file()


def test_tinyimagenet_unknown_val_class_is_an_error(tmp_path, write_tinyimagenet):
    folder = write_tinyimagenet(tmp_path)
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match="n99999999"):
        get_dataset("tinyimagenet", tmp_path, download=False)
