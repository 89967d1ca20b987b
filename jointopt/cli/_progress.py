"""Progress on the terminal: one live line on a TTY, a line per finished trial otherwise."""
from __future__ import annotations

import sys
import time

from ..train.events import Event


class Progress:
    def __init__(self, stream=None, trials: int = 0, target: str = "memory", quiet: bool = False):
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty() and not quiet
        self.quiet = quiet
        self.trials, self.target = trials, target
        self.phase_epochs = {}
        self.started = time.time()
        self.done = 0
        self._cost_model = None

    def _fmt_cost(self, value):
        from ..cost import get_cost_model

        if self._cost_model is None:
            self._cost_model = get_cost_model(self.target)
        return self._cost_model.format(value)

    def _line(self, text: str) -> None:
        if self.live:
            self.stream.write("\r\033[K" + text[:150])
            self.stream.flush()

    def _print(self, text: str) -> None:
        if self.quiet:
            return
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, e: Event) -> None:
        elapsed = time.time() - self.started
        if e.kind == "study_start":
            self.trials, self.target = e.data["trials"], e.data["target"]
            self._print(f"jointopt: study in {e.data['run_dir']} — {self.trials} trials, target {self.target}")
        elif e.kind == "warmup_cached":
            self._print(f"warm-up: reused cached network (val {e.data['val_acc']:.2f}%)")
        elif e.kind == "phase_start":
            self.phase_epochs[e.phase] = e.data.get("epochs")
            if e.phase == "warmup":
                self._print("warm-up: training the float network once; every trial starts from it")
        elif e.kind == "phase_end" and e.phase == "warmup":
            self._print(f"warm-up: done, val {e.data['val_acc']:.2f}%")
        elif e.kind == "baseline":
            self._print(f"baseline {e.data['name']:>5}: val {e.data['val_acc']:.2f}%  test {e.data['test_acc']:.2f}%"
                        + (f"  {self.target} {self._fmt_cost(e.data['costs'][self.target])}"
                           if self.target in e.data.get("costs", {}) else ""))
        elif e.kind == "epoch":
            where = f"trial {e.trial}" if e.trial is not None and e.trial >= 0 else (
                "warm-up" if e.phase == "warmup" else f"baseline w{-e.trial}" if e.trial is not None else "")
            cost = e.data.get(f"hard_cost/{self.target}")
            text = (f"[{elapsed:6.0f}s] {where} · {e.phase} {e.epoch + 1}/{self.phase_epochs.get(e.phase, '?')}"
                    f" · loss {e.data.get('loss', float('nan')):.3f} · val {e.data.get('val_acc', 0):.1f}%")
            if cost is not None:
                text += f" · {self.target} {self._fmt_cost(cost)} · T {e.data.get('temperature', 0):.2f}"
            self._line(text)
        elif e.kind == "trial_end":
            self.done += 1
            r = e.data["result"]
            self._print(f"trial {e.trial:>3} done ({self.done}/{self.trials}): λ={r['params']['lambda']:.3g}  "
                        f"val {r['val_acc']:.2f}%  test {r['test_acc']:.2f}%  {self.target} "
                        f"{r['cost_display'][self.target]}  kept {100 * r.get('kept_fraction', 1):.0f}%  "
                        f"[{r['time_s']:.0f}s]")

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
