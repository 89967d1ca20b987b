"""Files that are never half written, and a lock between processes.

Every file jointopt writes (run directory, checkpoints, exports, reports, caches) goes through
:func:`atomic_write_bytes`, :func:`atomic_write_text` or :func:`atomic_path`: a reader sees either
the old file or the complete new one. The data are written to a temporary file in the same folder,
flushed to disk, and renamed over the target; on any error the temporary file is removed.

New files get the permissions a plain ``open(path, "w")`` would give them (0666 less the umask, applied
by the system when the temporary file is created), not the 0600 of :func:`tempfile.mkstemp`, so a
shared run directory stays readable by the group.

:func:`file_lock` is an exclusive lock between processes (the ``filelock`` package: POSIX and Windows);
:class:`LiveMark` marks a folder as in use by a live process (:func:`is_live`).
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator, Union

import filelock

try:
    import fcntl as _fcntl
except ImportError:  # Windows: no flock, see LiveMark
    _fcntl = None

PathLike = Union[str, "os.PathLike[str]"]


def _temporary(folder: Path) -> Path:
    """A new empty file in ``folder`` with mode 0666 less the umask.

    Its name does not contain the target's: a watcher such as TensorBoard, which picks up any file
    whose name holds "tfevents", must not read a half-written file. (Reading the umask with
    ``os.umask`` would set it to 0 for a moment, for every thread of the process.)
    """
    while True:
        tmp = folder / f".jointopt-{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:  # 48 random bits taken: draw again
            continue


@contextlib.contextmanager
def atomic_path(path: PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    For writers that want a file name (``onnx.save``, ``numpy.savez``, a compiler): write to the
    yielded path; it is fsynced and renamed over ``path`` when the block ends without an error,
    and removed otherwise. ``mode`` sets the file's permissions (default: 0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path.parent)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: PathLike, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (see the module's docstring)."""
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: PathLike, text: str, *, mode: int | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


@contextlib.contextmanager
def file_lock(path: PathLike, timeout: float = -1) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) between processes; wait for it by default."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path), timeout=timeout):
        yield


class LiveMark:
    """A mark that a process is alive and using a folder: a shared lock on one file, held while the
    process works there and dropped by the system when it exits, however it exits (a kill -9 too).

    Any number of processes hold it at once; :func:`is_live` tells whether any other does. This is how
    a worker started at the same moment as another knows the study it finds is being run, not left
    behind. Where the system has no ``flock`` (Windows) nothing is held and nothing is ever live.
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    def hold(self) -> "LiveMark":
        if self._fd is None and _fcntl is not None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            _fcntl.flock(fd, _fcntl.LOCK_SH)
            self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __del__(self):
        self.release()


def is_live(path: PathLike) -> bool:
    """Whether some process holds a :class:`LiveMark` on ``path`` through another open of the file."""
    if _fcntl is None or not Path(path).exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
