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
from .errors import ConfigError, UnknownNameError
from .space import SearchSpace, check_bits, check_sampling

CONFIG_VERSION = 1
SAMPLERS = ("auto", "adaptive", "spread", "tpe", "nsga2", "random")

_build = build  # the name jointopt.methods reads a method's section with


def _at_least(section: Section, name: str, low, note: str = "") -> None:
    value = getattr(section, name)
    if value is not None and value < low:
        raise ConfigError(f"{section.key(name)}={value} must be >= {low}{note}")


def _positive(section: Section, name: str, note: str = "") -> None:
    value = getattr(section, name)
    if value is not None and value <= 0:
        raise ConfigError(f"{section.key(name)}={value} must be > 0{note}")


def _named(section: Section, name: str) -> None:
    if not getattr(section, name):
        raise ConfigError(f"{section.key(name)}='' must name something; leave the key out for the default")


@dataclass(frozen=True)
class ModelConfig(Section):
    """The network to compress [``model``].

    Attributes:
        name: a zoo name (``jointopt.list_models()``), ``module:factory`` or ``file.py:factory``.
            Default ``digits_cnn``.
        kwargs: keyword arguments passed to the factory, e.g. ``{num_classes: 12}``. Default none.
    """

    section = "model"
    name: str = "digits_cnn"
    kwargs: Dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        _named(self, "name")


@dataclass(frozen=True)
class DataConfig(Section):
    """The data set and how it is batched [``data``].

    Attributes:
        name: a registered data set (``jointopt.list_datasets()``) or ``file.py:function``.
            Default ``digits``.
        root: the folder its files live in or are downloaded to; null: ``$JOINTOPT_DATA_DIR`` or
            ``~/.cache/jointopt/data``. Default null.
        batch_size: training samples per step, >= 1. Default 32.
        eval_batch_size: samples per evaluation batch (no effect on results), >= 1. Default 256.
        val_fraction: share of the training split held out for validation (the tuner's objective),
            in (0, 1). Default 0.1.
        augment: the data set's training augmentation (random shifts, flips, ...). Default true.
        limit_train: use only the first N training samples (smoke tests, scaling), >= 1; null: all.
            Default null.
    """

    section = "data"
    name: str = "digits"
    root: Optional[str] = None
    batch_size: int = 32
    eval_batch_size: int = 256
    val_fraction: float = 0.1
    augment: bool = True
    limit_train: Optional[int] = None

    def check(self) -> None:
        _named(self, "name")
        for name in ("batch_size", "eval_batch_size", "limit_train"):
            _at_least(self, name, 1)
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"data.val_fraction={self.val_fraction} must be in (0, 1)")


@dataclass(frozen=True)
class PhaseConfig(Section):
    """One training phase; as it stands, the float warm-up [``warmup``].

    Attributes:
        epochs: passes over the training split, >= 0 (0 skips the phase). Default 10.
        lr: Adam's learning rate of the weights, > 0. Default 1e-3.
        weight_decay: Adam's L2 weight decay, >= 0. Default 1e-4.
        lr_decay: factor multiplied into the learning rate after every epoch, > 0. Default 0.99.
        patience: stop early after this many epochs without a better validation score, >= 1.
            Default 50.
        max_steps: cap on the steps per epoch, >= 1; null: the whole split. Default null.
    """

    section = "warmup"
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_decay: float = 0.99
    patience: int = 50
    max_steps: Optional[int] = None

    def check(self) -> None:
        _at_least(self, "epochs", 0)
        _positive(self, "lr")
        _at_least(self, "weight_decay", 0)
        _positive(self, "lr_decay")
        _at_least(self, "patience", 1)
        _at_least(self, "max_steps", 1, " (or null for the whole split)")


@dataclass(frozen=True)
class SearchPhaseConfig(PhaseConfig):
    """The search phase [``search``]: weights with Adam, selector logits with a step set by the budget.

    By default every schedule follows the number of search steps actually run
    (``jointopt.train.schedule``): the temperature falls per step from ``temperature`` to
    ``final_temperature``, the selectors move with Adam at ``selector_travel / steps`` and the
    last ``hard_fraction`` of the steps train the argmax network (straight-through). The published
    protocol is ``selector_lr: 0.01`` (SGD, ``selector_momentum``) and ``temperature_decay: 0.045``
    (per epoch), ``hard_fraction: 0``.

    Attributes:
        epochs, lr, weight_decay, lr_decay, patience, max_steps: as in :class:`PhaseConfig`
            (``epochs`` >= 1 here). The early stop applies with ``selector_lr`` or
            ``temperature_decay`` set.
        selector_lr: null: Adam at ``selector_travel / steps``; a number (> 0): SGD with momentum at
            this learning rate. Default null.
        selector_momentum: SGD momentum of the selectors with ``selector_lr``, in [0, 1). Default 0.9.
        selector_travel: how far (in logits) a selector can move over the whole search, > 0.
            Default 4.
        temperature: softmax temperature at the first step, > 0. Default 1.
        final_temperature: temperature at the last step, in (0, temperature]. Default 0.05.
        temperature_decay: null: the per-step schedule above; a number (>= 0): ``T <- T *
            exp(-decay)`` after every epoch instead. Default null.
        hard_fraction: share of the last steps that train the argmax network, in [0, 1]. Default 0.25.
        sampling: how the selectors are sampled before the hard steps: ``softmax``, ``gumbel`` or
            ``hard``. Default ``softmax``.
    """

    section = "search"
    selector_lr: Optional[float] = None
    selector_momentum: float = 0.9
    selector_travel: float = 4.0
    temperature: float = 1.0
    final_temperature: float = 0.05
    temperature_decay: Optional[float] = None
    hard_fraction: float = 0.25
    sampling: str = "softmax"

    def check(self) -> None:
        _at_least(self, "epochs", 1, " (the search needs at least one epoch)")
        super().check()
        _positive(self, "selector_lr", " (or null: Adam at selector_travel / steps)")
        if not 0 <= self.selector_momentum < 1:
            raise ConfigError(f"search.selector_momentum={self.selector_momentum} must be in [0, 1)")
        _positive(self, "selector_travel")
        _positive(self, "temperature")
        if not 0 < self.final_temperature <= self.temperature:
            raise ConfigError(f"search.final_temperature={self.final_temperature} must be in (0, search.temperature="
                              f"{self.temperature}]")
        _at_least(self, "temperature_decay", 0, " (or null)")
        if not 0 <= self.hard_fraction <= 1:
            raise ConfigError(f"search.hard_fraction={self.hard_fraction} must be in [0, 1]")
        check_sampling(self.sampling, "search.sampling")


@dataclass(frozen=True)
class FinetuneConfig(PhaseConfig):
    """Quantization-aware fine-tuning of the frozen network [``finetune``], optionally distilled from
    the warm-up network.

    Attributes:
        epochs, lr, weight_decay, lr_decay, patience, max_steps: as in :class:`PhaseConfig`.
        distill: add a distillation loss towards the warm-up (float) network. Default false.
        distill_weight: its share of the loss, ``(1 - w) * task + w * distill``, in [0, 1]. Default 0.5.
        distill_temperature: softmax temperature of the distillation, > 0. Default 4.
    """

    section = "finetune"
    distill: bool = False
    distill_weight: float = 0.5
    distill_temperature: float = 4.0

    def check(self) -> None:
        super().check()
        if not 0 <= self.distill_weight <= 1:
            raise ConfigError(f"finetune.distill_weight={self.distill_weight} must be in [0, 1]")
        _positive(self, "distill_temperature")


@dataclass(frozen=True)
class SpaceConfig(Section):
    """What the search may choose [``space``] (see :class:`jointopt.SearchSpace`).

    Attributes:
        weight_bits: candidate weight widths per output channel, in bits, 0..16; 0 means the channel
            is pruned; at least one must be non-zero. Default [0, 2, 4, 8].
        act_bits: candidate input-activation widths per layer, in bits, 1..16; one value fixes them.
            Default [8].
        exclude: qualified names of Conv/Linear layers left untouched (float, never pruned).
            Default none.
        keep_init: initial keep logit of every prunable channel (keep probability
            ``sigmoid(keep_init)``). Default 1.
    """

    section = "space"
    weight_bits: List[int] = field(default_factory=lambda: [0, 2, 4, 8])
    act_bits: List[int] = field(default_factory=lambda: [8])
    exclude: List[str] = field(default_factory=list)
    keep_init: float = 1.0

    def check(self) -> None:
        check_bits(self.weight_bits, self.act_bits, "space.")

    def build(self, sampling: str = "softmax") -> SearchSpace:
        """The :class:`SearchSpace` of this section, sampled as ``sampling`` (``search.sampling``)."""
        return SearchSpace(tuple(self.weight_bits), tuple(self.act_bits), tuple(self.exclude), sampling, self.keep_init)


@dataclass(frozen=True)
class CostConfig(Section):
    """The cost models [``cost``].

    Cost-model names are ``jointopt.list_cost_models()`` entries, ``module:Class``, ``file.py:Class``
    or a LUT file; they are resolved when the study starts.

    Attributes:
        target: the cost model the tuner minimises (the front's x axis). Default ``memory``.
        report: further cost models computed and recorded for every trial. Default
            [bitops, macs, ram].
        second: an optional second target added to the regulariser with its own strength
            ``lambda2``; null: none. Default null.
        second_lambda_min, second_lambda_max: the range ``lambda2`` is tuned in (log-uniform),
            0 < min <= max. Defaults 0.01 and 10.
    """

    section = "cost"
    target: str = "memory"
    report: List[str] = field(default_factory=lambda: ["bitops", "macs", "ram"])
    second: Optional[str] = None
    second_lambda_min: float = 0.01
    second_lambda_max: float = 10.0

    def check(self) -> None:
        _named(self, "target")
        if not 0 < self.second_lambda_min <= self.second_lambda_max:
            raise ConfigError(f"cost.second_lambda_min={self.second_lambda_min} and second_lambda_max="
                              f"{self.second_lambda_max} must satisfy 0 < second_lambda_min <= second_lambda_max")


@dataclass(frozen=True)
class TunerConfig(Section):
    """Optuna study settings [``tuner``].

    With no ``lambda_min``/``lambda_max`` (the default) the ``adaptive`` sampler finds the range
    from the trials themselves (``jointopt.tune.plan``); with a range, λ is sampled log-uniformly
    in it by ``spread`` (an even, deterministic spread), ``tpe``, ``nsga2`` or ``random``
    (``adaptive`` then stays inside the range).

    Attributes:
        trials: completed trials to reach, >= 1. Default 8.
        lambda_min, lambda_max: the range of the regularisation strength λ (dimensionless: the cost
            is divided by the unpruned network's); both null (found from the trials) or
            0 < min <= max. Default null.
        sampler: ``auto`` (adaptive without a range, spread with one), ``adaptive``, ``spread``,
            ``tpe``, ``nsga2`` or ``random``; all but auto and adaptive need the range.
            Default ``auto``.
        tune_temperature_decay: let Optuna also choose ``search.temperature_decay`` per trial
            (in [0.01, 0.2], log). Default false.
        study_name: the Optuna study's name in its storage. Default ``jointopt``.
        baselines: uniform weight widths (bits, 1..16) trained with every study to compare with;
            [] for none. Default [8, 4, 2].
    """

    section = "tuner"
    trials: int = 8
    lambda_min: Optional[float] = None
    lambda_max: Optional[float] = None
    sampler: str = "auto"
    tune_temperature_decay: bool = False
    study_name: str = "jointopt"
    baselines: List[int] = field(default_factory=lambda: [8, 4, 2])

    def check(self) -> None:
        _at_least(self, "trials", 1)
        if (self.lambda_min is None) != (self.lambda_max is None):
            raise ConfigError("set both tuner.lambda_min and tuner.lambda_max, or neither (the range is then found "
                              "from the trials)")
        if self.lambda_min is not None and not 0 < self.lambda_min <= self.lambda_max:
            raise ConfigError(f"tuner.lambda_min={self.lambda_min} and lambda_max={self.lambda_max} "
                              "must satisfy 0 < lambda_min <= lambda_max")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"tuner.sampler={self.sampler!r}; choose {', '.join(SAMPLERS)}")
        if self.lambda_min is None and self.sampler not in ("auto", "adaptive"):
            raise ConfigError(f"tuner.sampler={self.sampler!r} samples λ from a range: set tuner.lambda_min and "
                              "tuner.lambda_max, or use sampler auto")
        _named(self, "study_name")
        bad = [b for b in self.baselines if not 1 <= b <= 16]
        if bad:
            raise ConfigError(f"tuner.baselines={self.baselines} has the width {bad[0]}; every width must be in 1..16")


# a config's sections and their classes, in the order of the YAML files
SECTIONS: Dict[str, type] = {"model": ModelConfig, "data": DataConfig, "space": SpaceConfig, "warmup": PhaseConfig,
                             "search": SearchPhaseConfig, "finetune": FinetuneConfig, "cost": CostConfig,
                             "tuner": TunerConfig}


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
