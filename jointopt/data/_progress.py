"""Progress of long preparation steps (downloads, decoding, feature extraction) on stderr.

On a terminal a :mod:`tqdm` bar (count, rate, time left, fitted to the terminal's width); anywhere
else (a log file, a CI job) a plain line per 10 %, so a log is not flooded with carriage returns.
"""
from __future__ import annotations

import sys
from typing import Optional

from .._terminal import terminal_bar


class Counter:
    """Reports ``label: done/total unit`` as work advances.

    Args:
        label: what is being done (``downloading cifar-10-python.tar.gz``).
        total: the amount of work; None when unknown (a server that sends no length): then only the
            terminal shows progress.
        unit: ``"B"`` counts bytes (shown as kB/MB), anything else is a plain count (``"clips"``).
        minimum: show nothing for a job smaller than this (it ends before anyone looks).
        quiet: show nothing.
        initial: work already done (a resumed download).
        stream: where to write (default ``sys.stderr``).
    """

    def __init__(self, label: str, total: Optional[int], unit: str, *, minimum: int = 1, quiet: bool = False,
                 initial: int = 0, stream=None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.shown = not quiet and (total is None or total >= minimum)
        self.last_decile = 10 * initial // total if total and initial else -1  # a resumed job: from where it was
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self._bar = None
        if self.shown and self.tty:
            self._bar = terminal_bar(self.stream, total=total, initial=initial, desc=label, unit=unit,
                                     unit_scale=unit == "B", unit_divisor=1000, leave=True)

    def update(self, done: int) -> None:
        """``done`` units of the total are finished (a running count, not an increment)."""
        if not self.shown:
            return
        if self.tty:
            if self._bar is not None:
                self._bar.update(done - self._bar.n)
                if self.total is not None and done >= self.total:
                    self.close()
            return
        if not self.total:
            return
        decile = 10 * done // self.total
        if decile > self.last_decile:
            self.last_decile = decile
            print(f"{self.label}: {self._amount(done)} ({100 * done // self.total} %)", file=self.stream, flush=True)

    def __enter__(self) -> "Counter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End the terminal's bar (a no-op off a terminal and when already closed)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _amount(self, done: int) -> str:
        if self.unit == "B":
            return f"{done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        return f"{done:,}/{self.total:,} {self.unit}"
