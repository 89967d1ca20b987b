"""Making, joining or resuming a run directory: everything checked before anything is written.

Several workers may be started at the same moment with the same command. Under one lock on the
folder (``.prepare.lock``) the first creates the study: it writes ``config.yaml`` and holds the
folder's live mark (:class:`jointopt._files.LiveMark`, a shared lock the system drops when the
process ends) for as long as it runs the study. A later worker that finds the study being run by a
live worker with the same configuration joins it, like a worker started with ``--resume`` (it waits
for the warm-up under the warm-up's own lock); one with another configuration is refused with the
differing keys named. A study nobody is running is only continued with ``--resume``, so an old run
directory is never reused by accident.

The inputs (data set, model, cost models: the study's ``preflight``) are checked before
``config.yaml`` is written; a folder this call made is removed again when they fail, so the corrected
command is not refused.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from .._files import LiveMark, file_lock, is_live
from ..config import Config
from ..errors import ConfigError
from . import rundir
from .rundir import RunDir


@dataclass
class Opened:
    """What opening a run directory decided: whether the study is continued (``--resume`` or joined),
    and the live mark this process holds while it runs the study (release it when done)."""

    resume: bool
    live: LiveMark


def open_run_dir(layout: RunDir, config: Config, *, resume: bool, shared: bool, storage_url: str,
                 argv: Optional[List[str]], preflight: Callable[[], None]) -> Opened:
    """Check the inputs, then make or join ``layout``'s folder and write its ``config.yaml`` and
    ``environment.json``.

    Args:
        resume: continue the study the folder holds (``--resume``).
        shared: the study lives in a storage several run directories (machines) share; a new folder
            may then join it.
        storage_url: that storage, checked for a study with another configuration before any write.
        preflight: loads the data set and checks the model and cost models (raises on a problem).

    Raises:
        ConfigError: a study nobody runs without ``--resume``, ``--resume`` of a folder without a
            study, or a configuration that differs from the study's.
    """
    folder = layout.path
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with file_lock(folder / rundir.PREPARE_LOCK):
            return _open_locked(layout, config, resume, shared, storage_url, argv, preflight)
    except BaseException:
        if created and not (folder / rundir.CONFIG).exists():  # nothing left to block a rerun
            (folder / rundir.PREPARE_LOCK).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _open_locked(layout: RunDir, config: Config, resume: bool, shared: bool, storage_url: str,
                 argv: Optional[List[str]], preflight: Callable[[], None]) -> Opened:
    folder = layout.path
    config_path = folder / rundir.CONFIG
    exists = config_path.exists()
    if exists and not resume:
        _join_live(folder, config, config_path)
        resume = True  # joined: from here on, like a worker started with --resume
    if resume and not exists and not shared:  # a shared storage's study is joined from a new folder
        raise ConfigError(f"--resume: {str(folder)!r} holds no study (no {rundir.CONFIG}); start one with --out")
    if shared:  # before anything is written: the database is reachable and its study has our config
        from .storage import refuse_mismatch

        refuse_mismatch(storage_url, config.tuner.study_name, config)
    preflight()  # before config.yaml: a wrong model, data set or cost model leaves nothing to block a rerun
    if exists:
        _refuse_changed(config, config_path)
    layout.write_config(config)
    live = LiveMark(folder / rundir.LIVE).hold()  # later workers see a study being run
    env = rundir.environment(config, argv)
    env_path = folder / rundir.ENVIRONMENT
    if env_path.exists():
        previous = json.loads(env_path.read_text())
        env["resumed"] = previous.get("resumed", []) + [env["started"]]
        env["started"] = previous.get("started", env["started"])
    rundir.write_json(env_path, env)
    return Opened(resume, live)


def _join_live(folder: Path, config: Config, config_path: Path) -> None:
    """A folder that already holds a study, met without ``--resume``: joined when a live worker runs it
    with this configuration (workers started together); refused otherwise."""
    if not is_live(folder / rundir.LIVE):
        raise ConfigError(f"run directory {str(folder)!r} already holds a study; pass --resume to continue it "
                          "or --out NEW_DIR to start another")
    from .storage import config_differences

    differ = config_differences(config.to_dict(), Config.from_yaml(config_path).to_dict())
    if differ:
        raise ConfigError(f"run directory {str(folder)!r} holds a study another worker is running with a "
                          f"different configuration ({', '.join(differ[:8])}); give this worker the same "
                          "--config and --set, or --out NEW_DIR")


def _refuse_changed(config: Config, config_path: Path) -> None:
    """Continuing a study with another configuration is refused; only ``tuner.trials`` (and the
    per-process ``device`` and ``threads``) may change."""
    saved = Config.from_yaml(config_path)
    if saved.to_dict() == config.to_dict():
        return
    changed = [k for k, v in config.to_dict().items() if saved.to_dict().get(k) != v]
    only_trials = set(changed) <= {"tuner", "device", "threads"} and \
        {k for k, v in config.tuner.__dict__.items() if getattr(saved.tuner, k) != v} <= {"trials"}
    if not only_trials:
        raise ConfigError(f"--resume: the configuration differs from the one in {str(config_path)!r} "
                          f"(sections: {', '.join(changed)}); resume without --config/overrides, "
                          "or start a new run directory")
