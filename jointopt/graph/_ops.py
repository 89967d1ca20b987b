"""How each kind of graph node treats channels (dimension 1 of every tensor)."""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

SEARCHABLE_MODULES = (nn.Conv1d, nn.Conv2d, nn.Linear)

# Elementwise activations: (function/method/module, output >= 0, f(0) == 0)
_ACTIVATIONS = [
    ((nn.ReLU, F.relu, torch.relu, "relu", "relu_"), True, True),
    ((nn.ReLU6, F.relu6), True, True),
    ((nn.Hardswish, F.hardswish), False, True),
    ((nn.SiLU, F.silu), False, True),
    ((nn.GELU, F.gelu), False, True),
    ((nn.LeakyReLU, F.leaky_relu), False, True),
    ((nn.Tanh, torch.tanh, "tanh"), False, True),
    ((nn.Hardtanh, F.hardtanh), False, True),
    ((nn.Sigmoid, torch.sigmoid, F.sigmoid, "sigmoid"), True, False),
    ((nn.Hardsigmoid, F.hardsigmoid), True, False),
]

ACTIVATION = {}
for targets, nonneg, zero_at_zero in _ACTIVATIONS:
    for t in targets:
        ACTIVATION[t] = (nonneg, zero_at_zero)

# Ops that keep every channel separate and map 0 to 0 (pooling, padding, dropout, copies).
PASS_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity,
                nn.Upsample, nn.ZeroPad2d)
PASS_FUNCTIONS = {F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.avg_pool1d, F.avg_pool2d, F.max_pool1d,
                  F.max_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.dropout, F.interpolate, F.pad,
                  torch.nn.functional.dropout2d}
PASS_METHODS = {"contiguous", "clone", "detach", "float", "to", "type_as", "max_pool2d", "dropout"}

ADD_LIKE = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub, "add", "add_", "sub"}
MUL_LIKE = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
# Division keeps a zero numerator zero, but a zero (pruned) denominator channel gives inf or nan:
# the numerator's channels are coupled to the denominator's, and the denominator is never pruned.
DIV_LIKE = {operator.truediv, operator.itruediv, torch.div, torch.true_divide, "div", "div_", "true_divide"}
CAT = {torch.cat, torch.concat}
RESHAPE = {torch.flatten, torch.reshape, "view", "reshape", "flatten", "squeeze", "unsqueeze", torch.squeeze,
           torch.unsqueeze, nn.Flatten}
REDUCE = {torch.mean, "mean", torch.sum, "sum", torch.amax, "amax"}

SUPPORTED_HELP = (
    "supported: Conv1d/Conv2d/Linear modules, BatchNorm after a conv/linear (folded), ReLU/ReLU6/Hardswish/"
    "SiLU/GELU/LeakyReLU/Tanh/Hardtanh/Sigmoid, pooling, dropout, +, -, *, /, torch.cat, flatten/view/reshape, "
    "mean/sum over spatial dims"
)


def describe_target(target) -> str:
    if isinstance(target, str):
        return target
    return getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
