"""jointopt: joint channel pruning and channel-wise mixed-precision search under hardware cost models.

Three steps in Python::

    space = jointopt.SearchSpace(weight_bits=(0, 2, 4, 8), act_bits=(8,))
    searchable = jointopt.convert(model, example_input, space)
    loss = task_loss + lam * searchable.cost("memory") / searchable.reference_cost("memory")
    frozen = searchable.freeze()

Heavy or optional parts (Optuna, ONNX, TensorBoard) are imported only when used.
"""
from __future__ import annotations

import importlib

from .errors import ConfigError, DataError, ExportError, JointoptError, UnknownNameError, UnsupportedOpError
from .space import SearchSpace

__version__ = "0.1.0"

_LAZY = {
    "Config": "jointopt.config",
    "convert": "jointopt.graph",
    "fold_bn": "jointopt.graph",
    "SearchableNetwork": "jointopt.graph",
    "CostModel": "jointopt.cost",
    "LayerBatch": "jointopt.cost",
    "LayerStats": "jointopt.cost",
    "get_cost_model": "jointopt.cost",
    "register_cost_model": "jointopt.cost",
    "list_cost_models": "jointopt.cost",
    "create_model": "jointopt.zoo",
    "register_model": "jointopt.zoo",
    "list_models": "jointopt.zoo",
    "get_dataset": "jointopt.data",
    "register_dataset": "jointopt.data",
    "list_datasets": "jointopt.data",
    "search": "jointopt.tune",
    "load": "jointopt.export",
}

__all__ = sorted(
    ["SearchSpace", "JointoptError", "ConfigError", "DataError", "ExportError", "UnknownNameError",
     "UnsupportedOpError", "__version__", *_LAZY]
)


def _map_source_tree_cost_models() -> None:
    """Make the built-in cost models importable as ``jointopt.cost_models`` from a source checkout.

    They live in ``cost_models/`` at the repository root; an install maps that folder to
    ``jointopt.cost_models`` (``package-dir`` in ``pyproject.toml``). A checkout used without
    installing it (or with an installation made before that mapping) gets the same mapping here.
    """
    import importlib.util
    import sys
    from pathlib import Path

    if "jointopt.cost_models" in sys.modules or importlib.util.find_spec("jointopt.cost_models") is not None:
        return
    folder = Path(__file__).resolve().parent.parent / "cost_models"
    if not (folder / "__init__.py").is_file():
        return
    spec = importlib.util.spec_from_file_location("jointopt.cost_models", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["jointopt.cost_models"] = module
    spec.loader.exec_module(module)


_map_source_tree_cost_models()


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in ("graph", "nn", "quant", "cost", "train", "tune", "export", "report", "data", "zoo", "testing"):
        return importlib.import_module(f"jointopt.{name}")
    raise AttributeError(f"module 'jointopt' has no attribute {name!r}")


def __dir__():
    return __all__
