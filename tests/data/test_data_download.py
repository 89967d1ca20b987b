"""The download path end to end against a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional

import pytest
from data_formats import md5, tar_gz

from jointopt.data import _cifar10, _download, _tinyimagenet, get_dataset
from jointopt.data._download import RemoteFile, fetch
from jointopt.errors import DataError


@pytest.fixture
def cifar_archive(tmp_path, write_cifar):
    """The fixture CIFAR-10 folder packed as the official tar.gz (and the folder removed)."""
    source = tmp_path / "source"
    write_cifar(source)
    blob = tar_gz(source / _cifar10.FOLDER)
    return blob


def serve_cifar(monkeypatch, server, blob: bytes, *, checksum: Optional[str] = None):
    server.files["/cifar-10-python.tar.gz"] = blob
    remote = RemoteFile(server.url("/cifar-10-python.tar.gz"), "cifar-10-python.tar.gz", len(blob), checksum or md5(blob))
    monkeypatch.setattr(_cifar10, "ARCHIVE", remote)


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verify_extract_and_load(tmp_path, monkeypatch, file_server, cifar_archive, capsys):
    serve_cifar(monkeypatch, file_server, cifar_archive)
    root = tmp_path / "data"
    ds = get_dataset("cifar10", root)
    assert len(ds.test) == 4
    assert leftovers(root / "cifar10") == ["cache.pt", "cifar-10-batches-py", "cifar-10-python.tar.gz"]
    assert "cifar-10-python.tar.gz" in capsys.readouterr().err  # the progress line
    assert len(file_server.requests) == 1
    get_dataset("cifar10", root)  # cached: no second download
    assert len(file_server.requests) == 1


def test_bad_checksum_is_an_error_and_leaves_nothing(tmp_path, monkeypatch, file_server, cifar_archive):
    serve_cifar(monkeypatch, file_server, cifar_archive, checksum="0" * 32)
    root = tmp_path / "data"
    with pytest.raises(DataError, match=r"corrupt.*MD5.*expected 0{32}.*--data-dir"):
        get_dataset("cifar10", root)
    assert leftovers(root / "cifar10") == []


def test_interrupted_transfer_without_range_support_fails_cleanly(tmp_path, monkeypatch, file_server, cifar_archive):
    serve_cifar(monkeypatch, file_server, cifar_archive)
    file_server.ranges = False
    file_server.truncate = 99
    root = tmp_path / "data"
    with pytest.raises(DataError, match="failed after .* bytes.*resume"):
        get_dataset("cifar10", root)
    assert len(file_server.requests) == _download.ATTEMPTS
    assert leftovers(root / "cifar10") == ["cifar-10-python.tar.gz.part"]  # no archive, no half data set
    file_server.truncate = 0
    assert len(get_dataset("cifar10", root).test) == 4  # a later run completes


def test_interrupted_transfer_resumes_with_range(tmp_path, monkeypatch, file_server, cifar_archive):
    serve_cifar(monkeypatch, file_server, cifar_archive)
    file_server.truncate = 1
    ds = get_dataset("cifar10", tmp_path)
    assert len(ds.train) + len(ds.val) == 20
    (_, first), (_, second) = file_server.requests
    assert first is None and second == f"bytes={len(cifar_archive) // 2}-"


def test_server_ignoring_range_restarts_from_zero(tmp_path, monkeypatch, file_server):
    blob = bytes(range(256)) * 40
    file_server.files["/f.bin"] = blob
    file_server.ranges = False
    file_server.truncate = 1
    path = fetch(RemoteFile(file_server.url("/f.bin"), "f.bin", len(blob), md5(blob)), tmp_path, quiet=True)
    assert path.read_bytes() == blob and file_server.requests[1][1] is not None


def test_missing_file_on_the_server_is_reported_once(tmp_path, file_server):
    with pytest.raises(DataError, match="HTTP 404.*put it at"):
        fetch(RemoteFile(file_server.url("/nope.tar.gz"), "nope.tar.gz", 10, None), tmp_path, quiet=True)
    assert len(file_server.requests) == 1


def test_corrupt_archive_with_matching_checksum_leaves_no_half_extraction(tmp_path, monkeypatch, file_server,
                                                                        cifar_archive):
    broken = cifar_archive[: len(cifar_archive) * 2 // 3]
    serve_cifar(monkeypatch, file_server, broken)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="cannot extract"):
        get_dataset("cifar10", root)
    assert leftovers(root / "cifar10") == ["cifar-10-python.tar.gz"]  # no folder, no .extract-* temp


def test_zip_download_for_tinyimagenet(tmp_path, monkeypatch, file_server, write_tinyimagenet):
    folder = write_tinyimagenet(tmp_path / "source")
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    blob = archive.read_bytes()
    file_server.files["/tiny-imagenet-200.zip"] = blob
    monkeypatch.setattr(_tinyimagenet, "ARCHIVE",
                        RemoteFile(file_server.url("/tiny-imagenet-200.zip"), "tiny-imagenet-200.zip", len(blob), md5(blob)))
    ds = get_dataset("tinyimagenet", tmp_path / "data", val_fraction=0.34)
    assert len(ds.test) == 2 and (tmp_path / "data" / "tinyimagenet" / "tiny-imagenet-200" / "wnids.txt").is_file()


def test_existing_archive_with_wrong_size_is_not_used(tmp_path, monkeypatch, file_server, cifar_archive):
    serve_cifar(monkeypatch, file_server, cifar_archive)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(cifar_archive[:100])
    with pytest.raises(DataError, match="delete it to download again"):
        get_dataset("cifar10", tmp_path)
    assert file_server.requests == []
