"""Cost models: the protocol, the registry and plug-in discovery.

A cost model is found by name (built-ins and third-party packages register through the entry-point
group ``jointopt.cost_models``), by ``module:Class``, by ``path/to/file.py:Class``, or by a path
to a measured look-up table (``.csv``/``.json``, handled by the ``lut`` model). An instance is
accepted anywhere a name is.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import List, Union

from ..errors import ConfigError
from ..registry import Registry
from ._base import CostModel, LayerStats
from ._batch import LayerBatch, LayerTable

__all__ = ["CostModel", "LayerBatch", "LayerStats", "LayerTable", "register_cost_model", "get_cost_model", "list_cost_models", "refresh"]

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
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


_REGISTRY.add_loader(_discover)


def refresh() -> None:
    """Look for installed plug-ins again (after installing one into a running session, or in tests).

    Names found through entry points are forgotten and re-read on the next lookup; names given to
    :func:`register_cost_model` stay.
    """
    importlib.invalidate_caches()
    for name, entry in list(_REGISTRY._entries.items()):
        if isinstance(entry, (_LazyEntryPoint, _LazyTarget)):
            del _REGISTRY._entries[name]
    _REGISTRY.add_loader(_discover)


def register_cost_model(name: str, factory, *, overwrite: bool = False):
    """Register a cost-model class (or zero-argument factory) under ``name``; usable as a decorator."""
    _REGISTRY.register(name, lambda: factory, overwrite=overwrite)
    return factory


def list_cost_models(pattern: str = "*") -> List[str]:
    return _REGISTRY.names(pattern)


def _instantiate(obj, spec: str) -> CostModel:
    model = obj() if isinstance(obj, type) or callable(obj) and not isinstance(obj, CostModel) else obj
    if not isinstance(model, CostModel) and not hasattr(model, "layer_cost"):
        raise ConfigError(f"cost model {spec!r} is {type(model).__name__}, which has no layer_cost(stats) method")
    return model


def _load_file(path: Path, attr: str, spec: str):
    module_name = f"_jointopt_user_cost_{abs(hash(str(path.resolve())))}"
    spec_obj = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[module_name] = module
    spec_obj.loader.exec_module(module)
    if not hasattr(module, attr):
        raise ConfigError(f"cost model {spec!r}: {str(path)!r} defines no {attr!r}")
    return getattr(module, attr)


def get_cost_model(spec: Union[str, CostModel]) -> CostModel:
    """Resolve a cost model from a name, ``module:Class``, ``file.py:Class``, a LUT path or an instance."""
    if not isinstance(spec, str):
        return _instantiate(spec, repr(spec))
    if spec in _REGISTRY:
        factory = _REGISTRY.get(spec)()
        return _instantiate(factory, spec)
    path_part, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if path_part.endswith(".py"):
        path = Path(path_part)
        if not path.is_file():
            raise ConfigError(f"cost model {spec!r}: file {path_part!r} does not exist")
        return _instantiate(_load_file(path, attr or "CostModel", spec), spec)
    if spec.lower().endswith((".csv", ".json")):
        if not Path(spec).is_file():
            raise ConfigError(f"cost model {spec!r}: look-up table file does not exist")
        lut = importlib.import_module("jointopt.cost_models.lut")
        return lut.LutCost.from_file(spec)
    if attr and path_part:
        try:
            module = importlib.import_module(path_part)
        except ImportError as exc:
            raise ConfigError(f"cost model {spec!r}: cannot import module {path_part!r} ({exc})") from None
        if not hasattr(module, attr):
            raise ConfigError(f"cost model {spec!r}: module {path_part!r} has no attribute {attr!r}")
        return _instantiate(getattr(module, attr), spec)
    _REGISTRY.get(spec)  # raises UnknownNameError with close matches
    raise AssertionError("unreachable")
