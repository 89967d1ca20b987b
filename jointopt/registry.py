"""A small name → factory registry shared by the zoo, the data sets and the cost models."""
from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Dict, Generic, List, TypeVar

from .errors import UnknownNameError

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

    def _load(self) -> None:
        while self._loaders:
            self._loaders.pop(0)(self)

    def register(self, name: str, entry: T, *, overwrite: bool = False) -> T:
        if not overwrite and name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} Available: {', '.join(sorted(self._entries)) or 'none'}"
            ) from None

    def names(self, pattern: str = "*") -> List[str]:
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries
