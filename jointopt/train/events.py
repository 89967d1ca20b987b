"""Events: how the search loop and the tuner tell listeners (progress, logs, TensorBoard) what happens.

The search never imports a listener; listeners subscribe to an :class:`EventBus`.

Kinds and their ``data``:

* ``study_start`` — ``config`` (dict), ``run_dir``, ``reference`` (cost name → reference cost),
  ``target``.
* ``baseline`` — ``name`` (``float``, ``w8``, ``w4``, ``w2``), ``val_acc``, ``test_acc``, ``costs``, and
  ``result``: the :class:`~jointopt.results.BaselineResult`.
* ``trial_start`` — ``params`` (λ and the other tuned strengths).
* ``phase_start`` / ``phase_end`` — ``phase`` is ``warmup``, ``search`` or ``finetune``.
* ``step`` — ``phase``, ``step``, ``steps``, ``loss`` (sparse: a few per epoch).
* ``epoch`` — per-epoch scalars: ``loss``, ``task_loss``, ``reg``, ``val_acc``, ``lr``, and in the
  search ``temperature``, ``kept_fraction``, ``mean_bits``, ``soft_cost/<name>``, ``hard_cost/<name>``.
* ``allocation`` — ``layers``: the per-layer summary of the current argmax choice (search epochs).
* ``trial_end`` — ``result``: the trial's :class:`~jointopt.results.TrialResult` (accuracy, costs,
  params, allocation); sent once the study has recorded the trial as complete.
* ``study_end`` — ``front``: the Pareto-optimal results; ``results``: all of them.

Whose event it is: ``trial`` (a trial number) for a trial's, ``baseline`` (``w8``, ...) for the
training of a uniform baseline, neither for the study's (the warm-up, the study's start and end).

A listener that raises does not stop the study: the bus warns once per listener (its name and the
exception, :class:`ListenerWarning`) and keeps every failure in :attr:`EventBus.errors`, which the
study's summary and log repeat.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional


@dataclass
class Event:
    kind: str
    trial: Optional[int] = None
    phase: Optional[str] = None
    epoch: Optional[int] = None
    data: Dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    baseline: Optional[str] = None  # the uniform baseline (``w8``, ...) whose training this event is part of


class ListenerWarning(RuntimeWarning):
    """An event listener raised; the study went on without it."""


def listener_name(listener) -> str:
    """A listener's name for messages: its function or class name."""
    return getattr(listener, "__qualname__", None) or getattr(listener, "__name__", None) or type(listener).__name__


Listener = Callable[[Event], None]


class EventBus:
    """Delivers events to listeners in subscription order; a failing listener never stops the search,
    but it is never silent either: the first failure of each listener is warned about
    (:class:`ListenerWarning`), and every failure is in :attr:`errors` (``"name: event kind: exception"``)."""

    def __init__(self, listeners: Optional[List[Listener]] = None):
        self.listeners: List[Listener] = list(listeners or [])
        self.errors: List[str] = []
        self._warned: set = set()

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, kind: str, trial: Optional[int] = None, phase: Optional[str] = None,
             epoch: Optional[int] = None, *, baseline: Optional[str] = None, **data) -> Event:
        event = Event(kind, trial, phase, epoch, data, baseline=baseline)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception as exc:  # a broken logger must not lose a trial
                self._failed(listener, event, exc)
        return event

    def _failed(self, listener, event: Event, exc: Exception) -> None:
        name = listener_name(listener)
        self.errors.append(f"{name}: {event.kind}: {type(exc).__name__}: {' '.join(str(exc).split())}")
        if id(listener) not in self._warned:
            self._warned.add(id(listener))
            warnings.warn(f"event listener {name} failed on a {event.kind!r} event ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())}); the study goes on without its output for that event "
                          "(further failures of this listener are counted, not warned about)",
                          ListenerWarning, stacklevel=3)

    def failed_listeners(self) -> Dict[str, int]:
        """Listener name → how many events it failed on."""
        counts: Dict[str, int] = {}
        for error in self.errors:
            name = error.split(":", 1)[0]
            counts[name] = counts.get(name, 0) + 1
        return counts

    def close(self) -> None:
        for listener in self.listeners:
            close = getattr(listener, "close", None)
            if callable(close):
                close()
