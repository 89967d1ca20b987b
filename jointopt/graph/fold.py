"""Fold every BatchNorm that directly follows a Conv/Linear into it (running statistics)."""
from __future__ import annotations

import copy

import torch
from torch import fx, nn

from ..errors import UnsupportedOpError
from ._ops import SEARCHABLE_MODULES


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx.symbolic_trace`` with an error that says what to do when tracing fails."""
    if isinstance(model, fx.GraphModule):
        return model
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many kinds (TraceError, TypeError, ...)
        raise UnsupportedOpError(
            f"cannot trace {type(model).__name__} with torch.fx ({type(exc).__name__}: {exc}). "
            "Data-dependent Python control flow is not traceable: move it out of forward() or mark the "
            "sub-module as a leaf and exclude it."
        ) from exc


def _fold_into(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    with torch.no_grad():
        std = torch.sqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.affine else torch.ones_like(std)
        beta = bn.bias if bn.affine else torch.zeros_like(std)
        factor = gamma / std
        layer.weight.mul_(factor.reshape((-1,) + (1,) * (layer.weight.dim() - 1)))
        bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * factor + beta
        layer.bias = nn.Parameter(new_bias.to(layer.weight.dtype))


def fold_bn(model: nn.Module, inplace: bool = False) -> fx.GraphModule:
    """Return a traced copy of ``model`` with each Conv/Linear → BatchNorm pair fused.

    A BatchNorm is folded only when it is the sole user of a Conv/Linear output; the result in
    eval mode computes what ``model.eval()`` computed. Other BatchNorms stay (and ``convert``
    keeps their channels unpruned).
    """
    gm = trace(model if inplace else copy.deepcopy(model))
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.modules.batchnorm._BatchNorm):
            continue
        src = node.args[0]
        if not (isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1):
            continue
        layer = modules.get(src.target)
        bn = modules[node.target]
        if not isinstance(layer, SEARCHABLE_MODULES) or bn.running_mean is None:
            continue
        _fold_into(layer, bn)
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        gm.delete_submodule(node.target)
    gm.graph.lint()
    gm.recompile()
    return gm
