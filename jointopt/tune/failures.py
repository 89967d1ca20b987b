"""Trials that fail, and trials that collapse: recorded with their reason, kept off the front.

A trial whose loss, cost or weights stop being finite, or whose loss explodes, raises
:class:`~jointopt.errors.DivergedError`. The study marks it FAIL in Optuna with the reason as the
user attribute ``failed``, writes ``trials/<n>/failure.json`` and goes on with the next λ; the
trial's checkpoint (a diverged state) is removed. A trial that completes at chance accuracy while
the warm-up network is well above it has *collapsed*: it stays COMPLETE (the λ plan learns from
it) with ``collapsed`` in its result, and is not a front point.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import List, Sequence

from ..errors import DivergedError
from ..results import FailedTrial
from . import rundir
from ..train.phases import CHECKPOINT
from .rundir import FAILURE


class _QuietTrialTracebacks(logging.Filter):
    """Optuna logs a failed trial with its traceback; the study prints its own line for a failed trial,
    and the command line one line for anything it re-raises (``--debug`` for the traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info or str(record.msg).startswith("Trial ") and " failed" in str(record.msg))


_QUIET = _QuietTrialTracebacks()


def quiet_optuna_failures() -> None:
    logging.getLogger("optuna.study._optimize").addFilter(_QUIET)  # adding the same filter twice is a no-op


def record_failure(bus, trial, tdir: Path, exc: DivergedError) -> None:
    """Store why ``trial`` failed where Optuna, the run directory and the progress display see it."""
    reason = " ".join(str(exc).split())
    trial.set_user_attr("failed", reason)
    rundir.write_json(tdir / FAILURE, {"trial": trial.number, "status": "failed", "reason": reason,
                                       "params": dict(trial.params)})
    (tdir / CHECKPOINT).unlink(missing_ok=True)  # a diverged state is not worth resuming
    bus.emit("trial_failed", trial.number, reason=reason, params=dict(trial.params))


def failed_trials(study) -> List[FailedTrial]:
    """Every trial of ``study`` that failed with a recorded reason."""
    from optuna.trial import TrialState

    return [FailedTrial(t.number, dict(t.params), t.user_attrs["failed"])
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if "failed" in t.user_attrs]


def every_trial_failed(failed: Sequence[FailedTrial]) -> DivergedError:
    first = failed[0]
    return DivergedError(f"every trial of the study failed ({len(failed)}); trial {first.trial} "
                         f"(params {first.params}): {first.reason}")


def collapse_reason(val_acc: float, warmup_acc, num_classes: int, val_samples: int):
    """Why a completed trial is at chance accuracy while its warm-up network is not (None if it is not)."""
    chance = 100.0 / max(1, num_classes)
    margin = max(2.0, 100.0 / max(1, val_samples))
    if warmup_acc is None or warmup_acc <= chance + 2 * margin or val_acc > chance + margin:
        return None
    return (f"collapsed: validation accuracy {val_acc:.4g} % is at chance ({chance:.4g} % for {num_classes} classes) "
            f"while the warm-up network reaches {warmup_acc:.4g} %")


def interrupted_trials(study) -> List[tuple]:
    """(number, params) of every FAIL trial that did not diverge (Ctrl-C, a full disk, an unreadable
    checkpoint: no ``failed`` reason) and that no trial retries yet: ``--resume`` queues them again."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    done = [dict(t.params) for t in trials if t.state == TrialState.COMPLETE]
    return [(t.number, dict(t.params)) for t in trials
            if t.state == TrialState.FAIL and "failed" not in t.user_attrs and t.number not in retried and t.params
            and dict(t.params) not in done]


def stale_trials(study):
    """The trials left RUNNING on this host by a worker that is no longer alive (killed)."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("host") != host or _alive(t.user_attrs.get("pid")):
            continue
        yield t


def claimed_trials(study) -> int:
    """Trials complete, plus those a live worker is running: once they reach the budget no worker
    starts another (two workers finishing together would otherwise run one trial too many)."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    return sum(t.state == TrialState.COMPLETE or t.user_attrs.get("host") != host or _alive(t.user_attrs.get("pid"))
               for t in trials)


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def readable_checkpoint(path: Path, bus, trial: int):
    """The checkpoint an interrupted trial left, or None (the trial starts over) when it cannot be read."""
    from ..train import load_checkpoint

    try:
        saved = load_checkpoint(path)
        if not isinstance(saved, dict) or "phase" not in saved or "epoch" not in saved:
            raise ValueError("not a trial checkpoint")
        return saved
    except Exception as exc:  # truncated, corrupt or foreign: not worth the trial
        bus.emit("warning", trial, message=f"cannot read {path} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                                           "the trial starts over")
        return None
