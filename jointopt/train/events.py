"""Events: how the search loop and the tuner tell listeners (progress, logs, TensorBoard) what happens.

The search never imports a listener; listeners subscribe to an :class:`EventBus`.

Kinds and their ``data``:

* ``study_start`` — ``config`` (dict), ``run_dir``, ``reference`` (cost name → reference cost),
  ``target``.
* ``baseline`` — ``name`` (``float``, ``w8``, ``w4``, ``w2``), ``val_acc``, ``test_acc``, ``costs``.
* ``trial_start`` — ``params`` (λ and the other tuned strengths).
* ``phase_start`` / ``phase_end`` — ``phase`` is ``warmup``, ``search`` or ``finetune``.
* ``step`` — ``phase``, ``step``, ``steps``, ``loss`` (sparse: a few per epoch).
* ``epoch`` — per-epoch scalars: ``loss``, ``task_loss``, ``reg``, ``val_acc``, ``lr``, and in the
  search ``temperature``, ``kept_fraction``, ``mean_bits``, ``soft_cost/<name>``, ``hard_cost/<name>``.
* ``allocation`` — ``layers``: the per-layer summary of the current argmax choice (search epochs).
* ``trial_end`` — ``result``: the trial's result dict (accuracy, costs, params, allocation).
* ``study_end`` — ``front``: the Pareto-optimal results; ``results``: all of them.
"""
from __future__ import annotations

import time
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


Listener = Callable[[Event], None]


class EventBus:
    """Delivers events to listeners in subscription order; a failing listener never stops the search."""

    def __init__(self, listeners: Optional[List[Listener]] = None):
        self.listeners: List[Listener] = list(listeners or [])
        self.errors: List[str] = []

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, kind: str, trial: Optional[int] = None, phase: Optional[str] = None,
             epoch: Optional[int] = None, **data) -> Event:
        event = Event(kind, trial, phase, epoch, data)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception as exc:  # a broken logger must not lose a trial
                self.errors.append(f"{getattr(listener, '__name__', type(listener).__name__)}: {exc!r}")
        return event

    def close(self) -> None:
        for listener in self.listeners:
            close = getattr(listener, "close", None)
            if callable(close):
                close()
