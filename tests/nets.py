"""Small networks with the topologies convert must handle (shared by the tests)."""
import torch
import torch.nn.functional as F
from torch import nn


def cbr(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Chain(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(cbr(3, 8), cbr(8, 12, stride=2), cbr(12, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.body(x)), 1))


class Residual(nn.Module):
    """Identity shortcut and a 1x1 projection shortcut."""

    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 8)
        self.a1, self.a2 = cbr(8, 8), nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.BatchNorm2d(8))
        self.b1, self.b2 = cbr(8, 16, stride=2), nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1), nn.BatchNorm2d(16))
        self.short = nn.Sequential(nn.Conv2d(8, 16, 1, 2), nn.BatchNorm2d(16))
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(x + self.a2(self.a1(x)))
        x = F.relu(self.short(x) + self.b2(self.b1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 8)
        self.dw = cbr(8, 8, groups=8)
        self.pw = cbr(8, 16, k=1)
        self.dw2 = nn.Sequential(nn.Conv2d(16, 16, 3, 2, 1, groups=16), nn.BatchNorm2d(16), nn.ReLU6())
        self.pw2 = cbr(16, 12, k=1)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        x = self.pw2(self.dw2(self.pw(self.dw(self.stem(x)))))
        return self.fc(x.mean((2, 3)))


class Concat(nn.Module):
    """Two branches of unequal widths concatenated, then a consumer."""

    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 6)
        self.left = cbr(6, 5)
        self.right = nn.Sequential(nn.Conv2d(6, 9, 1), nn.Hardswish())
        self.mix = nn.Conv2d(14, 10, 3, padding=1)
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        x = self.stem(x)
        x = torch.cat([self.left(x), self.right(x)], dim=1)
        x = F.silu(self.mix(x))
        return self.fc(F.avg_pool2d(x, x.shape[-1]).flatten(1))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 8)
        self.grouped = cbr(8, 12, groups=4)
        self.after = cbr(12, 10)
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.after(self.grouped(self.stem(x))), 1), 1))


class FlattenLinear(nn.Module):
    """conv → flatten (channel × spatial) → linear, with a sigmoid-gated branch."""

    def __init__(self):
        super().__init__()
        self.c1 = cbr(3, 6, stride=2)
        self.c2 = cbr(6, 7, stride=2)
        self.fc1 = nn.Linear(7 * 2 * 2, 9)
        self.fc2 = nn.Linear(9, 3)

    def forward(self, x):
        x = self.c2(self.c1(x))
        x = x.view(x.size(0), -1)
        return self.fc2(torch.sigmoid(self.fc1(x)))


class Temporal(nn.Module):
    """Conv1d over time with a residual add and ReLU6."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv1d(4, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU6())
        self.c2 = nn.Sequential(nn.Conv1d(8, 8, 3, padding=1), nn.BatchNorm1d(8))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        y = self.c1(x)
        y = F.relu(y + self.c2(y))
        return self.fc(y.mean(2))


TOPOLOGIES = {
    "chain": (Chain, (2, 3, 8, 8)),
    "residual": (Residual, (2, 3, 8, 8)),
    "depthwise": (Depthwise, (2, 3, 8, 8)),
    "concat": (Concat, (2, 3, 8, 8)),
    "grouped": (Grouped, (2, 3, 8, 8)),
    "flatten_linear": (FlattenLinear, (2, 3, 8, 8)),
    "temporal": (Temporal, (2, 4, 16)),
}


def randomize_bn(model, seed=0):
    """Give every BatchNorm non-trivial running statistics so folding is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model
