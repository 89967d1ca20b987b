"""Low-level TensorBoard writing: PNG image summaries, and the study run shared by several processes.

Every worker of a study may refresh the study-level run. Appending to one event file from several
processes would interleave records, and TensorBoard reads the event files of a run in name order,
so each refresh writes a complete new file, under an inter-process lock, whose name sorts after
every earlier one (``events.out.tfevents.<time>.<sequence>.jointopt``), and renames it into place
only when complete.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
from pathlib import Path
from typing import List

from .._files import atomic_write_bytes, atomic_write_text, file_lock


def image_summary(tag: str, png: bytes):
    """A ``Summary`` holding an already encoded PNG (no decode/re-encode round trip)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from PIL import Image
    import io

    width, height = Image.open(io.BytesIO(png)).size
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(height=height, width=width, colorspace=3,
                                                                       encoded_image_string=png))])


class StudyEvents:
    """``with StudyEvents(folder) as (state, events):`` — lock, read ``state``, queue summaries, write once.

    ``state`` is a small dict persisted next to the folder (what was written last, by any process);
    ``events.add(summary, step)`` queues a summary; on a clean exit the queued summaries become one
    new event file.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.lock_path = self.folder.with_name(self.folder.name + ".lock")
        self.state_path = self.folder.with_name(self.folder.name + ".json")
        self._queue: List[tuple] = []

    def add(self, summary, step: int) -> None:
        self._queue.append((summary, int(step)))

    def __enter__(self):
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(file_lock(self.lock_path))
        try:
            self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        except json.JSONDecodeError:
            self.state = {}
        return self.state, self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None and self._queue:
                self._write()
                atomic_write_text(self.state_path, json.dumps(self.state))
        finally:
            self._lock.close()

    def _write(self) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        stamp = max(int(time.time()), int(self.state.get("stamp", 0)))
        sequence = int(self.state.get("sequence", 0)) + 1
        self.state.update(stamp=stamp, sequence=sequence)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{stamp:010d}.{sequence:08d}.{socket.gethostname()}.{os.getpid()}.jointopt"
        buffer = io.BytesIO()  # the whole file, then renamed into place (the temporary name has no "tfevents")
        writer = RecordWriter(buffer)
        now = time.time()
        writer.write(event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
        for summary, step in self._queue:
            writer.write(event_pb2.Event(wall_time=now, step=step, summary=summary).SerializeToString())
        writer.flush()
        atomic_write_bytes(self.folder / name, buffer.getvalue())
        self._queue.clear()
