"""Progress of a study on a terminal: one live line on a TTY (tqdm), a line per finished trial always.

The live line says which trial runs and how far the study is (``trial 5 (6/8)``), the phase and
epoch, loss, accuracy, the current cost, and the time left. The estimate is the mean duration of
the trials this process finished (or, before the first one ends, the current trial's pace over its
search and fine-tune epochs) times what remains. The count of completed trials is read from the
run directory, so a resumed study continues at ``3/8`` rather than at ``1/8``.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional


def completed_trials(run_dir) -> int:
    """Trials of ``run_dir`` that wrote their result (by any worker on this machine)."""
    return sum(1 for _ in Path(run_dir).glob("trials/*/result.json")) if run_dir else 0


def duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``1h02m``; ``?`` for a time that is not a number (never raises)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """An event listener that prints a study's progress (what ``jointopt search`` shows).

    Args:
        stream: where to write (default ``sys.stderr``); the live line only appears on a TTY.
        trials: trials the study aims for (updated by the ``study_start`` event).
        target: the target cost model (updated by ``study_start``).
        quiet: print nothing.
    """

    def __init__(self, stream=None, trials: int = 0, target: str = "memory", quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty() and not quiet
        self.trials, self.target = trials, target
        self.run_dir: Optional[str] = None
        self.phase_epochs: Dict[str, Optional[int]] = {}
        self.epochs_per_trial = 0
        self.started = time.time()
        self.done = 0
        self._trial_started: Dict[int, float] = {}
        self._trial_epochs: Dict[int, int] = {}
        self._durations: List[float] = []
        self._cost_model = None
        self._bar = None  # the live line, made on the first epoch

    # -- estimates --------------------------------------------------------------------------------
    def time_left(self, trial: Optional[int] = None, now: Optional[float] = None) -> Optional[float]:
        """Seconds until the study reaches its trials, or None before anything can be estimated."""
        now = time.time() if now is None else now
        remaining = max(0, self.trials - self.done)
        if remaining == 0:
            return 0.0
        running = trial is not None and trial in self._trial_started
        fraction = min(1.0, self._trial_epochs.get(trial, 0) / self.epochs_per_trial) \
            if running and self.epochs_per_trial else 0.0
        if self._durations:
            per_trial = sum(self._durations) / len(self._durations)
        elif running and fraction > 0:
            per_trial = (now - self._trial_started[trial]) / fraction
        else:
            return None
        if running:
            return per_trial * (1 - fraction) + per_trial * (remaining - 1)
        return per_trial * remaining

    def _fmt_cost(self, value) -> str:
        from ..cost import get_cost_model

        if self._cost_model is None:
            self._cost_model = get_cost_model(self.target)
        return self._cost_model.format(value)

    # -- output -----------------------------------------------------------------------------------
    def _line(self, text: str) -> None:
        """Show ``text`` as the live line (a one-line :mod:`tqdm` display: fitted to the terminal's width)."""
        if not self.live:
            return
        if self._bar is None:
            from .._terminal import terminal_bar  # the one tqdm set-up of jointopt

            self._bar = terminal_bar(self.stream, bar_format="{desc}", leave=False)
        self._bar.set_description_str(text)

    def _print(self, text: str) -> None:
        """Print a permanent line; the live line is cleared first and drawn again below it."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, e) -> None:
        handler = getattr(self, f"_on_{e.kind}", None)
        if handler is not None:
            handler(e)

    def _on_study_start(self, e) -> None:
        self.trials, self.target = e.data["trials"], e.data["target"]
        self.run_dir = e.data.get("run_dir")
        config = e.data.get("config") or {}
        self.epochs_per_trial = sum(int((config.get(p) or {}).get("epochs") or 0) for p in ("search", "finetune"))
        self.done = completed_trials(self.run_dir)
        already = f", {self.done} already done" if self.done else ""
        self._print(f"jointopt: study in {self.run_dir} — {self.trials} trial{'s' if self.trials != 1 else ''}"
                    f"{already}, target {self.target}")

    def _on_warmup_cached(self, e) -> None:
        self._print(f"warm-up: reused cached network (val {e.data['val_acc']:.2f}%)")

    def _on_phase_start(self, e) -> None:
        self.phase_epochs[e.phase] = e.data.get("epochs")
        if e.phase == "warmup":
            self._print("warm-up: training the float network once; every trial starts from it")

    def _on_phase_end(self, e) -> None:
        if e.phase == "warmup":  # a trial's own float training (method pai) is announced with its trial
            where = "warm-up" if e.trial is None else f"trial {e.trial}: float training"
            self._print(f"{where}: done, val {e.data['val_acc']:.2f}%")

    def _on_baseline(self, e) -> None:
        cost = e.data.get("costs", {}).get(self.target)
        self._print(f"baseline {e.data['name']:>5}: val {e.data['val_acc']:.2f}%  test {e.data['test_acc']:.2f}%"
                    + (f"  {self.target} {self._fmt_cost(cost)}" if cost is not None else ""))

    def _on_trial_start(self, e) -> None:
        self._trial_started[e.trial] = e.time
        self._trial_epochs[e.trial] = 0

    def _on_epoch(self, e) -> None:
        if e.trial is not None and e.trial >= 0:
            self._trial_epochs[e.trial] = self._trial_epochs.get(e.trial, 0) + 1
            where = f"trial {e.trial} ({min(self.done + 1, self.trials)}/{self.trials})"
        else:
            baseline = getattr(e, "baseline", None)
            where = "warm-up" if e.phase == "warmup" else f"baseline {baseline}" if baseline else ""
        cost = e.data.get(f"hard_cost/{self.target}")
        text = (f"[{duration(time.time() - self.started):>6}] {where} · {e.phase} {e.epoch + 1}/"
                f"{self.phase_epochs.get(e.phase, '?')} · loss {e.data.get('loss', float('nan')):.3f}"
                f" · val {e.data.get('val_acc', 0):.1f}%")
        if cost is not None:
            text += f" · {self.target} {self._fmt_cost(cost)} · T {e.data.get('temperature', 0):.2f}"
        left = self.time_left(e.trial) if e.trial is not None and e.trial >= 0 else None
        if left is not None:
            text += f" · ETA {duration(left)}"
        self._line(text)

    def _on_trial_end(self, e) -> None:
        r = e.data["result"]
        started = self._trial_started.pop(e.trial, e.time)
        self._durations.append(float(r.get("time_s") or e.time - started))
        self.done = max(self.done + 1, completed_trials(self.run_dir))
        self._print(f"trial {e.trial:>3} done ({self.done}/{self.trials}): {params_text(r.get('params', {}))}  "
                    f"val {r['val_acc']:.2f}%  test {r['test_acc']:.2f}%  {self.target} "
                    f"{r['cost_display'][self.target]}  kept {100 * r.get('kept_fraction', 1):.0f}%  "
                    f"[{r['time_s']:.0f}s]" + (f"  ({r.get('stopped_early') or r['collapsed']}; not a front point)"
                                               if r.get("stopped_early") or r.get("collapsed") else ""))

    def _on_trial_failed(self, e) -> None:
        self._trial_started.pop(e.trial, None)
        self._print(f"trial {e.trial:>3} failed: {params_text(e.data.get('params', {}))}  {e.data['reason']}")

    def _on_warning(self, e) -> None:
        where = f"trial {e.trial}" if e.trial is not None else "baseline" if getattr(e, "baseline", None) else "study"
        self._print(f"{where}: warning: {e.data['message']}")

    def close(self) -> None:
        """Remove the live line (call when the study ends)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def params_text(params: dict) -> str:
    """``λ=0.274`` for the joint search; every parameter of other methods (``keep=0.5 bits=4``)."""
    shown = {k: v for k, v in params.items() if v is not None and not (k == "lambda2" and v == 0.0)}
    if set(shown) <= {"lambda"} and "lambda" in shown:
        return f"λ={shown['lambda']:.3g}"
    return " ".join(f"{'λ' if k == 'lambda' else k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in shown.items())


def progress_listener(stream=None, quiet: bool = False) -> Progress:
    """The progress display ``jointopt search`` and :func:`jointopt.search` attach."""
    return Progress(stream=stream, quiet=quiet)
