"""Cost models: the protocol, the registry and plug-in discovery.

A cost model is found by name (built-ins and third-party packages register through the entry-point
group ``jointopt.cost_models``), by ``module:Class``, by ``path/to/file.py:Class``, or by a path
to a measured look-up table (``.csv``/``.json``, handled by the ``lut`` model). An instance is
accepted anywhere a name is.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, List, Union

from ..errors import ConfigError
from ..registry import Registry, is_spec, load_object
from ._base import CostModel, LayerStats, is_depthwise
from ._batch import LayerBatch, LayerTable

__all__ = ["CostModel", "LayerBatch", "LayerStats", "LayerTable", "cost_model_factory", "get_cost_model",
           "is_depthwise", "list_cost_models", "refresh", "register_cost_model"]

ENTRY_POINT_GROUP = "jointopt.cost_models"
_REGISTRY: Registry = Registry("cost model")


def _discover(registry: Registry) -> None:
    found = False
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found = True
        registry.register(ep.name, _LazyEntryPoint(ep), overwrite=True)
    if not found:  # running from a source tree that was never installed: same classes, same names
        builtins = importlib.import_module("jointopt.cost_models")
        for name, target in builtins.BUILTINS.items():
            registry.register(name, _LazyTarget(target), overwrite=True)


class _LazyEntryPoint:
    def __init__(self, ep):
        self.ep = ep

    def __call__(self):
        return self.ep.load()


class _LazyTarget:
    def __init__(self, target: str):
        self.target = target

    def __call__(self):
        return load_object(self.target, "cost model")


_REGISTRY.add_loader(_discover)


def refresh() -> None:
    """Look for installed plug-ins again (after installing one into a running session, or in tests).

    Names found through entry points are forgotten and re-read on the next lookup; names given to
    :func:`register_cost_model` stay.
    """
    importlib.invalidate_caches()
    _REGISTRY.remove_if(lambda _name, entry: isinstance(entry, (_LazyEntryPoint, _LazyTarget)))
    _REGISTRY.add_loader(_discover)


def register_cost_model(name: str, factory, *, overwrite: bool = False):
    """Register a cost-model class (or zero-argument factory) under ``name``; usable as a decorator."""
    _REGISTRY.register(name, lambda: factory, overwrite=overwrite)
    return factory


def list_cost_models(pattern: str = "*") -> List[str]:
    """Registered cost-model names matching the glob ``pattern``."""
    return _REGISTRY.names(pattern)


def cost_model_factory(name: str) -> Any:
    """The class (or zero-argument factory) registered as ``name``, not instantiated.

    Listings read its description from it; a class that needs arguments (``lut`` needs its table)
    can be inspected without them. Importing the plug-in may fail: that error propagates.

    Raises:
        UnknownNameError: no cost model of that name (the message lists the close matches).
    """
    return _REGISTRY.get(name)()


def _instantiate(obj, spec: str) -> CostModel:
    model = obj() if isinstance(obj, type) or callable(obj) and not isinstance(obj, CostModel) else obj
    if not isinstance(model, CostModel) and not hasattr(model, "layer_cost"):
        raise ConfigError(f"cost model {spec!r} is {type(model).__name__}, which has no layer_cost(stats) method")
    return model


def get_cost_model(spec: Union[str, CostModel]) -> CostModel:
    """Resolve a cost model from a name, ``module:Class``, ``file.py:Class`` (a bare ``file.py``
    means ``file.py:CostModel``), a LUT path or an instance."""
    if not isinstance(spec, str):
        return _instantiate(spec, repr(spec))
    if spec not in _REGISTRY and spec.lower().endswith((".csv", ".json")):
        if not Path(spec).is_file():
            raise ConfigError(f"cost model {spec!r}: look-up table file does not exist")
        lut = importlib.import_module("jointopt.cost_models.lut")
        return lut.LutCost.from_file(spec)
    if spec not in _REGISTRY and is_spec(spec):
        return _instantiate(load_object(spec, "cost model", default_attr="CostModel"), spec)
    return _instantiate(cost_model_factory(spec), spec)  # an unknown name raises with the close matches
