"""Typed fields of config dataclasses: checking values against annotations, reading them from text.

One set of rules serves the three ways a value arrives: a keyword of a config's constructor, a key
of a YAML mapping (:func:`build`), and the text of ``--set KEY=VALUE`` (:func:`parse_text`). Each
error is a :class:`ConfigError` that names the key, quotes the value and says what is allowed, e.g.
``search.epochs='abc' must be an integer``.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import math
import os
import types
import typing
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from .errors import ConfigError

NULLS = ("null", "none", "~", "")
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_NAMES = {"Any": Any, "Dict": Dict, "List": List, "Optional": Optional, "Tuple": Tuple, "Union": Union,
          "int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict, "tuple": tuple}


@functools.lru_cache(maxsize=None)
def hints(cls) -> Dict[str, Any]:
    """The annotation of every field of dataclass ``cls``, resolved (strings included); Any if unreadable."""
    try:
        resolved = typing.get_type_hints(cls)
    except Exception:  # a class made by exec() or with names its module lacks: read the strings alone
        resolved = {}
    out = {}
    for f in dataclasses.fields(cls):
        kind = resolved.get(f.name, f.type)
        if isinstance(kind, str):
            try:
                kind = eval(kind, dict(_NAMES))  # what get_type_hints does, with typing's names only
            except Exception:
                kind = Any
        out[f.name] = kind
    return out


def _optional(kind) -> Tuple[bool, Any]:
    """(whether None is allowed, the type without None)."""
    if typing.get_origin(kind) in (Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) < len(typing.get_args(kind)):
            return True, args[0] if len(args) == 1 else Union[tuple(args)]
    return False, kind


def describe(kind) -> str:
    """What a value of annotation ``kind`` must be, in words: ``an integer or null``."""
    optional, kind = _optional(kind)
    origin, args = typing.get_origin(kind) or kind, typing.get_args(kind)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}
    if origin in (list, tuple):
        item = describe(args[0]) if args and args[0] is not Any else ""
        text = "a list" + (f" of {item.split(' ', 1)[1]}s" if item.startswith(("a ", "an ")) else "")
    else:
        text = words.get(origin, getattr(kind, "__name__", str(kind)))
    return text + " or null" if optional else text


def coerce(value: Any, kind, key: str) -> Any:
    """``value`` checked against annotation ``kind`` and normalised (1 → 1.0 for a float, 3.0 → 3 for an
    int, "1e-3" → 0.001 as YAML 1.1 reads it, a tuple → a list, containers copied)."""
    declared = kind
    optional, kind = _optional(kind)
    if value is None:
        if optional or kind is Any:
            return None
        raise ConfigError(f"{key}=None must be {describe(kind)}")
    origin, args = typing.get_origin(kind) or kind, typing.get_args(kind)

    def bad() -> ConfigError:
        return ConfigError(f"{key}={value!r} must be {describe(declared)}")

    if kind is Any:
        return value
    if origin is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if origin in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad()
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            raise bad() from None
        if not math.isfinite(number):
            raise ConfigError(f"{key}={value!r} must be a finite number")
        if origin is float:
            return float(number)
        if number != int(number):
            raise bad()
        return int(number)
    if origin is str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise bad()
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad()
        item = args[0] if args else Any
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad()
        return copy.deepcopy(dict(value))
    return value


def parse_text(raw: str, kind, key: str) -> Any:
    """The value ``raw`` (the text after ``=`` in ``--set key=raw``) means for a field of type ``kind``.

    ``null`` (or ``none``, ``~``, nothing) is None where None is allowed; booleans are
    ``true/false/yes/no/on/off/1/0``; lists are ``[2,4,8]`` or ``2,4,8``; strings are taken as they
    are (quotes around them removed); mappings and untyped values are read as YAML.
    """
    text = raw.strip()
    optional, inner = _optional(kind)
    origin = typing.get_origin(inner) or inner
    if optional and text.lower() in NULLS:
        return None
    if inner is Any or origin is dict:
        value = _yaml(text, raw, key)
    elif origin is bool:
        lowered = text.lower()
        value = True if lowered in TRUE else False if lowered in FALSE else text
    elif origin is str:
        value = text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text
    elif origin in (list, tuple):
        args = typing.get_args(inner)
        item = args[0] if args else Any
        if item is Any:  # an untyped list: YAML decides what each item is
            value = _yaml(text if text.startswith("[") else f"[{text}]", raw, key)
        else:
            body = text[1:-1] if text.startswith("[") and text.endswith("]") else text
            parts = [part.strip() for part in body.split(",")] if body.strip() else []
            value = [parse_text(p, item, f"{key}[{i}]") for i, p in enumerate(parts)]
    else:  # numbers: the text itself, read by coerce with the constructor's rules
        value = text
    return coerce(value, kind, key)


def _yaml(text: str, raw: str, key: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key}={raw!r} is not valid YAML: {' '.join(str(exc).split())}") from None


def unknown_key(key: str, choices, where: str = "") -> ConfigError:
    """The error for a key that ``choices`` lacks, with the closest one."""
    close = difflib.get_close_matches(key, list(choices), n=1)
    hint = f" (did you mean {where + close[0]!r}?)" if close else ""
    return ConfigError(f"unknown config key {where + key!r}{hint}; valid keys: {', '.join(choices)}")


def build(cls, data: Any, where: str = ""):
    """An instance of dataclass ``cls`` from a mapping: unknown keys are errors that list the valid
    ones, nested dataclass fields are built from nested mappings, every value is checked."""
    if not isinstance(data, dict):
        raise ConfigError(f"config section {where.rstrip('.') or 'top level'!r} must be a mapping, got {data!r}")
    kinds = hints(cls)
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in init:
            raise unknown_key(str(key), [k for k in kinds if k in init], where)
        kind = kinds[key]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            kwargs[key] = value if isinstance(value, kind) else build(kind, value or {}, f"{where}{key}.")
        else:
            kwargs[key] = coerce(value, kind, where + key)
    return cls(**kwargs)


class Section:
    """Base of the frozen config sections: checks and normalises every field when an instance is built
    (the constructor, :func:`build` and ``dataclasses.replace`` alike), then runs :meth:`check`.

    ``section`` is the name the section has in a config (``tuner``), used in the messages.
    """

    section: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        kinds = hints(type(self))
        for f in dataclasses.fields(self):
            kind = kinds[f.name]
            if isinstance(kind, type) and dataclasses.is_dataclass(kind):
                continue  # a nested section checks itself
            object.__setattr__(self, f.name, coerce(getattr(self, f.name), kind, self.key(f.name)))
        self.check()

    def key(self, name: str) -> str:
        """``name`` as it is written in a config file: ``tuner.trials``."""
        return f"{self.section}.{name}" if self.section else name

    def check(self) -> None:
        """Raise :class:`ConfigError` for values of the right type that are out of range."""
