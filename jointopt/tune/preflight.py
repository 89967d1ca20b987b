"""What a study checks before it trains anything or writes its run directory.

A wrong input found after the warm-up wastes the warm-up; one found after the run directory is
made leaves a folder that blocks the rerun. So, first: λ is a finite number, the data set loads,
the model builds and converts (a copy of the untrained network, on a few training samples), and
every cost model the study uses — target, second target, reported — passes the conformance checks
of ``jointopt cost-models --check`` on that converted network (a fraction of a second). A failure
is one :class:`~jointopt.errors.ConfigError` line naming the cost model, the layer and the problem.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from ..config import Config
from ..errors import ConfigError, JointoptError, UnsupportedOpError


def check_lambda(value: Optional[float], flag: str = "--lambda") -> None:
    """A fixed regularisation strength must be a finite number >= 0."""
    if value is None:
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {value!r} is not a number; give a finite strength >= 0, e.g. {flag} 1.0") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{flag} {value!r}: the regularisation strength must be finite and >= 0, e.g. {flag} 1.0")


def study_network(config: Config, dataset):
    """The study's network converted as a trial converts it, untrained (seeded), on two training samples."""
    from ..graph import convert
    from .setup import build_model

    torch.manual_seed(config.seed)
    model = build_model(config, dataset.input_shape, dataset.num_classes)
    example, _ = next(dataset.batches("train", min(2, len(dataset.train))))
    try:
        return convert(model.eval(), example, config.space.build(config.search.sampling))
    except JointoptError:
        raise
    except Exception as exc:  # torch.fx cannot trace it, or its forward fails on the data set's input
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UnsupportedOpError(f"cannot convert model {config.model.name!r} on input {list(example.shape)} of data "
                                 f"set {config.data.name!r}: {type(exc).__name__}: {first}; "
                                 f"`jointopt inspect {config.model.name}` shows what it meets") from exc


def check_cost_models(config: Config, net) -> None:
    """Every cost model of ``config`` passes :func:`jointopt.testing.check_cost_model` on ``net``."""
    from ..cost import get_cost_model
    from ..testing import check_cost_model
    from ..train.phases import cost_names

    label = f"the study's network ({config.model.name})"
    for spec in cost_names(config):
        cost_model = get_cost_model(spec).bind(net)
        try:
            check_cost_model(cost_model, models={label: net}, seed=config.seed)
        except AssertionError as exc:
            text = " ".join(str(exc).split())
            raise ConfigError(f"{text}; fix the cost model before searching with it (`jointopt cost-models --check "
                              f"{spec}` runs the same checks)") from exc


def preflight(config: Config, dataset) -> None:
    """Everything that can be checked before training: the network converts, the cost models conform."""
    check_cost_models(config, study_network(config, dataset))
