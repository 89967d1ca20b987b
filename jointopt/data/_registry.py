"""The data-set registry: ``register_dataset``, ``get_dataset``, ``list_datasets``.

Wherever a data-set name is accepted (``get_dataset``, ``data.name`` in a config, ``jointopt data
prepare``), ``path/to/file.py:NAME`` and ``package.module:NAME`` work too, as for models and cost
models: the file or module is imported, and ``NAME`` is its factory function or the name it
registered with ``register_dataset``.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Union

from ..errors import ConfigError
from ..registry import Registry, accepted_kwargs, import_target, is_spec, load_object, split_spec
from ._base import Dataset
from ._cache import resolve_root


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., Dataset]
    description: str
    # where the data set's files are found other than in DATA_DIR/NAME (bundled with a package, a system
    # copy), as `jointopt data list` shows it; None when they are not there
    locate: Optional[Callable[[], Optional[str]]] = None


class _Lazy:
    """A built-in loader imported on first use, so ``import jointopt.data`` stays light."""

    def __init__(self, target: str):
        self.target = target

    def __call__(self, **kwargs) -> Dataset:
        factory = load_object(self.target, "data set", need_callable=True)
        return factory(**accepted_kwargs(factory, kwargs))


_BUILTINS = {
    "digits": ("jointopt.data._digits:load",
               "scikit-learn's 8x8 handwritten digits (1,797 images, bundled; the quickstart data set)",
               "jointopt.data._digits:locate"),
    "cifar10": ("jointopt.data._cifar10:load", "CIFAR-10, 32x32 RGB, 10 classes (python pickles, 163 MB download)"),
    "fashion_mnist": ("jointopt.data._fashion_mnist:load",
                      "Fashion-MNIST, 28x28 grey, 10 classes (IDX; Debian's dataset-fashion-mnist is used if installed)",
                      "jointopt.data._fashion_mnist:locate"),
    "gsc": ("jointopt.data._gsc:load",
            "Google Speech Commands v0.02, 12-class keyword spotting, MFCC 49x10 (2.4 GB download)"),
    "synthetic_kws": ("jointopt.data.synthetic_kws:load",
                      "keywords spoken by espeak-ng in the Speech Commands layout (a stand-in for gsc)"),
    "tinyimagenet": ("jointopt.data._tinyimagenet:load",
                     "Tiny ImageNet 200, 64x64 RGB, 200 classes (JPEG folders, 248 MB download)"),
}

_REGISTRY: Registry[_Entry] = Registry("data set")


def _register_builtins(registry: Registry) -> None:
    for name, (target, description, *locate) in _BUILTINS.items():
        try:
            registry.register(name, _Entry(_Lazy(target), description, _Lazy(locate[0]) if locate else None))
        except ValueError:  # the user registered this name before the first lookup: theirs wins
            pass


_REGISTRY.add_loader(_register_builtins)


def register_dataset(name: str, factory: Optional[Callable[..., Dataset]] = None, *,
                     description: str = "", overwrite: bool = False,
                     locate: Optional[Callable[[], Optional[str]]] = None):
    """Register a data-set factory under ``name``; usable as a decorator.

    The factory returns a :class:`Dataset`. It may accept any of the keywords ``root`` (a
    ``pathlib.Path``), ``val_fraction``, ``seed`` and ``download``; only those it names are passed.
    ``locate``, optional, says where the files are when they are not in ``DATA_DIR/NAME`` (e.g.
    ``"system copy in /srv/data"``), or returns None; ``jointopt data list`` shows it.

    Example::

        @jointopt.register_dataset("blobs")
        def blobs(seed=0, val_fraction=0.1):
            x, y = make_my_tensors()
            return Dataset.from_tensors("blobs", (x, y), (x_test, y_test), seed=seed, val_fraction=val_fraction)
    """
    if factory is None:
        return lambda fn: register_dataset(name, fn, description=description, overwrite=overwrite, locate=locate)
    if not callable(factory):
        raise ConfigError(f"data set {name!r}: the factory must be callable, got {type(factory).__name__}")
    doc = description or (inspect.getdoc(factory) or "").split("\n")[0]
    _REGISTRY.register(name, _Entry(factory, doc, locate), overwrite=overwrite)
    return factory


def list_datasets(pattern: str = "*") -> List[str]:
    """Names of the registered data sets matching a glob ``pattern``."""
    return _REGISTRY.names(pattern)


def describe_dataset(name: str) -> str:
    """The one-line description given at registration."""
    return _REGISTRY.get(name).description


def locate_dataset(name: str) -> Optional[str]:
    """Where the files of ``name`` are other than in ``DATA_DIR/NAME`` (its ``locate``), else None."""
    locate = _REGISTRY.get(name).locate
    if locate is None:
        return None
    try:
        return locate()
    except Exception as exc:  # noqa: BLE001 - a user's hook must not break the listing of the others
        return f"? (locate failed: {type(exc).__name__})"


def get_dataset(name: Union[str, Dataset], root: Union[str, os.PathLike, None] = None, *,
                val_fraction: float = 0.1, seed: int = 0, limit_train: Optional[int] = None,
                download: bool = True) -> Dataset:
    """Load a registered data set into memory (downloading and preprocessing it the first time).

    Args:
        name: a registered name (see :func:`list_datasets`), ``path/to/file.py:NAME`` or
            ``module:NAME`` (NAME: a factory, or a name the file registers), or a :class:`Dataset`,
            returned as is.
        root: the data folder (``--data-dir``); default ``$JOINTOPT_DATA_DIR`` or
            ``~/.cache/jointopt/data``.
        val_fraction: share of the training data held out for validation when the data set has no
            official validation split (stratified by class).
        seed: seed of that hold-out (the test split never depends on it).
        limit_train: keep only the first N training samples (smoke tests, scaling studies).
        download: fetch missing files from their official location; otherwise raise DataError.
    """
    if isinstance(name, Dataset):
        return name.limit_train(limit_train)
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction={val_fraction} must be in (0, 1)")
    entry = _lookup(name)
    offered = {"root": resolve_root(root), "val_fraction": val_fraction, "seed": seed, "download": download}
    dataset = entry.factory(**accepted_kwargs(entry.factory, offered))
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"data set {name!r}: the factory returned {type(dataset).__name__}, not a jointopt.data.Dataset")
    return dataset.limit_train(limit_train)


def _lookup(name: str) -> _Entry:
    if name in _REGISTRY or not is_spec(name):
        return _REGISTRY.get(name)  # an unknown plain name raises with the close matches
    target, attr = split_spec(name, "data set")
    module = import_target(target, "data set", name)
    factory = getattr(module, attr, None)
    if callable(factory) and not isinstance(factory, type):
        return _Entry(factory, (inspect.getdoc(factory) or "").split("\n")[0])
    if attr in _REGISTRY:  # the module registered it under this name
        return _REGISTRY.get(attr)
    raise ConfigError(f"data set {name!r}: {target!r} has no factory function {attr!r} and registers no data set "
                      f"of that name; registered: {', '.join(list_datasets())}")
