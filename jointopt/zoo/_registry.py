"""The model registry: ``register_model``, ``create_model``, ``list_models``, ``model_info``."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, Union

from torch import nn

from ..errors import ConfigError
from ..registry import Registry, accepted_kwargs, is_spec, load_object


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


def model_factory(name: str) -> Callable[..., nn.Module]:
    """The callable :func:`create_model` calls for ``name``, without calling it.

    Args:
        name: a registered name, ``package.module:factory`` or ``path/to/file.py:factory``.

    Raises:
        UnknownNameError: an unknown registered name (the message lists the close matches).
        ConfigError: a spec whose file, module or factory is missing.
    """
    if not isinstance(name, str):
        raise ConfigError(f"a model name must be a string, got {type(name).__name__}")
    if name in _REGISTRY or not is_spec(name):
        return _REGISTRY.get(name).factory  # an unknown plain name raises with the close matches
    return load_object(name, "model", need_callable=True)


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
    factory = model_factory(name)
    unknown = sorted(set(kwargs) - set(accepted_kwargs(factory, kwargs)))
    if unknown:
        params = inspect.signature(factory).parameters
        raise ConfigError(f"model {name!r} has no argument(s) {', '.join(unknown)}; it accepts "
                          f"{', '.join(params) or 'none'}")
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model factory {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model
