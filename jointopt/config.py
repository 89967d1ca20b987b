"""Configuration of a study, one dataclass per concern, validated when built.

A config round-trips through YAML (``Config.from_dict(yaml.safe_load(...))`` and
``config.to_dict()``); ``Config.override(["search.epochs=3", ...])`` applies command-line
overrides with the same validation. Unknown keys are errors that list the valid ones.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from .errors import ConfigError
from .space import SearchSpace

CONFIG_VERSION = 1
SAMPLERS = ("auto", "adaptive", "spread", "tpe", "nsga2", "random")


@dataclass
class ModelConfig:
    """``name``: a zoo name (``jointopt.list_models()``) or ``module:factory``."""

    name: str = "digits_cnn"
    kwargs: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """``name``: a registered data set (``jointopt.list_datasets()``); ``root``: where its files live."""

    name: str = "digits"
    root: Optional[str] = None
    batch_size: int = 32
    eval_batch_size: int = 256
    val_fraction: float = 0.1
    augment: bool = True
    limit_train: Optional[int] = None  # use only the first N training samples (smoke tests, scaling)


@dataclass
class PhaseConfig:
    """One training phase. ``max_steps`` caps the steps per epoch (None = the whole split)."""

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_decay: float = 0.99  # multiplied into the learning rate after every epoch
    patience: int = 50  # early stop after this many epochs without a better validation score
    max_steps: Optional[int] = None


@dataclass
class SearchPhaseConfig(PhaseConfig):
    """The search phase: weights with Adam, selector logits with a step set by the budget.

    By default every schedule follows the number of search steps actually run
    (``jointopt.train.schedule``): the temperature falls per step from ``temperature`` to
    ``final_temperature``, the selectors move with Adam at ``selector_travel / steps`` and the
    last ``hard_fraction`` of the steps train the argmax network (straight-through). The published
    protocol is ``selector_lr: 0.01`` (SGD, ``selector_momentum``) and ``temperature_decay: 0.045``
    (per epoch), ``hard_fraction: 0``.
    """

    selector_lr: Optional[float] = None  # None: Adam at selector_travel / steps; a number: SGD with momentum
    selector_momentum: float = 0.9
    selector_travel: float = 4.0
    temperature: float = 1.0
    final_temperature: float = 0.05
    temperature_decay: Optional[float] = None  # a number: T <- T * exp(-decay) after every epoch instead
    hard_fraction: float = 0.25
    sampling: str = "softmax"


@dataclass
class FinetuneConfig(PhaseConfig):
    """Quantization-aware fine-tuning of the frozen network, optionally distilled from the warm-up net."""

    distill: bool = False
    distill_weight: float = 0.5
    distill_temperature: float = 4.0


@dataclass
class SpaceConfig:
    weight_bits: List[int] = field(default_factory=lambda: [0, 2, 4, 8])
    act_bits: List[int] = field(default_factory=lambda: [8])
    exclude: List[str] = field(default_factory=list)
    keep_init: float = 1.0  # initial keep logit of every prunable channel (keep probability sigmoid(keep_init))

    def build(self, sampling: str = "softmax") -> SearchSpace:
        return SearchSpace(tuple(self.weight_bits), tuple(self.act_bits), tuple(self.exclude), sampling, self.keep_init)


@dataclass
class CostConfig:
    """``target``: the cost model the tuner minimises; ``report``: others computed for every trial.

    ``second``: an optional second target added to the regulariser with its own strength
    (``lambda2``, tuned over ``[second_lambda_min, second_lambda_max]`` unless fixed).
    """

    target: str = "memory"
    report: List[str] = field(default_factory=lambda: ["bitops", "macs", "ram"])
    second: Optional[str] = None
    second_lambda_min: float = 0.01
    second_lambda_max: float = 10.0


@dataclass
class TunerConfig:
    """Optuna study settings.

    With no ``lambda_min``/``lambda_max`` (the default) the ``adaptive`` sampler finds the range
    from the trials themselves (``jointopt.tune.plan``); with a range, λ is sampled log-uniformly
    in it by ``spread`` (an even, deterministic spread), ``tpe``, ``nsga2`` or ``random``
    (``adaptive`` then stays inside the range).
    """

    trials: int = 8
    lambda_min: Optional[float] = None
    lambda_max: Optional[float] = None
    sampler: str = "auto"  # auto: adaptive without a range, spread with one | adaptive | spread | tpe | nsga2 | random
    tune_temperature_decay: bool = False
    study_name: str = "jointopt"
    baselines: List[int] = field(default_factory=lambda: [8, 4, 2])  # uniform weight widths to compare with


@dataclass
class Config:
    """A whole study: model, data, search space, the three phases, cost models and tuner.

    Every section has defaults that give a useful front; a config that names only the model, the
    data and the epochs is enough. Build from YAML with :meth:`from_yaml`, from nested dicts with
    :meth:`from_dict` (unknown keys are errors that list the valid ones).
    """

    seed: int = 0
    device: str = "cpu"
    threads: Optional[int] = None
    # mixed precision: the training forward passes under bf16 autocast (a CUDA feature; the CPU runs it too,
    # slowly); quantizers, costs, losses, optimizer steps and every evaluation stay in fp32
    amp: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    warmup: PhaseConfig = field(default_factory=PhaseConfig)
    search: SearchPhaseConfig = field(default_factory=SearchPhaseConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    tuner: TunerConfig = field(default_factory=TunerConfig)
    # which method runs the trials (`jointopt methods`), and one section of knobs per method:
    # methods.<name>, checked by that method's own options (jointopt.methods.resolve_sections)
    method: str = "joint"
    methods: Dict[str, Any] = field(default_factory=dict)
    version: int = CONFIG_VERSION

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
        config = _build(cls, data or {}, "")
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Config":
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
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def override(self, assignments: List[str]) -> "Config":
        """Return a copy with ``section.key=value`` assignments applied (value parsed as YAML)."""
        data = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.key=value, e.g. search.epochs=3")
            key, raw = item.split("=", 1)
            node = data
            parts = key.strip().split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    sections = [k for k, v in node.items() if isinstance(v, dict)]
                    close = difflib.get_close_matches(part, sections, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise ConfigError(f"override {item!r}: {part!r} is not a config section{hint}; "
                                      f"sections: {', '.join(sections)}")
                node = node[part]
            node[parts[-1]] = yaml.safe_load(raw)
        return Config.from_dict(data)

    def validate(self) -> None:
        self.space.build(self.search.sampling)  # raises ConfigError on a bad space
        for name in ("warmup", "search", "finetune"):
            phase = getattr(self, name)
            if phase.epochs < 0:
                raise ConfigError(f"{name}.epochs={phase.epochs} must be >= 0")
            if phase.lr <= 0:
                raise ConfigError(f"{name}.lr={phase.lr} must be > 0")
        if self.search.epochs < 1:
            raise ConfigError("search.epochs must be >= 1")
        s = self.search
        if not 0 < s.final_temperature <= s.temperature:
            raise ConfigError(f"search.final_temperature={s.final_temperature} must be in (0, search.temperature="
                              f"{s.temperature}]")
        if not 0 <= s.hard_fraction <= 1:
            raise ConfigError(f"search.hard_fraction={s.hard_fraction} must be in [0, 1]")
        if s.selector_lr is not None and s.selector_lr <= 0 or s.selector_travel <= 0:
            raise ConfigError("search.selector_lr (or null) and search.selector_travel must be > 0")
        if s.temperature_decay is not None and s.temperature_decay < 0:
            raise ConfigError(f"search.temperature_decay={s.temperature_decay} must be >= 0 (or null)")
        t = self.tuner
        if (t.lambda_min is None) != (t.lambda_max is None):
            raise ConfigError("set both tuner.lambda_min and tuner.lambda_max, or neither (the range is then found "
                              "from the trials)")
        if t.lambda_min is not None and not 0 < t.lambda_min <= t.lambda_max:
            raise ConfigError(f"tuner.lambda_min={t.lambda_min} and lambda_max={t.lambda_max} "
                              "must satisfy 0 < lambda_min <= lambda_max")
        if t.sampler not in SAMPLERS:
            raise ConfigError(f"tuner.sampler={t.sampler!r}; choose {', '.join(SAMPLERS)}")
        if t.lambda_min is None and t.sampler not in ("auto", "adaptive"):
            raise ConfigError(f"tuner.sampler={t.sampler!r} samples λ from a range: set tuner.lambda_min and "
                              "tuner.lambda_max, or use sampler auto")
        if self.tuner.trials < 1:
            raise ConfigError("tuner.trials must be >= 1")
        if self.data.batch_size < 1:
            raise ConfigError("data.batch_size must be >= 1")
        if not 0 < self.data.val_fraction < 1:
            raise ConfigError(f"data.val_fraction={self.data.val_fraction} must be in (0, 1)")
        from .methods import resolve_sections  # a method's options import its module (torch): not at module level

        self.methods = resolve_sections(self)


def _build(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"config section {where or 'top level'!r} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown config key {where + key!r}{hint}; valid keys: {', '.join(fields)}"
            )
        f = fields[key]
        sub = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(sub):
            kwargs[key] = _build(type(sub), value or {}, f"{where}{key}.")
        else:
            kwargs[key] = _coerce(value, f, sub if sub is not None else f.default, where + key)
    return cls(**kwargs)


def _coerce(value: Any, f: dataclasses.Field, default: Any, key: str) -> Any:
    if value is None:
        return value
    if default is None:  # an optional field: check the type its annotation names
        kind = str(f.type)
        if "float" in kind or "int" in kind:
            default = 0.0 if "float" in kind else 0
        else:
            return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{key}={value!r} must be a number") from None
        if isinstance(default, int) and f.type in ("int", int):
            if float(value) != int(value):
                raise ConfigError(f"{key}={value!r} must be an integer")
            return int(value)
        return float(value) if isinstance(default, float) else value
    if isinstance(default, list) and not isinstance(value, list):
        raise ConfigError(f"{key}={value!r} must be a list")
    if isinstance(default, dict) and not isinstance(value, dict):
        raise ConfigError(f"{key}={value!r} must be a mapping")
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{key}={value!r} must be a string")
    return value
