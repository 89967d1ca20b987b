"""A listener that runs in its own process, so that drawing figures does not hold up training.

Drawing TensorBoard's allocation images (a matplotlib figure per search epoch) took about a quarter
of the quickstart's wall time in the training process (measured: 90.7 s with it, 69.7 s without,
``python -m benchmarks quickstart``). :class:`BackgroundListener` starts the real listener in a
child process and sends it every event, pickled, through a queue; on a machine with a core to spare
the figures are drawn while the next epoch trains. ``close()`` waits until the child has handled
every event and closed the listener, so the files are complete when the study returns.

The child stops by itself when the parent process is gone (killed), so it never lingers. It is
started at the first event (a command refused before its study starts never starts one) with
SIGINT ignored: Ctrl-C in a terminal reaches the whole process group, and the study's process, which
handles it, closes the child; the child itself never prints a KeyboardInterrupt traceback.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue as queue_module
import signal
import sys
import threading
import warnings
from typing import Any, Callable

CLOSE_TIMEOUT_S = 600.0  # the most ``close()`` waits for the child to catch up


def _serve(events, factory: Callable[..., Any], args: tuple, kwargs: dict, parent: int) -> None:
    listener = factory(*args, **kwargs)
    failed = set()
    try:
        while True:
            try:
                blob = events.get(timeout=2.0)
            except queue_module.Empty:
                if os.getppid() != parent:  # the study's process is gone: nothing more will come
                    return
                continue
            if blob is None:
                return
            event = pickle.loads(blob)
            try:
                listener(event)
            except Exception as exc:  # noqa: BLE001 - said once per kind, never silenced
                if event.kind not in failed:
                    failed.add(event.kind)
                    print(f"jointopt: {type(listener).__name__} failed on a {event.kind!r} event: {exc!r}",
                          file=sys.stderr)
    finally:
        close = getattr(listener, "close", None)
        if callable(close):
            close()


class BackgroundListener:
    """``BackgroundListener(factory, *args, **kwargs)``: ``factory(*args, **kwargs)`` built and run in a child.

    ``listener(event)`` pickles the event (an unpicklable one raises here, in the study's process,
    where the event bus reports it) and returns at once; ``close()`` waits for the child.
    """

    def __init__(self, factory: Callable[..., Any], *args, **kwargs):
        context = mp.get_context("spawn")  # no fork of a process that holds torch's thread pools
        self._events = context.Queue()
        self._process = context.Process(target=_serve, args=(self._events, factory, args, kwargs, os.getpid()),
                                        name=f"jointopt-{getattr(factory, '__name__', 'listener')}", daemon=True)
        self._started = self._closed = False

    def _start(self) -> None:
        """Start the child with SIGINT ignored (inherited through the spawn; Python keeps it ignored)."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            self._process.start()
        finally:
            if main:
                signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        self._started = True

    def __call__(self, event) -> None:
        if self._closed:
            raise RuntimeError("the background listener is closed")
        blob = pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)  # an unpicklable event raises here
        if not self._started:
            self._start()
        self._events.put(blob)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._started:  # no event came: no child was started
            self._events.close()
            return
        self._events.put(None)
        self._process.join(CLOSE_TIMEOUT_S)
        if self._process.is_alive():
            self._process.terminate()
            warnings.warn(f"{self._process.name} did not finish within {CLOSE_TIMEOUT_S:.0f} s; stopped it",
                          RuntimeWarning, stacklevel=2)
        elif self._process.exitcode != 0:
            warnings.warn(f"{self._process.name} exited with code {self._process.exitcode}; its files may be "
                          "incomplete", RuntimeWarning, stacklevel=2)
        self._events.close()
