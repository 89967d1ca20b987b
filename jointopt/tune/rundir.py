"""The run directory: its layout, reading and writing it, and the listeners that write per-trial files.

:class:`RunDir` is the one place that knows where each file of a run directory lives and how it is
read and written; the study, ``jointopt report``, ``jointopt export`` and ``load_trial`` all go
through it, and a missing or unreadable run directory is always the same :class:`RunDirError`.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Dict, List, Optional

from .._files import atomic_write_text, file_lock  # file_lock: still importable from here
from ..errors import ConfigError, ExportError
from ..results import (BaselineResult, ResultError, StudyResult, TrialResult, baselines_from_json, baselines_to_json,
                       to_plain)
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..train.events import Event

CONFIG = "config.yaml"
STUDY_DB = "study.db"
ENVIRONMENT = "environment.json"
DATASET = "dataset.json"
BASELINES = "baselines.json"
PARETO_CSV = "pareto.csv"
FRONT_JSON = "front.json"
LOG = "search.log"
PREPARE_LOCK = ".prepare.lock"  # held while a worker checks and writes config.yaml
ASK_LOCK = ".ask.lock"  # held while a worker counts the trials and asks for the next
LIVE = ".live"  # a shared lock held by every worker running the study (jointopt._files.LiveMark)
TRIALS = "trials"
WARMUP = "warmup"
BASELINE_RUNS = "baselines"  # baselines/<name>/metrics.jsonl: the uniform baselines' epochs
# in trials/<n>/
RESULT = "result.json"
METRICS = "metrics.jsonl"
ALLOCATION = "allocation.jsonl"
# and checkpoint.pt while the trial runs: its name is the runner's, jointopt.train.phases.CHECKPOINT
SEARCHABLE = "searchable.pt"
FROZEN = "frozen.pt"
FAILURE = "failure.json"


class RunDirError(ConfigError, ExportError):
    """A run directory is missing, incomplete or unreadable. One type for every reader (the study,
    ``report``, ``export``, ``load_trial``), caught as a :class:`ConfigError` or an :class:`ExportError`."""


def trial_dir(run: Path, number: int) -> Path:
    return RunDir(run).trial_dir(number)


class RunDir:
    """One run directory: where its files are, and how they are read and written.

    Example::

        run = RunDir("runs/a").check()          # RunDirError unless it holds a study
        run.config().cost.target                # the resolved Config of config.yaml
        run.results()                           # trial number → TrialResult (trials/<n>/result.json)
        run.front().front                       # the StudyResult of front.json (once the study ended)
    """

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- layout ------------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    def trial_dir(self, number: int) -> Path:
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"a trial number is a non-negative integer, got {number!r}")
        return self.path / TRIALS / str(number)

    def trial_file(self, number: int, name: str) -> Path:
        return self.trial_dir(number) / name

    def baseline_dir(self, name: str) -> Path:
        """Where the training of uniform baseline ``name`` (``w8``, ...) leaves its per-epoch metrics."""
        return self.path / BASELINE_RUNS / name

    def warmup_path(self, key: str) -> Path:
        return self.path / WARMUP / f"{key}.pt"

    def trial_numbers(self) -> List[int]:
        """Numbers of the trial directories, in order (a directory does not mean a completed trial)."""
        folder = self.path / TRIALS
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []

    def completed(self) -> List[int]:
        """Trials whose ``result.json`` exists."""
        return [n for n in self.trial_numbers() if self.trial_file(n, RESULT).is_file()]

    # -- reading -----------------------------------------------------------------------------------
    def check(self) -> "RunDir":
        """``self``, or :class:`RunDirError` when the folder is not a run directory of ``jointopt search``."""
        if not self.path.is_dir():
            self._refuse("it does not exist")
        if not self.config_path.is_file():
            self._refuse(f"no {CONFIG}")
        return self

    def _refuse(self, why: str):
        raise RunDirError(f"{str(self.path)!r} is not a jointopt run directory ({why}); pass the --out folder "
                          "of `jointopt search`")

    def read_json(self, path: Path, what: Optional[str] = None):
        """The JSON of ``path``; :class:`RunDirError` naming it when it is missing or not JSON."""
        try:
            return json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise RunDirError(f"{str(self.path)!r} has no {what or Path(path).name}") from None
        except (OSError, ValueError) as exc:
            raise RunDirError(f"cannot read {str(path)!r}: {type(exc).__name__}: {exc}") from None

    def config_dict(self) -> dict:
        """``config.yaml`` as it is written (no defaults filled in): what a report of any version reads."""
        import yaml

        self.check()
        try:
            data = yaml.safe_load(self.config_path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise RunDirError(f"cannot read {str(self.config_path)!r}: {' '.join(str(exc).split())}") from None
        return data if isinstance(data, dict) else {}

    def config(self):
        """The resolved :class:`~jointopt.config.Config` of ``config.yaml``."""
        from ..config import Config

        self.check()
        return Config.from_yaml(self.config_path)

    def dataset(self) -> dict:
        """``dataset.json`` (input shape, classes, preprocessing), or {} before the study wrote it."""
        path = self.path / DATASET
        return self.read_json(path) if path.is_file() else {}

    def result(self, number: int) -> TrialResult:
        """Trial ``number``'s result; :class:`RunDirError` naming the completed trials when it has none."""
        path = self.trial_file(number, RESULT)
        if not path.is_file():
            done = self.completed()
            raise RunDirError(f"trial {number} of {str(self.path)!r} has no result; completed trials: "
                              f"{done or 'none'}")
        return self._trial_result(path, number)

    def _trial_result(self, path: Path, number: int, tolerant: bool = False) -> Optional[TrialResult]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            if tolerant:  # a file being replaced as it is read: the next read has it
                return None
            raise RunDirError(f"cannot read {str(path)!r}: {type(exc).__name__}: {exc}") from None
        try:
            result = TrialResult.from_json(data)
        except ResultError as exc:  # never skipped: a newer jointopt's file says to upgrade
            raise RunDirError(f"{str(path)!r}: {exc}") from None
        if result.trial != number:
            raise RunDirError(f"{str(path)!r} holds the result of trial {result.trial}, not of trial {number}")
        return result

    def complete_result(self, number: int) -> Optional[TrialResult]:
        """Trial ``number``'s result when its ``result.json`` is complete and its frozen network saved,
        else None (never raises): what ``--resume`` trusts about a trial the study did not hear the end of."""
        try:
            result = self.result(number)
        except RunDirError:
            return None
        files = (self.trial_file(number, SEARCHABLE), self.trial_file(number, FROZEN))
        return result if all(p.is_file() for p in files) else None

    def results(self, strict: bool = True) -> Dict[int, TrialResult]:
        """Trial number → result of every ``trials/<n>/result.json``. ``strict=False`` skips files that
        are not JSON (a report of a study still running) instead of raising; a record of a newer
        version is always an error."""
        out: Dict[int, TrialResult] = {}
        for number in self.completed():
            result = self._trial_result(self.trial_file(number, RESULT), number, tolerant=not strict)
            if result is not None:
                out[number] = result
        return out

    def baselines(self) -> Dict[str, BaselineResult]:
        """``baselines.json``: name → baseline (empty before the study trained them)."""
        path = self.path / BASELINES
        if not path.is_file():
            return {}
        try:
            return baselines_from_json(self.read_json(path))
        except ResultError as exc:
            raise RunDirError(f"{str(path)!r}: {exc}") from None

    def front(self, tolerant: bool = False) -> Optional[StudyResult]:
        """``front.json``: the study's front, results, baselines and failed trials (once it ended).
        ``tolerant``: None instead of an error when the study has not written it yet, or it is not
        JSON (being replaced); a record of a newer version is always an error."""
        path = self.path / FRONT_JSON
        self.check()
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            if tolerant:
                return None
            raise RunDirError(f"{str(self.path)!r} has no {FRONT_JSON} (the study has not finished): pass --trial N "
                              "to export a completed trial") from None
        except (OSError, ValueError) as exc:
            if tolerant:
                return None
            raise RunDirError(f"{str(path)!r} is not valid JSON: {exc}") from None
        try:
            return StudyResult.from_json(data)
        except ResultError as exc:
            raise RunDirError(f"{str(path)!r}: {exc}") from None

    # -- writing -----------------------------------------------------------------------------------
    def write_json(self, path: Path, data) -> Path:
        write_json(path, data)
        return path

    def write_config(self, config) -> None:
        atomic_write_text(self.config_path, config.to_yaml())

    def write_result(self, result: TrialResult) -> Path:
        return self.write_json(self.trial_file(result.trial, RESULT), result.to_json())

    def write_baselines(self, baselines: Dict[str, BaselineResult]) -> Path:
        return self.write_json(self.path / BASELINES, baselines_to_json(baselines))

    def write_front(self, summary: StudyResult) -> Path:
        return self.write_json(self.path / FRONT_JSON, summary.to_json())


def default_run_dir(root: str = "runs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / stamp
    i = 1
    while path.exists():
        path = Path(root) / f"{stamp}-{i}"
        i += 1
    return path


def write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=to_plain) + "\n")


def environment(config, argv=None) -> dict:
    import numpy
    import optuna
    import torch

    from .. import __version__

    return {
        "jointopt": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "optuna": optuna.__version__, "numpy": numpy.__version__, "platform": platform.platform(),
        "host": socket.gethostname(), "threads": config.threads or torch.get_num_threads(), "device": config.device,
        "seed": config.seed, "command": " ".join(argv if argv is not None else sys.argv),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }


class MetricsWriter:
    """Appends every epoch event of a trial to ``trials/<n>/metrics.jsonl``.

    The end of a search adds one row with ``"phase": "freeze"`` at the kept epoch: validation accuracy
    in soft and in hard (argmax) mode, their gap and the selector entropy when the allocation was frozen.
    """

    def __init__(self, run: Path):
        self.run = Path(run)

    def __call__(self, event: Event) -> None:
        if event.trial is None and event.baseline is None:
            return
        if event.kind == "epoch":
            row = {"phase": event.phase, "epoch": event.epoch, "time": round(event.time, 3), **event.data}
        elif event.kind == "phase_end" and event.phase == "search" and "soft_hard_gap" in event.data:
            data = dict(event.data)
            row = {"phase": "freeze", "epoch": data.pop("best_epoch", None), "time": round(event.time, 3), **data}
        else:
            return
        run = RunDir(self.run)
        folder = run.trial_dir(event.trial) if event.trial is not None else run.baseline_dir(event.baseline)
        path = folder / METRICS
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


class AllocationWriter:
    """Appends the allocation of every search epoch of a trial to ``trials/<n>/allocation.jsonl``
    (``{"epoch": e, "layers": [...]}`` per line), for the report's evolution figure. Part of every study,
    with or without TensorBoard; a trial that starts (again) starts its file afresh."""

    def __init__(self, run: Path):
        self.run = RunDir(run)

    def __call__(self, event: Event) -> None:
        if event.trial is None:
            return
        path = self.run.trial_file(event.trial, ALLOCATION)
        if event.kind == "trial_start":
            path.unlink(missing_ok=True)
        elif event.kind == "allocation":
            path.parent.mkdir(parents=True, exist_ok=True)
            row = {"epoch": event.epoch, "layers": event.data.get("layers", [])}
            with open(path, "a") as f:
                f.write(json.dumps(row, default=to_plain) + "\n")


class LogWriter:
    """A plain-text log of everything that happens, in ``search.log``."""

    def __init__(self, run: Path):
        self.handle = open(Path(run) / LOG, "a", buffering=1)

    def __call__(self, event: Event) -> None:
        stamp = datetime.datetime.fromtimestamp(event.time).strftime("%H:%M:%S.%f")[:-3]  # milliseconds: phase timings
        where = " ".join(p for p in (f"trial={event.trial}" if event.trial is not None else "",
                                      f"baseline={event.baseline}" if event.baseline else "",
                                      f"phase={event.phase}" if event.phase else "",
                                      f"epoch={event.epoch}" if event.epoch is not None else "") if p)
        data = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in event.data.items()
                if k not in ("layers", "config", "results", "front", "result")}
        self.handle.write(f"{stamp} pid={os.getpid()} {event.kind} {where} {json.dumps(data, default=to_plain)}\n")

    def close(self) -> None:
        self.handle.close()
