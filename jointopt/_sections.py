"""The sections of a config, one frozen dataclass per concern; :mod:`jointopt.config` gathers them.

Each section checks its own values when it is built (:class:`jointopt._fields.Section`): the types
from the annotations, the ranges in :meth:`check`. The docstrings are the reference of every key:
its meaning, unit and default.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ._fields import Section
from .errors import ConfigError
from .space import SearchSpace, check_bits, check_sampling

SAMPLERS = ("auto", "adaptive", "spread", "tpe", "nsga2", "random")


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
        early_stop: stop a trial halfway through its search when its outcome is clear — collapsed,
            still the widest network, or dominated by a completed trial at the same epoch
            (:mod:`jointopt.tune.early_stop`); it skips its fine-tune and is not a front point.
            Default true.
        early_stop_after: share of the search epochs run before a trial can be stopped, in (0, 1].
            Default 0.5.
    """

    section = "tuner"
    trials: int = 8
    lambda_min: Optional[float] = None
    lambda_max: Optional[float] = None
    sampler: str = "auto"
    tune_temperature_decay: bool = False
    study_name: str = "jointopt"
    baselines: List[int] = field(default_factory=lambda: [8, 4, 2])
    early_stop: bool = True
    early_stop_after: float = 0.5

    def check(self) -> None:
        _at_least(self, "trials", 1)
        if not 0 < self.early_stop_after <= 1:
            raise ConfigError(f"tuner.early_stop_after={self.early_stop_after} must be in (0, 1]: the share of the "
                              "search epochs run before a trial can be stopped")
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
