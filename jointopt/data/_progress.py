"""Progress of long preparation steps on stderr: one rewritten line on a terminal, else a line per 10 %."""
from __future__ import annotations

import sys


class Counter:
    """Reports ``label: done/total unit``; silent when ``total`` is below ``minimum``."""

    def __init__(self, label: str, total: int, unit: str, *, minimum: int = 1, quiet: bool = False):
        self.label, self.total, self.unit = label, total, unit
        self.shown = total >= minimum and not quiet
        self.tty = sys.stderr.isatty()
        self.last_decile = -1

    def update(self, done: int) -> None:
        if not self.shown:
            return
        line = f"{self.label}: {done:,}/{self.total:,} {self.unit}"
        final = done >= self.total
        if self.tty:
            print(f"\r{line}", end="\n" if final else "", file=sys.stderr, flush=True)
            return
        decile = 10 * done // max(self.total, 1)
        if decile > self.last_decile:
            self.last_decile = decile
            print(line, file=sys.stderr, flush=True)
