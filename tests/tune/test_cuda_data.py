"""CUDA as a first-class device, the parts a CPU can check: the resident data set draws the same batches."""
import torch

from jointopt.data import get_dataset
from jointopt.train.cuda import prepare


def test_resident_dataset_gives_the_same_batches():
    data = get_dataset("digits", limit_train=200)
    assert prepare(data, "cpu") is data  # nothing to do off CUDA
    moved = prepare(data, "cpu", resident=True)  # the copy CUDA makes, here to the same device
    assert moved is not data  # a new Dataset whose splits were copied (.to on the same device keeps the tensor)
    assert moved.num_classes == data.num_classes and len(moved.val) == len(data.val)
    draws = []
    for dataset in (data, moved):
        generator = torch.Generator().manual_seed(0)
        draws.append(list(dataset.batches("train", 32, shuffle=True, augment=True, generator=generator, drop_last=True)))
    assert len(draws[0]) == len(draws[1]) == 6
    for (xa, ya), (xb, yb) in zip(*draws):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
