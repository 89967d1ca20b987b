"""Downloads with size and MD5 verification, resume, and atomic extraction.

A download goes to ``<file>.part``; an interrupted transfer is resumed with an HTTP ``Range``
request when the server honours it (``206``), and restarted otherwise. Only a file whose size and
MD5 match is renamed to its final name; a mismatching one is deleted. Archives are extracted into
a temporary folder next to the destination and renamed into place in one step, so a failure never
leaves a half-extracted data set behind.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DataError
from ._progress import Counter

CHUNK = 1 << 20
ATTEMPTS = 3  # transfers per fetch (the first plus retries that resume)
RETRY_WAIT_S = 1.0
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RemoteFile:
    """A file at an official location, with the size and MD5 it must have (None = not checked)."""

    url: str
    filename: str
    size: Optional[int] = None
    md5: Optional[str] = None


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _where_hint(remote: RemoteFile, folder: Path) -> str:
    return (f"download it yourself from {remote.url} and put it at {str(folder / remote.filename)!r} "
            "(or pass the folder that holds it with --data-dir / root=)")


def not_found(title: str, name: str, root: Path, folder: str, remote: RemoteFile) -> DataError:
    """The error for a data set that is neither extracted nor downloaded, and may not be fetched."""
    return DataError(
        f"{title} not found: expected the folder {str(root / name / folder)!r} or the file "
        f"{str(root / name / remote.filename)!r}. Download it with `jointopt data prepare {name} --root {root}` "
        f"(without --no-download), or fetch {remote.url} yourself and put it there"
    )


def verify(path: Path, remote: RemoteFile) -> None:
    """Raise DataError if ``path`` does not have the expected size and MD5."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise DataError(f"{str(path)!r} has {size:,} bytes, expected {remote.size:,}")
    if remote.md5 is not None:
        got = md5sum(path)
        if got != remote.md5:
            raise DataError(f"{str(path)!r} has MD5 {got}, expected {remote.md5}")


def fetch(remote: RemoteFile, folder: Path, *, quiet: bool = False) -> Path:
    """Return ``folder/remote.filename``, downloading and verifying it first if needed."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.filename
    if final.exists():
        try:
            verify(final, remote)
            return final
        except DataError as exc:
            raise DataError(f"{exc}; delete it to download again, or {_where_hint(remote, folder)}") from None
    part = final.with_name(final.name + ".part")
    last_error: Optional[BaseException] = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(RETRY_WAIT_S * attempt)
        try:
            _transfer(remote, part, quiet)
            last_error = None
            break
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, _Short) as exc:
            last_error = exc
            if isinstance(exc, urllib.error.HTTPError):
                if exc.code == 416:  # our partial file does not fit the server's: start over
                    part.unlink(missing_ok=True)
                elif 400 <= exc.code < 500:
                    break  # the file is not there; retrying will not help
        except OSError as exc:  # not the network: the disk (full, read-only)
            raise DataError(f"cannot write {str(part)!r}: {exc}; free some space or choose another --data-dir") from None
    if last_error is not None:
        have = part.stat().st_size if part.exists() else 0
        again = f"run the command again to resume from {str(part)!r}" if have else "try again later"
        raise DataError(f"download of {remote.url} failed after {have:,} bytes ({_describe(last_error)}); "
                        f"{again}, or {_where_hint(remote, folder)}")
    try:
        verify(part, remote)
    except DataError as exc:
        part.unlink(missing_ok=True)
        raise DataError(f"downloaded file is corrupt: {exc} (from {remote.url}); it was deleted. "
                        f"Try again, or {_where_hint(remote, folder)}") from None
    with open(part, "rb+") as handle:  # on disk before it takes the final name (a crash leaves the .part)
        os.fsync(handle.fileno())
    os.replace(part, final)
    return final


class _Short(Exception):
    """The server closed the connection before sending everything it announced."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the server: {exc.reason}"
    return str(exc) or type(exc).__name__


def _transfer(remote: RemoteFile, part: Path, quiet: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    if remote.size is not None and have >= remote.size:
        if have == remote.size:
            return
        part.unlink()
        have = 0
    headers = {"User-Agent": "jointopt-data/1"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(remote.url, headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        resumed = have and response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        if not resumed:
            have = 0
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length is not None else remote.size
        if not quiet:
            size = f" ({expected / 1e6:.1f} MB)" if expected else ""
            print(f"{'resuming' if have else 'downloading'} {remote.filename}{size}", file=sys.stderr, flush=True)
        with Counter(f"  {remote.filename}", expected, "B", quiet=quiet, initial=have) as progress, \
                open(part, "ab" if resumed else "wb") as out:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except http.client.IncompleteRead as exc:
                    out.write(exc.partial)
                    raise _Short(f"connection closed after {have + len(exc.partial):,} of {expected:,} bytes") from None
                if not chunk:
                    break
                out.write(chunk)
                have += len(chunk)
                progress.update(have)
    if expected is not None and have < expected:
        raise _Short(f"connection closed after {have:,} of {expected:,} bytes")


def extract(archive: Path, destination: Path, *, member: Optional[str] = None) -> Path:
    """Extract ``archive`` and move it into ``destination`` atomically.

    Args:
        member: the top-level folder inside the archive that becomes ``destination``; None when the
            archive has no top-level folder (its whole content becomes ``destination``).
    """
    if destination.exists():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".extract-"))
    try:
        try:
            _unpack(archive, tmp)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise DataError(f"cannot extract {str(archive)!r}: {exc}; delete it and download again") from None
        source = tmp / member if member else tmp
        if not source.is_dir():
            raise DataError(f"{str(archive)!r} does not contain the folder {member!r}; is it the right file?")
        os.replace(source, destination)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return destination


def _unpack(archive: Path, into: Path) -> None:
    name = archive.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            root = into.resolve()
            for info in zf.infolist():
                target = (into / info.filename).resolve()
                if root not in target.parents and target != root:
                    raise ValueError(f"unsafe path {info.filename!r} in archive")
            zf.extractall(into)
        return
    with tarfile.open(archive, "r:*") as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(into, filter="data")
        else:  # pragma: no cover - old Pythons without extraction filters
            for member in tf.getmembers():
                if member.name.startswith(("/", "..")) or "/../" in member.name:
                    raise ValueError(f"unsafe path {member.name!r} in archive")
            tf.extractall(into)


def find_or_fetch(title: str, name: str, root: Path, folder: str, remote: RemoteFile, download: bool) -> Path:
    """The extracted ``folder`` of data set ``name`` under ``root``: found, or extracted from a local
    archive, or downloaded (size and MD5 verified) and extracted; a clear error otherwise."""
    from ._cache import locate

    found = locate(root, name, folder)
    if found is not None:
        return found
    archive = locate(root, name, remote.filename)
    if archive is None and not download:
        raise not_found(title, name, root, folder, remote)
    archive = fetch(remote, archive.parent if archive is not None else root / name)
    return extract(archive, root / name / folder, member=folder)
