"""The contract of a method: how a study's trials are chosen and how one trial becomes a frozen network.

A study (``jointopt.tune.Study``) does the shared work once — data, the float warm-up network, the
uniform baselines, the Optuna study, the run directory — and asks its method two things per trial:

* :meth:`Method.suggest` — the trial's parameters (λ for the joint search, a keep ratio for
  magnitude pruning, ...), registered with the Optuna trial so that they are stored with it;
* :meth:`Method.run` — given the trial's :class:`~jointopt.train.TrialRunner` (data, cost models
  bound to the network, events, the fine-tune phase) and the warm-up network, produce the trial's
  searchable network (its hard choice is the allocation), the frozen network and the result.

Every method leaves the same record: ``trials/<n>/result.json`` (accuracies, the frozen network's
cost under every active cost model, the allocation), ``searchable.pt`` and ``frozen.pt`` — the
searchable network is always in the study's search space, so ``jointopt report``, ``export`` and
``load_trial`` read every method's trials the same way.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Dict, Optional

from ..errors import ConfigError


class Method:
    """Base class of a method. Subclasses set ``name``, ``summary`` and, for their own knobs,
    ``Options`` (a dataclass: the config section ``methods.<name>``), and implement
    :meth:`suggest` and :meth:`allocate` (or override :meth:`run`).

    ``uses_lambda``: the method has one regularisation strength ``lambda`` (``--lambda X`` fixes it).
    ``stops_early``: a trial is one search (``runner.search``) then the fine-tune, so the study may
    stop it halfway through the search (``tuner.early_stop``, :mod:`jointopt.tune.early_stop`).
    """

    name: str = ""
    summary: str = ""
    Options: Optional[type] = None
    uses_lambda: bool = False
    stops_early: bool = False

    # -- configuration ----------------------------------------------------------------------------
    def options(self, config) -> Any:
        """The method's knobs from ``config.methods[name]`` (defaults for the keys not given)."""
        if self.Options is None:
            return None
        from ..config import build_section

        options = build_section(self.Options, dict((config.methods or {}).get(self.name) or {}), f"methods.{self.name}.")
        check = getattr(options, "check", None)
        if check is not None:
            check(config)
        return options

    def check(self, config, fixed_lambda: Optional[float] = None) -> None:
        """Raise :class:`ConfigError` before any training if the method cannot run this config."""
        if fixed_lambda is not None and not self.uses_lambda:
            raise ConfigError(f"--lambda fixes the regularisation strength of a search, but method {self.name!r} has "
                              "none; set its own knobs under methods." + self.name)
        self.options(config)

    # -- per trial --------------------------------------------------------------------------------
    def suggest(self, trial, study) -> Dict[str, Any]:
        """The parameters of Optuna ``trial`` (use ``trial.suggest_*`` or :func:`fixed`)."""
        raise NotImplementedError

    def run(self, runner, warm, params: Dict[str, Any]):
        """One trial: set ``runner.searchable`` and ``runner.frozen``; return its
        :class:`~jointopt.results.TrialResult`.

        The default: :meth:`allocate` chooses the allocation on the warm-up network made searchable
        (in ``hard`` mode, its argmax is the allocation), then the frozen network is fine-tuned and
        evaluated (:func:`jointopt.methods.finish`). A trial killed during its fine-tune continues
        from its checkpoint without choosing the allocation again.
        """
        from ._common import finish, prepare, searchable

        started = time.time()
        seed = prepare(runner)
        net = searchable(runner, warm)
        saved = runner.resume_state
        if saved and saved.get("phase") == "finetune" and saved.get("searchable") is not None:
            net.load_state_dict(saved["searchable"])
            info = saved.get("method_info") or {}
        else:
            runner.resume_state = None  # an earlier phase restarts: the method's own steps are not checkpointed
            info = self.allocate(runner, net, warm, params, seed) or {}
        return finish(runner, net, warm, params, started, seed, info=info, budget=self.finetune_budget(runner.config))

    def allocate(self, runner, net, warm, params: Dict[str, Any], seed: int) -> Optional[dict]:
        """Set ``net``'s choices (gates and bit selectors; weights may be trained). Return notes for
        ``result.json`` → ``search`` (what was chosen and why), or None."""
        raise NotImplementedError

    def finetune_budget(self, config) -> Optional[int]:
        """Fine-tune epochs (None: ``finetune.epochs``). Methods without a search phase get the search's
        epochs too, as the uniform baselines do: every trial trains for the same number of steps."""
        return config.search.epochs + config.finetune.epochs


# -- helpers for suggest ---------------------------------------------------------------------------
def fixed(trial, name: str, value):
    """Register ``value`` as parameter ``name`` of Optuna ``trial`` (a one-point distribution) and return it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"parameter {name!r} must be a number, got {value!r}")
    if isinstance(value, int):
        return trial.suggest_int(name, value, value)
    return trial.suggest_float(name, float(value), float(value))


def trial_index(trial) -> int:
    """The trial's position in the method's sequence of points: its place in the study's plan
    (:func:`jointopt.tune.plan.plan_index`: a retry takes the place of the trial it retries, and
    retries do not shift the trials after them)."""
    from ..tune.plan import plan_index

    return plan_index(trial.study.get_trials(deepcopy=False), trial.number)


def van_der_corput(n: int, base: int = 2) -> float:
    """The ``n``-th point of the base-``base`` van der Corput sequence in [0, 1): 1/2, 1/4, 3/4, 1/8, ..."""
    value, denom = 0.0, 1.0
    while n:
        n, digit = divmod(n, base)
        denom *= base
        value += digit / denom
    return value


def spread(index: int, low: float, high: float, log: bool = False, base: int = 2) -> float:
    """Point ``index`` of an even spread over (low, high): the middle first, then ever finer midpoints
    (van der Corput: 1/2, 1/4, 3/4, 1/8, ...), so the first trials span the range and later ones
    fill it, whatever the number of trials. ``log``: evenly in log scale.
    """
    u = van_der_corput(index + 1, base)
    if log:
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return low + u * (high - low)


def options_dict(options) -> dict:
    return dataclasses.asdict(options) if options is not None else {}
