"""jointopt._files: atomic writes (old or whole new file, never half), ordinary permissions, one lock."""
import multiprocessing as mp
import os
import stat
from pathlib import Path

import pytest
import torch

from jointopt import _files
from jointopt._files import atomic_path, atomic_write_bytes, atomic_write_text, file_lock



def _no_space(*args):
    """``os.replace`` on a full disk: every atomic write fails at its rename, after the data were written."""
    raise OSError(28, "No space left on device")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_a_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")

    monkeypatch.setattr(_files.os, "replace", _no_space)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_files_get_the_umask_permissions_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "x.txt", "x")
        assert _mode(tmp_path / "x.txt") == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "y.txt", "y")
        assert _mode(tmp_path / "y.txt") == 0o600
        atomic_write_text(tmp_path / "z.txt", "z", mode=0o640)
        assert _mode(tmp_path / "z.txt") == 0o640
    finally:
        os.umask(old)


def test_writing_never_touches_the_process_umask(tmp_path, monkeypatch):
    """Reading the umask with os.umask sets it to 0 for a moment, for every thread (a TensorBoard
    writer, a data loader thread creating a file then would make it world-writable)."""
    def no_umask(*args):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", no_umask)
    atomic_write_text(tmp_path / "x.txt", "x")
    assert (tmp_path / "x.txt").read_text() == "x"


def test_checkpoints_and_run_files_are_0644_under_umask_022(tmp_path):
    from jointopt.train.checkpoint import save_checkpoint
    from jointopt.tune.rundir import write_json

    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "checkpoint.pt", {"w": torch.ones(2)})
        write_json(tmp_path / "result.json", {"a": 1})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "checkpoint.pt") == 0o644 and _mode(tmp_path / "result.json") == 0o644


def _hold(path, holding, release):
    with file_lock(path):
        holding.set()
        release.wait(30)


def test_the_lock_excludes_another_process(tmp_path):
    ctx = mp.get_context("spawn")
    holding, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path / "x.lock"), holding, release))
    child.start()
    try:
        assert holding.wait(60), "the child never took the lock"
        import filelock

        with pytest.raises(filelock.Timeout):
            with file_lock(tmp_path / "x.lock", timeout=0):  # one try: the child holds it until released
                pass
        release.set()
        child.join(30)
        with file_lock(tmp_path / "x.lock", timeout=5):  # free once the holder let go
            pass
    finally:
        release.set()
        child.join(5)


def test_there_is_one_lock():
    """The run directory's lock (importable from jointopt.tune.rundir as before) is jointopt._files'."""
    from jointopt.tune import rundir

    assert rundir.file_lock is file_lock


@pytest.fixture
def renamed(monkeypatch):
    """The paths jointopt._files renamed into place during the test (a spy on its ``os.replace``)."""
    paths = set()
    replace = os.replace

    def spy(src, dst):
        paths.add(Path(dst).resolve())
        replace(src, dst)

    monkeypatch.setattr(_files.os, "replace", spy)
    return paths


@pytest.mark.parametrize("fmt", ["torch", "onnx", "onnx_int8", "npz", "c"])
def test_every_export_format_writes_through_the_helper(tmp_path, renamed, fmt):
    """Every file an export leaves in its folder was renamed into place by jointopt._files.

    A writer that bypassed the helper (``open(path, "w")``, ``onnx.save``, ``np.savez(path)``)
    would leave a file that no atomic rename produced.
    """
    import jointopt
    from jointopt.export import export

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(64, 3))
    x = torch.randn(8, 1, 6, 6)
    frozen = jointopt.convert(model.eval(), x).eval().set_mode("hard").freeze().eval()
    out = tmp_path / "export"
    export(frozen, out, x, fmt)
    written = {p.resolve() for p in out.rglob("*") if p.is_file()}
    assert written and written <= renamed, sorted(p.name for p in written - renamed)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory written by a real one-trial study under umask 022 (about 10 s)."""
    import jointopt
    from tiny import tiny_config

    run = tmp_path_factory.mktemp("files") / "run"
    config = tiny_config(data={"limit_train": 64}, warmup={"epochs": 1, "max_steps": 2},
                         search={"epochs": 1, "max_steps": 2}, finetune={"epochs": 1, "max_steps": 1},
                         tuner={"trials": 1, "baselines": [8]})
    old = os.umask(0o022)
    try:
        jointopt.search(config, run, progress=False)
    finally:
        os.umask(old)
    return run


def test_every_file_of_a_study_is_0644_under_umask_022(tiny_run):
    files = [p for p in tiny_run.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"config.yaml", "front.json", "result.json", "frozen.pt", "searchable.pt"} <= names, names
    assert {str(p.relative_to(tiny_run)): oct(_mode(p)) for p in files if _mode(p) != 0o644} == {}
    assert not [p for p in files if p.name.startswith(".jointopt-")]  # no temporary left behind


def test_every_report_file_is_written_through_the_helper(tiny_run, tmp_path, renamed, monkeypatch):
    """PNG, CSV and HTML of ``write_report`` come from an atomic rename; when the rename fails, the
    previous report stays as it was and no temporary is left."""
    from jointopt.report import write_report

    out = tmp_path / "report"
    files = write_report(tiny_run, out=out, tensorboard=False)
    written = {p.resolve() for p in out.rglob("*") if p.is_file()}
    assert {files.html.name, files.pareto_png.name, files.pareto_csv.name} <= {p.name for p in written}
    assert any(p.name == "allocation.png" for p in written)
    assert written and written <= renamed, sorted(str(p) for p in written - renamed)

    before = {p: p.read_bytes() for p in written}

    monkeypatch.setattr(_files.os, "replace", _no_space)
    with pytest.raises(OSError, match="No space"):
        write_report(tiny_run, out=out, tensorboard=False, log_cost=True)
    assert {p: p.read_bytes() for p in written} == before
    assert {p.resolve() for p in out.rglob("*") if p.is_file()} == written
