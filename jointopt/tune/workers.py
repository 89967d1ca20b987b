"""Several worker processes on one machine, one per device, sharing one study (``jointopt search --workers``).

The launcher makes the run directory, then starts one ``jointopt search --resume`` process per device
on it. They share the study through a journal file in the run directory (or the ``--storage`` given),
and the warm-up and baselines through the run directory's file locks: the first worker computes
them, the others wait and load them. When every worker is done the launcher gathers the front of
all their trials. Ctrl-C stops every worker (each marks its running trial so that ``--resume``
retries it) and prints how to resume.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import ConfigError, JointoptError

JOURNAL = "journal.log"  # the default storage of a multi-worker study, in its run directory
STOP_GRACE_S = 30.0  # how long stopped workers may take to record their state before they are killed


def worker_devices(device: str, workers: Optional[int], devices: Optional[Sequence[str]]) -> List[str]:
    """One device per worker: ``--devices`` as given, or ``--workers N`` spread over the configured device.

    ``cuda`` (or ``auto`` with CUDA) gives ``cuda:0 .. cuda:N-1``, round robin over the GPUs there are;
    ``cpu`` gives N CPU workers.
    """
    import torch

    if devices:
        if workers is not None and workers != len(devices):
            raise ConfigError(f"--workers {workers} but {len(devices)} --devices ({', '.join(devices)}); give one "
                              "of them, or as many devices as workers")
        chosen = list(devices)
    else:
        if workers is None or workers < 1:
            raise ConfigError(f"--workers must be a positive number of worker processes, got {workers}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":
            count = torch.cuda.device_count()
            if count == 0:
                raise ConfigError("device=cuda but CUDA is not available here; use --device cpu")
            chosen = [f"cuda:{i % count}" for i in range(workers)]
        else:
            chosen = [device] * workers
    for name in chosen:
        if name.startswith("cuda"):
            index = int(name.split(":", 1)[1]) if ":" in name else 0
            if not torch.cuda.is_available() or index >= torch.cuda.device_count():
                raise ConfigError(f"device {name!r} is not available here (CUDA devices: "
                                  f"{torch.cuda.device_count() if torch.cuda.is_available() else 0})")
        elif name != "cpu":
            raise ConfigError(f"device {name!r}: a worker runs on cpu, cuda or cuda:N")
    return chosen


def worker_command(run_dir: Path, storage: str, device: str, threads: Optional[int], tensorboard: bool) -> List[str]:
    """The command line of one worker: it joins the study the launcher made in ``run_dir``."""
    cmd = [sys.executable, "-m", "jointopt", "search", "--out", str(run_dir), "--resume", "--storage", storage,
           "--device", device]
    if threads:
        cmd += ["--threads", str(threads)]
    if not tensorboard:
        cmd.append("--no-tensorboard")
    return cmd


def launch(config, run_dir: Path, devices: Sequence[str], storage: Optional[str] = None, resume: bool = False,
           tensorboard: bool = True, progress: bool = True, listeners=()) -> dict:
    """Run the study in ``run_dir`` with one worker process per device; return the gathered summary.

    Raises:
        WorkersFailed: a worker exited with an error (its log is named); the front of the trials that
            completed is still written.
        KeyboardInterrupt: after stopping every worker.
    """
    from .study import Study

    run_dir = Path(run_dir).resolve()
    storage = storage or f"journal:{run_dir / JOURNAL}"
    Study(config, run_dir, storage=storage, resume=resume, listeners=())  # makes the folder and config.yaml
    threads = config.threads
    if threads is None and all(d == "cpu" for d in devices):  # share the cores instead of oversubscribing them
        threads = max(1, (os.cpu_count() or 1) // len(devices))
    logs = run_dir / "workers"
    logs.mkdir(exist_ok=True)
    procs = []
    for i, device in enumerate(devices):
        with open(logs / f"{i}.log", "w") as out:  # each worker's own table; its progress lines go to stderr
            procs.append(subprocess.Popen(worker_command(run_dir, storage, device, threads, tensorboard),
                                          stdout=out, stderr=None if progress else subprocess.STDOUT,
                                          start_new_session=True))  # Ctrl-C reaches them once, from stop()
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        stop(procs)
        raise
    summary = Study(config, run_dir, storage=storage, resume=True, listeners=listeners).gather()
    failed = [i for i, code in enumerate(codes) if code != 0]
    if failed:
        raise WorkersFailed(f"worker {failed[0]} ({devices[failed[0]]}) exited with code {codes[failed[0]]}; see "
                            f"{logs / f'{failed[0]}.log'}" + (f" ({len(failed)} workers failed)" if len(failed) > 1 else "")
                            + f"; the front of the {len(summary['results'])} completed trials is in {run_dir}")
    return summary


def stop(procs: Sequence[subprocess.Popen], grace: float = STOP_GRACE_S) -> None:
    """Interrupt every worker still running (as Ctrl-C would), then kill those that do not stop in time."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class WorkersFailed(JointoptError, RuntimeError):
    """A worker process of ``jointopt search --workers`` failed."""
