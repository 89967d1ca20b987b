"""Configuration of a study, one frozen dataclass per concern, validated when built.

Every section checks its values in its constructor, so ``Config(...)``, ``Config.from_dict``,
``Config.from_yaml``, ``dataclasses.replace`` and ``Config.override`` all raise the same
:class:`~jointopt.ConfigError` for a bad value: it names the key, quotes the value and says what is
allowed (``tuner.trials=0 must be >= 1``). Configs are frozen: a changed config is a new one,
``dataclasses.replace(config.tuner, trials=12)`` or ``config.override({"tuner.trials": 12})``.

A config round-trips through YAML (``Config.from_dict(yaml.safe_load(config.to_yaml())) == config``);
``Config.override(["search.epochs=3", ...])`` reads command-line text with each field's type.
Unknown keys are errors that list the valid ones.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import yaml

from ._fields import Section, build, describe, hints, parse_text, unknown_key
from ._sections import (SAMPLERS, SECTIONS, CostConfig, DataConfig, FinetuneConfig, ModelConfig, PhaseConfig,
                        SearchPhaseConfig, SpaceConfig, TunerConfig, _at_least, _named)
from .errors import ConfigError, UnknownNameError

__all__ = ["CONFIG_VERSION", "SAMPLERS", "SECTIONS", "Config", "build_section", "CostConfig", "DataConfig", "FinetuneConfig",
           "ModelConfig", "PhaseConfig", "SearchPhaseConfig", "SpaceConfig", "TunerConfig"]

CONFIG_VERSION = 1

build_section = build  # a dataclass (a method's options) from its config section, with the same checks


@dataclass(frozen=True)
class Config(Section):
    """A whole study: model, data, search space, the three phases, cost models and tuner.

    Every section has defaults that give a useful front; a config that names only the model, the
    data and the epochs is enough. Build from YAML with :meth:`from_yaml`, from nested dicts with
    :meth:`from_dict` (unknown keys are errors that list the valid ones), or directly; every value
    is checked when the config is built, so an invalid config never exists::

        config = Config(model=ModelConfig("resnet8"), data=DataConfig("cifar10"),
                        tuner=TunerConfig(trials=12))
        longer = dataclasses.replace(config, search=dataclasses.replace(config.search, epochs=30))
        same = config.override({"search.epochs": 30})        # or ["search.epochs=30"], as --set

    A section may also be given as a mapping (``Config(tuner={"trials": 12})``). Configs are frozen;
    the mappings and lists in them are copies that belong to the config.

    Attributes:
        seed: seed of the whole study (data split, initial weights, trials); the same config and seed
            give the same front on one machine. Default 0.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``. Default ``cpu``.
        threads: CPU threads for torch, >= 1; null: torch's default (one per core). Default null.
        amp: mixed precision: the training forward passes run under bf16 autocast (a CUDA feature;
            the CPU runs it too, slowly); quantizers, costs, losses, optimizer steps and every
            evaluation stay in fp32. Default false.
        model, data, space, warmup, search, finetune, cost, tuner: the sections
            (:class:`ModelConfig`, :class:`DataConfig`, :class:`SpaceConfig`, :class:`PhaseConfig`,
            :class:`SearchPhaseConfig`, :class:`FinetuneConfig`, :class:`CostConfig`,
            :class:`TunerConfig`).
        method: which method runs the trials (``jointopt methods``). Default ``joint``.
        methods: one section of knobs per method, ``methods.<name>``, checked by that method's
            options; the chosen method's section is completed with its defaults. Default none.
        version: the config format's version (this jointopt writes and reads 1). Default 1.
    """

    seed: int = 0
    device: str = "cpu"
    threads: Optional[int] = None
    amp: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    warmup: PhaseConfig = field(default_factory=PhaseConfig)
    search: SearchPhaseConfig = field(default_factory=SearchPhaseConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    tuner: TunerConfig = field(default_factory=TunerConfig)
    method: str = "joint"
    methods: Dict[str, Any] = field(default_factory=dict)
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, build(cls, value, name + "."))
            elif not isinstance(value, cls):
                raise ConfigError(f"{name} must be a {cls.__name__} (or a mapping of its keys), got {value!r}")
        super().__post_init__()

    def check(self) -> None:
        _at_least(self, "seed", 0)
        _at_least(self, "threads", 1, " (or null for torch's default)")
        _named(self, "device")
        if not 1 <= self.version <= CONFIG_VERSION:
            raise ConfigError(f"version={self.version}: this jointopt reads config versions 1 to {CONFIG_VERSION}")
        from .methods import resolve_sections  # a method's options import its module (torch): only when named

        object.__setattr__(self, "methods", resolve_sections(self))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Config":
        """Build and validate a config from a dict laid out like the YAML files.

        Sections left out keep their defaults, so a dict names only what it changes; an unknown
        key or a bad value raises :class:`ConfigError` naming it and the valid choices. The
        result is what ``jointopt.search`` runs (it also takes the dict itself)::

            config = Config.from_dict({"model": {"name": "resnet8"}, "data": {"name": "cifar10"},
                                       "tuner": {"trials": 12}, "cost": {"target": "mpic"}})
            jointopt.search(config, out="runs/c10")

        ``Config.from_dict(config.to_dict())`` gives an equal config back.
        """
        return build(cls, data or {})

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Config":
        """Build and validate a config from a YAML file (see :meth:`from_dict`)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
        return cls.from_dict(data or {})

    def to_dict(self) -> Dict[str, Any]:
        """The config as nested dicts and lists, laid out like the YAML files."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def validate(self) -> None:
        """Check the config again. Building one already does; this re-runs every section's checks."""
        for name in SECTIONS:
            getattr(self, name).check()
        self.check()

    # -- overrides ----------------------------------------------------------------------------
    def override(self, assignments: Union[Mapping[str, Any], Iterable[str]]) -> "Config":
        """A copy with some values changed, checked like any config.

        ``assignments`` is either a mapping of dotted keys to values, ``{"search.epochs": 3,
        "finetune.max_steps": None}``, or ``key=value`` texts as ``--set`` takes them,
        ``["search.epochs=3", "space.act_bits=[4,8]"]``, each read with its field's type
        (:meth:`parse_overrides`). Keys reach into the sections, a method's knobs
        (``methods.magnitude.scope``) and free-form mappings (``model.kwargs.width``).
        """
        values = dict(assignments) if isinstance(assignments, Mapping) else self.parse_overrides(assignments)
        data = self.to_dict()
        for key, value in values.items():
            path, _ = _locate(key, key)
            node = data
            for depth, part in enumerate(path[:-1]):
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                elif not isinstance(child, dict):
                    raise ConfigError(f"{key}: {'.'.join(path[:depth + 1])} is {child!r}, not a mapping")
                node = child
            node[path[-1]] = value
        return Config.from_dict(data)

    @staticmethod
    def parse_overrides(assignments: Iterable[str]) -> Dict[str, Any]:
        """``key=value`` texts (``--set``) as typed values: ``["search.epochs=3"]`` → ``{"search.epochs": 3}``.

        Each value is read with the type of its field: integers, numbers, ``true``/``false``,
        ``null`` where a field may be null, lists as ``[2,4,8]`` or ``2,4,8``, strings as they are,
        mappings and free-form values as YAML. A key that does not exist, or a value its field
        cannot hold, is a :class:`ConfigError` naming the key and the type (``search.epochs='abc'
        must be an integer``); a later assignment of the same key wins.
        """
        out: Dict[str, Any] = {}
        for item in [assignments] if isinstance(assignments, str) else assignments:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.key=value, e.g. search.epochs=3")
            key, raw = item.split("=", 1)
            key = key.strip()
            _, kind = _locate(key, item)
            out.pop(key, None)  # the later assignment wins, in its own place in the order
            out[key] = parse_text(raw, kind, key)
        return out


def _locate(key: str, item: str) -> Tuple[List[str], Any]:
    """The parts of dotted ``key`` and the type of the field it names; :class:`ConfigError` if there is none."""
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r}: {key!r} is not a key like search.epochs")
    cls, where, i = Config, "", 0
    while True:
        part, last = parts[i], i == len(parts) - 1
        if cls is Any:  # inside a free-form mapping (model.kwargs): any key, any value
            return parts, Any
        kinds = hints(cls)
        if part not in kinds:
            if last or cls is not Config:
                raise unknown_key(part, list(kinds), where)
            sections = [k for k, t in kinds.items() if k in SECTIONS or k in ("methods",)]
            close = difflib.get_close_matches(part, sections, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"override {item!r}: {part!r} is not a config section{hint}; sections: {', '.join(sections)}")
        kind = kinds[part]
        if last:
            return parts, kind
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            cls, where, i = kind, f"{where}{part}.", i + 1
        elif cls is Config and part == "methods":  # methods.NAME.KEY: the type is in the method's options
            name = parts[i + 1]
            options = _method_options(name)
            if i + 1 == len(parts) - 1:
                return parts, Dict[str, Any]
            cls, where, i = options, f"methods.{name}.", i + 2
        elif (typing.get_origin(kind) or kind) is dict:
            cls, i = Any, i + 1
        else:
            raise ConfigError(f"override {item!r}: {where + part!r} is a value ({describe(kind)}), not a section")


def _method_options(name: str) -> type:
    from .methods import get_method

    try:
        method = get_method(name)
    except UnknownNameError as exc:
        raise ConfigError(f"methods.{name}: {exc}; `jointopt methods` lists them") from None
    if method.Options is None:
        raise ConfigError(f"methods.{name}: method {name!r} has no knobs of its own (its knobs are the search and "
                          "tuner sections)")
    return method.Options
