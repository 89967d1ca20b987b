"""A listener that runs in its own process, so that drawing figures does not hold up training.

Drawing TensorBoard's allocation images (a matplotlib figure per search epoch) took about a quarter
of the quickstart's wall time in the training process (measured: 90.7 s with it, 69.7 s without,
``python -m benchmarks quickstart``). :class:`BackgroundListener` starts the real listener in a
child process and sends it every event, pickled, through a queue; on a machine with a core to spare
the figures are drawn while the next epoch trains. ``close()`` waits until the child has handled
every event and closed the listener, so the files are complete when the study returns.

The child stops by itself when the parent process is gone (killed), so it never lingers.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue as queue_module
import sys
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
        self._process.start()
        self._closed = False

    def __call__(self, event) -> None:
        if self._closed:
            raise RuntimeError("the background listener is closed")
        self._events.put(pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
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
