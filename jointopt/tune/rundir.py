"""The run directory: layout, environment record, and the listeners that write per-trial files."""
from __future__ import annotations

import datetime
import json
import os
import platform
import socket
import sys
from pathlib import Path
from .._files import atomic_write_text
from ..train.events import Event

CONFIG = "config.yaml"
STUDY_DB = "study.db"
ENVIRONMENT = "environment.json"
BASELINES = "baselines.json"
PARETO_CSV = "pareto.csv"
FRONT_JSON = "front.json"
LOG = "search.log"


def trial_dir(run: Path, number: int) -> Path:
    return Path(run) / "trials" / str(number)


def default_run_dir(root: str = "runs") -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / stamp
    i = 1
    while path.exists():
        path = Path(root) / f"{stamp}-{i}"
        i += 1
    return path


def write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


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
        if event.trial is None:
            return
        if event.kind == "epoch":
            row = {"phase": event.phase, "epoch": event.epoch, "time": round(event.time, 3), **event.data}
        elif event.kind == "phase_end" and event.phase == "search" and "soft_hard_gap" in event.data:
            data = dict(event.data)
            row = {"phase": "freeze", "epoch": data.pop("best_epoch", None), "time": round(event.time, 3), **data}
        else:
            return
        # baselines (uniform widths) are announced with trial = -bits
        folder = trial_dir(self.run, event.trial) if event.trial >= 0 else self.run / "baselines" / f"w{-event.trial}"
        path = folder / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


class LogWriter:
    """A plain-text log of everything that happens, in ``search.log``."""

    def __init__(self, run: Path):
        self.handle = open(Path(run) / LOG, "a", buffering=1)

    def __call__(self, event: Event) -> None:
        stamp = datetime.datetime.fromtimestamp(event.time).strftime("%H:%M:%S")
        where = " ".join(p for p in (f"trial={event.trial}" if event.trial is not None else "",
                                      f"phase={event.phase}" if event.phase else "",
                                      f"epoch={event.epoch}" if event.epoch is not None else "") if p)
        data = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in event.data.items()
                if k not in ("layers", "config", "results", "front", "result")}
        self.handle.write(f"{stamp} pid={os.getpid()} {event.kind} {where} {json.dumps(data, default=str)}\n")

    def close(self) -> None:
        self.handle.close()
