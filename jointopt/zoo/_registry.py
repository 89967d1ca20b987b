"""The model registry: ``register_model``, ``create_model``, ``list_models``, ``model_info``."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple, Union

from torch import nn

from ..errors import ConfigError
from ..registry import Registry


@dataclass(frozen=True)
class ModelInfo:
    """What a zoo entry builds by default.

    Attributes:
        name: the registry name.
        input_shape: (C, H, W) of one input sample for the default arguments.
        num_classes: default number of outputs.
        dataset: the registered data set the defaults fit (None if none does).
        description: one line.
        factory: the callable ``create_model`` calls.
    """

    name: str
    input_shape: Optional[Tuple[int, ...]]
    num_classes: Optional[int]
    dataset: Optional[str]
    description: str
    factory: Callable[..., nn.Module]


_REGISTRY: Registry[ModelInfo] = Registry("model")


def register_model(fn: Union[Callable[..., nn.Module], str, None] = None, factory: Optional[Callable[..., nn.Module]] = None,
                   *, name: Optional[str] = None, input_shape: Optional[Tuple[int, ...]] = None,
                   num_classes: Optional[int] = None, dataset: Optional[str] = None, description: str = "",
                   overwrite: bool = False):
    """Register a model factory; usable as ``@register_model``, ``@register_model(name=...)`` or
    ``register_model("name", factory)``.

    ``input_shape`` and ``num_classes`` default to the factory's keyword defaults of the same name.

    Example::

        @jointopt.register_model
        def tiny_mlp(num_classes=10, input_shape=(1, 8, 8)):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
    """
    options = dict(input_shape=input_shape, num_classes=num_classes, dataset=dataset, description=description,
                   overwrite=overwrite)
    if isinstance(fn, str):  # register_model("name", factory) or @register_model("name")
        if factory is None:
            return lambda f: register_model(f, name=fn, **options)
        return register_model(factory, name=fn, **options)
    if fn is None:
        return lambda f: register_model(f, name=name, **options)
    if not callable(fn):
        raise ConfigError(f"register_model needs a callable that returns an nn.Module, got {type(fn).__name__}")
    key = name or fn.__name__
    defaults = _defaults(fn)
    shape = input_shape if input_shape is not None else defaults.get("input_shape")
    info = ModelInfo(
        name=key,
        input_shape=tuple(int(s) for s in shape) if shape is not None else None,
        num_classes=num_classes if num_classes is not None else defaults.get("num_classes"),
        dataset=dataset,
        description=description or (inspect.getdoc(fn) or "").split("\n")[0],
        factory=fn,
    )
    _REGISTRY.register(key, info, overwrite=overwrite)
    return fn


def _defaults(fn: Callable) -> dict:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def list_models(pattern: str = "*") -> List[str]:
    """Registered model names matching the glob ``pattern`` (e.g. ``"resnet*"``)."""
    return _REGISTRY.names(pattern)


def model_info(name: str) -> ModelInfo:
    """Default input shape, number of classes and intended data set of a registered model."""
    return _REGISTRY.get(name)


def create_model(name: Union[str, nn.Module], **kwargs: Any) -> nn.Module:
    """Build a model.

    Args:
        name: a registered name (:func:`list_models`), ``package.module:factory``,
            ``path/to/file.py:factory``, or an ``nn.Module`` (returned as is).
        kwargs: passed to the factory (e.g. ``num_classes=10, input_shape=(1, 28, 28)``).
    """
    if isinstance(name, nn.Module):
        if kwargs:
            raise ConfigError(f"create_model got a model instance and arguments {sorted(kwargs)}; pass one or the other")
        return name
    if not isinstance(name, str):
        raise ConfigError(f"create_model expects a name or an nn.Module, got {type(name).__name__}")
    if name in _REGISTRY:
        factory, label = _REGISTRY.get(name).factory, name
    elif ":" in name:
        factory, label = _import_factory(name), name
    else:
        _REGISTRY.get(name)  # raises UnknownNameError with the close matches
        raise AssertionError("unreachable")
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = None
    if params is not None and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ConfigError(f"model {label!r} has no argument(s) {', '.join(unknown)}; it accepts "
                              f"{', '.join(params) or 'none'}")
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model factory {label!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _import_factory(spec: str) -> Callable[..., nn.Module]:
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ConfigError(f"model {spec!r}: write module:factory, e.g. mypackage.models:build_net")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"model {spec!r}: file {target!r} does not exist")
        module_name = f"_jointopt_user_model_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ConfigError(f"model {spec!r}: cannot import module {target!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ConfigError(f"model {spec!r}: module {target!r} has no callable {attr!r}")
    return factory
