"""Named points where a test injects a fault (a kill, an exception) instead of racing a timer.

The study and the trial runner call :func:`fault_point` at the moments a crash matters:

* ``checkpoint_written`` — a trial's per-epoch checkpoint is on disk;
* ``result_written`` — a trial's ``result.json`` is on disk, the study does not know yet;
* ``result_committed`` — the study (Optuna) marked the trial complete, nothing announced it yet.

Two ways to act at a point:

* the environment variable ``JOINTOPT_FAULT=NAME`` or ``NAME@TRIAL`` (e.g.
  ``result_written@1``): the process kills itself with SIGKILL there (as ``kill -9`` would), the
  first time the point is reached (for that trial). For tests that run ``jointopt search`` in a
  subprocess.
* ``JOINTOPT_HOLD=NAME[@TRIAL]:PATH``: the process waits there until the file ``PATH`` exists (at
  most :data:`HOLD_LIMIT_S`), the first time the point is reached; for tests that order what several
  processes do (one worker holds after its first trial until another has run one) without sleeps.
* ``faults.hook = callable(name, trial)``: called at every point, in this process (it may raise).

Neither costs anything when unset.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable, Optional

ENV = "JOINTOPT_FAULT"
HOLD_ENV = "JOINTOPT_HOLD"
HOLD_LIMIT_S = 300.0
_held: set = set()
POINTS = ("checkpoint_written", "result_written", "result_committed")

hook: Optional[Callable[[str, Optional[int]], None]] = None


def fault_point(name: str, trial: Optional[int] = None) -> None:
    """Act on a fault injected at point ``name`` (of ``trial``), if any; see the module docstring."""
    if hook is not None:
        hook(name, trial)
    hold = os.environ.get(HOLD_ENV)
    if hold and hold not in _held:
        where, _, path = hold.partition(":")
        point, _, number = where.partition("@")
        if point == name and (not number or (trial is not None and number == str(trial))):
            _held.add(hold)
            deadline = time.monotonic() + HOLD_LIMIT_S
            while not Path(path).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, number = wanted.partition("@")
    if point == name and (not number or (trial is not None and number == str(trial))):
        os.kill(os.getpid(), signal.SIGKILL)
