"""A small name → factory registry shared by the zoo, the data sets and the cost models, and the
two things every such registry needs besides names: loading a ``module:NAME`` or
``path/to/file.py:NAME`` spec (:func:`load_object`), and calling a factory with only the keywords
it takes (:func:`accepted_kwargs`).
"""
from __future__ import annotations

import difflib
import fnmatch
import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, Tuple, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; unknown names raise an error listing the close matches.

    Args:
        kind: what the entries are, used in messages ("model", "data set", "cost model").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, T] = {}
        self._loaders: List[Callable[["Registry[T]"], None]] = []

    def add_loader(self, loader: Callable[["Registry[T]"], None]) -> None:
        """Defer filling the registry (e.g. entry-point discovery) until the first lookup."""
        self._loaders.append(loader)

    def load(self) -> None:
        """Run the deferred loaders now (lookups do this themselves)."""
        while self._loaders:
            self._loaders.pop(0)(self)


    def remove_if(self, predicate: Callable[[str, T], bool]) -> List[str]:
        """Forget the entries for which ``predicate(name, entry)`` holds, without running the
        loaders; returns their names (e.g. to re-discover plug-ins: remove, then :meth:`add_loader`)."""
        names = [name for name, entry in self._entries.items() if predicate(name, entry)]
        for name in names:
            del self._entries[name]
        return names

    def register(self, name: str, entry: T, *, overwrite: bool = False) -> T:
        if not overwrite and name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} Available: {', '.join(sorted(self._entries)) or 'none'}"
            ) from None

    def names(self, pattern: str = "*") -> List[str]:
        self.load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        self.load()
        return name in self._entries


# -- specs: module:NAME and path/to/file.py:NAME ---------------------------------------------------
def is_spec(text: str) -> bool:
    """Whether ``text`` names something to import (``module:NAME``, ``file.py:NAME``, ``file.py``)
    rather than a registered name."""
    return ":" in text or text.endswith(".py")


def split_spec(spec: str, what: str, default_attr: Optional[str] = None) -> Tuple[str, str]:
    """``"pkg.mod:NAME"`` → ``("pkg.mod", "NAME")``; ``"dir/file.py:NAME"`` → ``("dir/file.py", "NAME")``.

    A bare ``file.py`` (a Windows drive letter is no separator) gets ``default_attr`` when given.
    Raises ConfigError, naming ``what`` ("model", "data set", "cost model"), for anything else.
    """
    target, _, attr = spec.rpartition(":")
    if spec.endswith(".py") and default_attr:
        target, attr = spec, default_attr
    if not target or not attr or attr.endswith(".py") or "/" in attr or "\\" in attr:
        example = f"path/to/file.py:{default_attr or 'NAME'} or package.module:{default_attr or 'NAME'}"
        raise ConfigError(f"{what} {spec!r}: write {example}")
    return target, attr


def import_target(target: str, what: str, spec: str) -> ModuleType:
    """Import a module by name, or a ``.py`` file by path, once per process.

    A file is imported under a private module name derived from its resolved path, so the same file
    named twice (or as a model and as a data set) runs once and registers its entries once.

    Raises:
        ConfigError: the file does not exist, or the module cannot be imported; the message
            starts with ``what`` and ``spec`` and says how to fix it.
    """
    if not target.endswith(".py"):
        try:
            return importlib.import_module(target)
        except ImportError as exc:
            missing = getattr(exc, "name", None)
            itself = missing is not None and (target == missing or target.startswith(missing + "."))
            hint = "; run from the folder that holds it, or give path/to/file.py:NAME" if itself else ""
            raise ConfigError(f"{what} {spec!r}: cannot import module {target!r} ({exc}){hint}") from None
    path = Path(target).expanduser()
    if not path.is_file():
        raise ConfigError(f"{what} {spec!r}: file {target!r} does not exist")
    resolved = str(path.resolve())
    module_name = f"_jointopt_user_{path.stem if path.stem.isidentifier() else 'file'}_" \
                  f"{hashlib.sha1(resolved.encode()).hexdigest()[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:  # the user's code failed: its own error says why; a retry runs it again
        del sys.modules[module_name]
        raise
    return module


def load_object(spec: str, what: str, *, default_attr: Optional[str] = None, need_callable: bool = False) -> Any:
    """The object a ``module:NAME`` or ``path/to/file.py:NAME`` spec names.

    Args:
        spec: the spec as the user wrote it (quoted in errors).
        what: what the object is for ("model", "data set", "cost model"), the start of every message.
        default_attr: the NAME a bare ``file.py`` stands for (cost models: ``CostModel``).
        need_callable: the object must be callable (a factory).

    Raises:
        ConfigError: a malformed spec, a missing file, a module that does not import, or a
            missing (or, with ``need_callable``, uncallable) attribute.
    """
    target, attr = split_spec(spec, what, default_attr)
    module = import_target(target, what, spec)
    where = f"file {target!r}" if target.endswith(".py") else f"module {target!r}"
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_") and
                        (callable(getattr(module, n)) or not need_callable))
        close = difflib.get_close_matches(attr, public, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        kind = "callable" if need_callable else "attribute"
        raise ConfigError(f"{what} {spec!r}: {where} has no {kind} {attr!r}{hint}")
    obj = getattr(module, attr)
    if need_callable and not callable(obj):
        raise ConfigError(f"{what} {spec!r}: {where} has no callable {attr!r} (it is a {type(obj).__name__})")
    return obj


# -- factories ------------------------------------------------------------------------------------
def accepted_kwargs(factory: Callable, offered: Mapping[str, Any], *, named_only: bool = False) -> Dict[str, Any]:
    """The entries of ``offered`` that ``factory`` can be called with.

    A factory that takes ``**kwargs`` accepts them all, and so does one whose signature cannot be
    read (a builtin), unless ``named_only``: then only keywords the signature names explicitly are
    kept (for optional extras such as ``input_shape`` that a pass-through ``**kwargs`` may not expect).

    Example::

        def build(num_classes=10): ...
        accepted_kwargs(build, {"num_classes": 3, "seed": 0})  # {"num_classes": 3}
    """
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {} if named_only else dict(offered)
    if not named_only and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(offered)
    named = {n for n, p in params.items() if p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                             inspect.Parameter.VAR_KEYWORD,
                                                             inspect.Parameter.POSITIONAL_ONLY)}
    return {k: v for k, v in offered.items() if k in named}
