"""The method registry: built-ins by name, third-party methods through entry points or ``register_method``.

Adding a method is one module with a :class:`~jointopt.methods.Method` subclass plus one line in
``BUILTINS`` below (or, from another package, an entry point in the group ``jointopt.methods`` —
``mine = "my_package.my_module:MyMethod"`` — or ``jointopt.methods.register_method(MyMethod)``).
Built-ins are imported on first use only, so listing them costs nothing.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Dict, List, Tuple, Type, Union

from ..registry import Registry
from ._base import Method

ENTRY_POINT_GROUP = "jointopt.methods"

# name → (module:class, one-line summary shown by `jointopt methods` without importing the module); a
# method's knobs are the section methods.<name>, except those of the two λ searches (search, tuner)
BUILTINS: Dict[str, Tuple[str, str]] = {
    "joint": ("jointopt.methods._joint:JointMethod",
              "joint pruning + channel-wise mixed precision: one search, 0 bits = pruned (the default)"),
    "uniform": ("jointopt.methods._uniform:UniformMethod",
                "all weights at one width, swept over methods.uniform.bits; quantization-aware fine-tuning"),
    "layerwise": ("jointopt.methods._layerwise:LayerwiseMethod",
                  "per-layer mixed precision, no pruning (EdMIPS-style differentiable search); λ from the tuner"),
    "sequential": ("jointopt.methods._sequential:SequentialMethod",
                   "pruning-only search (λ_prune), freeze, then channel-wise bit search without 0 bits (λ_bits)"),
    "magnitude": ("jointopt.methods._magnitude:MagnitudeMethod",
                  "L1 filter pruning to a keep ratio (per layer or global) + uniform width; or unstructured"),
    "random": ("jointopt.methods._random:RandomMethod",
               "random structured pruning at the magnitude ratios + uniform width: the floor to beat"),
    "sensitivity": ("jointopt.methods._sensitivity:SensitivityMethod",
                    "per-layer sensitivity on validation, greedy width/pruning allocation to a cost budget, fine-tune"),
    "pai": ("jointopt.methods._pai:PaiMethod",
            "structured pruning at initialization (SNIP/GraSP/SynFlow saliency, Reconvene-style), train once"),
    "iterative": ("jointopt.methods._iterative:IterativeMethod",
                  "gradual channel pruning while training (cubic schedule), uniform width, then fine-tune"),
}


class _Lazy:
    """A registry entry that imports its class on first use."""

    def __init__(self, target: str, summary: str = "", load=None):
        self.target, self.summary, self._load = target, summary, load

    def load(self) -> Type[Method]:
        if self._load is not None:
            return self._load()
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


_REGISTRY: Registry = Registry("method")


def _discover(registry: Registry) -> None:
    for name, (target, summary) in BUILTINS.items():
        registry.register(name, _Lazy(target, summary), overwrite=True)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        registry.register(ep.name, _Lazy(ep.value, "", ep.load), overwrite=True)


_REGISTRY.add_loader(_discover)
_INSTANCES: Dict[str, Method] = {}


def register_method(method: Union[Type[Method], Method], *, overwrite: bool = False) -> Type[Method]:
    """Register a :class:`Method` subclass (or instance) under its ``name``; usable as a class decorator."""
    cls = method if isinstance(method, type) else type(method)
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name; set the class attribute `name`")
    _REGISTRY.load()
    _REGISTRY.register(cls.name, _Lazy(f"{cls.__module__}:{cls.__qualname__}", cls.summary, lambda: cls),
                       overwrite=overwrite)
    _INSTANCES.pop(cls.name, None)
    return method


def get_method(name: Union[str, Method]) -> Method:
    """The method called ``name`` (an instance is returned as it is); unknown names list the close matches."""
    if isinstance(name, Method):
        return name
    if name not in _INSTANCES:
        _INSTANCES[name] = _REGISTRY.get(name).load()()
    return _INSTANCES[name]


def list_methods(pattern: str = "*") -> List[str]:
    """Registered method names, ``joint`` first."""
    names = _REGISTRY.names(pattern)
    return sorted(names, key=lambda n: (n != "joint", list(BUILTINS).index(n) if n in BUILTINS else len(BUILTINS), n))


LAMBDA_SEARCHES = ("joint", "layerwise")


def method_knobs(name: str) -> str:
    """Where method ``name``'s knobs are set, for listings."""
    return "search, tuner" if name in LAMBDA_SEARCHES else f"methods.{name}"


def method_summary(name: str) -> str:
    """One line about method ``name`` (imports a third-party method to read it)."""
    entry = _REGISTRY.get(name)
    return entry.summary or getattr(entry.load(), "summary", "")
