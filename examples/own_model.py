"""A model and a data set jointopt has never seen, searched with the default knobs.

Run it: ``python examples/own_model.py [RUN_DIR]`` (8 trials, a few minutes on 2 cores). The config
names only the model, the data and the epochs; the λ range, the schedules and the quantizers are the
defaults. ``tests/examples/test_own_model.py`` runs it on a smaller budget.
"""
import sys

import torch
from torch import nn

import jointopt
from jointopt.data import Augmentation, Dataset, register_dataset


class SmallNet(nn.Module):
    """Two conv stages, a depthwise-separable block with a residual add, flatten, two linear layers."""

    def __init__(self, num_classes=10, input_shape=(1, 12, 12)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(24, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                   nn.Conv2d(32, 32, 1, bias=False), nn.BatchNorm2d(32))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * (input_shape[1] // 2) * (input_shape[2] // 2), 48),
                                  nn.ReLU(), nn.Linear(48, num_classes))

    def forward(self, x):
        x = self.down(self.stem(x))
        return self.head(torch.relu(x + self.block(x)))


@jointopt.register_model
def small_net(num_classes=10, input_shape=(1, 12, 12)):
    """The network above."""
    return SmallNet(num_classes, input_shape)


@register_dataset("digits12", description="scikit-learn's digits upsampled to 12x12: 1,437 to train and validate, 360 to test")
def digits12(seed=0, val_fraction=0.1):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)
    x = nn.functional.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False)
    x = (x * 255 / 16).round().clamp(0, 255).to(torch.uint8)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    x, y, test = x[order], y[order], 360
    return Dataset.from_tensors("digits12", (x[test:], y[test:]), (x[:test], y[:test]), seed=seed,
                                val_fraction=val_fraction, class_names=[str(i) for i in range(10)],
                                augmentation=Augmentation(shift_h=1, shift_w=1))


CONFIG = {
    "model": {"name": "small_net"},
    "data": {"name": "digits12"},
    "warmup": {"epochs": 10},
    "search": {"epochs": 6},
    "finetune": {"epochs": 4},
}


def main(out="runs/own-model", trials=8):
    config = jointopt.Config.from_dict({**CONFIG, "tuner": {"trials": trials}})
    return jointopt.search(config, out=out)


if __name__ == "__main__":
    summary = main(*sys.argv[1:2])
    print(f"{len(summary['front'])} front points of {len(summary['results'])} trials")
