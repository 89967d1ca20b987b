"""The op vocabulary of the torch-format manifest: the only things a manifest can name.

A manifest refers to functions, tensor methods and module classes by plain names. Loading
resolves every name through the tables below and nothing else — no import by name, no
``getattr`` on modules chosen by the file — so a manifest naming ``os.system`` or
``builtins.eval`` is rejected, not run.
"""
from __future__ import annotations

import builtins
import operator
from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.frozen import FrozenLayer

_TORCH = ["cat", "concat", "flatten", "reshape", "relu", "sigmoid", "tanh", "mean", "sum", "amax", "add", "sub",
          "mul", "div", "squeeze", "unsqueeze", "permute", "transpose", "clamp", "clip", "max", "min", "neg",
          "softmax", "log_softmax", "matmul", "chunk", "split", "stack", "abs", "exp", "sqrt"]
_FUNCTIONAL = ["relu", "relu6", "hardswish", "silu", "gelu", "leaky_relu", "hardtanh", "sigmoid", "hardsigmoid",
               "tanh", "elu", "softmax", "log_softmax", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
               "adaptive_max_pool1d", "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "max_pool1d", "max_pool2d",
               "dropout", "dropout1d", "dropout2d", "interpolate", "pad", "batch_norm", "linear", "conv1d", "conv2d"]
_OPERATOR = ["add", "sub", "mul", "truediv", "floordiv", "neg", "getitem", "iadd", "isub", "imul", "matmul"]

FUNCTIONS: Dict[str, Callable] = {}
for _name in _TORCH:
    FUNCTIONS[f"torch.{_name}"] = getattr(torch, _name)
for _name in _FUNCTIONAL:
    FUNCTIONS[f"torch.nn.functional.{_name}"] = getattr(F, _name)
for _name in _OPERATOR:
    FUNCTIONS[f"operator.{_name}"] = getattr(operator, _name)
FUNCTIONS["builtins.getattr"] = builtins.getattr

# builtins.getattr may only read these attributes (of a tensor): nothing that leads to code
GETATTR_NAMES = frozenset({"shape", "dtype", "ndim", "device", "T"})

METHODS = frozenset({
    "view", "reshape", "flatten", "size", "dim", "mean", "sum", "amax", "max", "min", "contiguous", "clone",
    "detach", "float", "to", "type_as", "relu", "relu_", "sigmoid", "tanh", "add", "add_", "sub", "sub_", "mul",
    "mul_", "div", "div_", "squeeze", "unsqueeze", "permute", "transpose", "chunk", "split", "expand", "expand_as",
    "view_as", "reshape_as", "clamp", "clamp_", "neg", "abs", "softmax", "log_softmax", "matmul", "max_pool2d",
    "dropout", "t",
})

_MODULE_CLASSES = [
    nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.Tanh, nn.Hardtanh, nn.Sigmoid,
    nn.Hardsigmoid, nn.ELU, nn.Softmax, nn.LogSoftmax, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.Dropout,
    nn.Dropout1d, nn.Dropout2d, nn.Identity, nn.Flatten, nn.Upsample, nn.ZeroPad2d, nn.ConstantPad1d,
    nn.ConstantPad2d, nn.BatchNorm1d, nn.BatchNorm2d,
]
MODULES: Dict[str, type] = {cls.__name__: cls for cls in _MODULE_CLASSES}
MODULES["FrozenLayer"] = FrozenLayer

_FUNCTION_NAMES = {id(fn): name for name, fn in reversed(list(FUNCTIONS.items()))}


def function_name(fn) -> str:
    """The vocabulary name of ``fn``, or None when it is not in the vocabulary."""
    return _FUNCTION_NAMES.get(id(fn))


def describe() -> str:
    """A short list of what the vocabulary accepts (for error messages)."""
    return (f"functions: {', '.join(sorted(FUNCTIONS))}; tensor methods: {', '.join(sorted(METHODS))}; "
            f"modules: {', '.join(sorted(MODULES))}")
