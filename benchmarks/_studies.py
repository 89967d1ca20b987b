"""What every study benchmark shares (``front``, ``methods``, ``early_stop``, ``quickstart``, ``paper``).

The benchmark configs (``BENCHES``); the figures of a study's front (hypervolume in the normalised
plane, iso-accuracy against a uniform baseline, ``analyse`` of a study summary); the phase ``Timer``
that listens to a study's events, and the same timing rebuilt from a finished run's ``search.log``;
the synthetic keyword corpus of a given size; the record of the machine a benchmark ran on; sharing
one warm-up and its uniform baselines between studies; and writing a benchmark's results atomically.
``benchmarks/front.py``'s docstring says how the figures are defined.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import List, Optional

from jointopt.report._compare import HV_REFERENCE, hypervolume  # the report's own: one definition

try:  # run as part of the benchmarks package, or as a script
    from ._machine import cpu_model
except ImportError:
    from _machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
ISO_TOLERANCE = 0.5  # accuracy points
KWS_SPEAKERS = 1000  # speakers of the synthetic keyword corpus the KWS benchmarks build
LOG_LINE = re.compile(r"(?P<stamp>\d\d:\d\d:\d\d(?:\.\d+)?) pid=\d+ (?P<kind>\w+) (?P<where>(?:\w+=\S+ ?)*) ?\{")

BENCHES = {
    "fashion_mnist": {"config": "configs/fashion_mnist_resnet8.yaml", "title": "Fashion-MNIST / ResNet-8",
                      "targets": {"reduction_vs_w8_pct": 47.5, "beats_w4": True}},
    "synthetic_kws": {"config": "configs/synthetic_kws_dscnn.yaml",
                      "title": "synthetic keyword spotting (espeak-ng, a stand-in for Speech Commands) / DS-CNN",
                      "targets": {}},
}


# -- analysis of a study's front --------------------------------------------------------------------
def iso_accuracy(results: List[dict], baseline: dict, target: str, key: str = "val_acc",
                 tolerance: float = ISO_TOLERANCE) -> Optional[dict]:
    """The smallest result with ``key`` >= baseline's minus ``tolerance``; None if there is none."""
    ok = [r for r in results if r[key] >= baseline[key] - tolerance]
    if not ok:
        return None
    best = min(ok, key=lambda r: (r["costs"][target], -r[key]))
    cost, ref = best["costs"][target], baseline["costs"][target]
    return {"trial": best["trial"], "cost": cost, "baseline_cost": ref,
            "reduction_pct": 100.0 * (1.0 - cost / ref), "val_acc": best["val_acc"], "test_acc": best["test_acc"],
            "baseline_val_acc": baseline["val_acc"], "baseline_test_acc": baseline["test_acc"],
            "test_delta": best["test_acc"] - baseline["test_acc"], "selected_on": key}


def analyse(summary: dict) -> dict:
    """Front, hypervolumes and iso-accuracy reductions of a study summary (``front.json``)."""
    target, baselines = summary["target"], summary["baselines"]
    every = summary["results"]
    results = [r for r in every if not r.get("collapsed") and not r.get("stopped_early")]  # possible front points
    w8 = baselines["w8"]["costs"][target]
    front = [{"trial": r["trial"], "lambda": r["params"].get("lambda"), "val_acc": r["val_acc"],
              "test_acc": r["test_acc"], "cost": r["costs"][target], "cost_norm": r["costs"][target] / w8,
              "kept_fraction": r.get("kept_fraction"), "mean_bits": r.get("mean_bits"),
              "bits_histogram": {str(k): v for k, v in r.get("bits_histogram", {}).items()},
              "costs": r["costs"]} for r in summary["front"]]
    uniform = {k: b for k, b in baselines.items() if k != "float" and target in b["costs"]}

    def hv(rows, key):
        return hypervolume([(r["costs"][target] / w8, r[key] / 100.0) for r in rows])

    out = {"target": target, "w8_cost": w8, "front": front, "trials": len(every),
           "hypervolume": {"reference_point": {"cost_norm": HV_REFERENCE[0], "accuracy": HV_REFERENCE[1]},
                           "plane": "x = cost / cost(uniform w8), y = accuracy / 100",
                           "front_val": hv(results, "val_acc"), "front_test": hv(results, "test_acc"),
                           "uniform_val": hv(uniform.values(), "val_acc"),
                           "uniform_test": hv(uniform.values(), "test_acc")},
           "baselines": {k: {"val_acc": b["val_acc"], "test_acc": b["test_acc"], "cost": b["costs"].get(target),
                             "cost_norm": b["costs"][target] / w8 if target in b["costs"] else None}
                         for k, b in baselines.items()},
           "iso_accuracy": {}, "relaxation": relaxation(results)}
    for name, b in uniform.items():
        out["iso_accuracy"][name] = {"val": iso_accuracy(results, b, target, "val_acc"),
                                     "test_selected": iso_accuracy(results, b, target, "test_acc")}
    return out


def relaxation(results: List[dict]) -> Optional[dict]:
    """Soft-hard validation gap and selector entropy at freeze time, over the trials that recorded them."""
    rows = [r["search"] for r in results if (r.get("search") or {}).get("soft_hard_gap") is not None]
    if not rows:
        return None
    gaps = [x["soft_hard_gap"] for x in rows]
    return {"trials": len(rows), "gap_mean": sum(gaps) / len(gaps), "gap_abs_max": max(abs(g) for g in gaps),
            "entropy_mean": sum(x["selector_entropy"] for x in rows) / len(rows)}


# -- running ----------------------------------------------------------------------------------------
class Timer:
    """Study listener: times the phases from the events; samples the load average meanwhile."""

    def __init__(self):
        self.t0 = time.time()
        self.events: List[tuple] = []
        self.load: List[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.is_set():
            self.load.append(os.getloadavg()[0])
            self._stop.wait(15)

    def __call__(self, event) -> None:
        if event.kind in ("study_start", "phase_start", "phase_end", "warmup_cached", "baseline", "trial_start",
                          "trial_end", "study_end"):
            self.events.append((event.kind, event.trial, event.phase, event.time))

    def close(self) -> None:
        self._stop.set()

    def summary(self, end: float) -> dict:
        def first(kind, trial=None, phase=None, any_trial=False):
            return next((t for k, tr, ph, t in self.events
                         if k == kind and (any_trial or tr == trial) and (phase is None or ph == phase)), None)
        start = first("study_start")
        w0, w1 = first("phase_start", None, "warmup"), first("phase_end", None, "warmup")
        baseline_times = [t for k, *_, t in self.events if k == "baseline"]
        trial_start = {tr: t for k, tr, _, t in self.events if k == "trial_start"}
        trials = {tr: round(t - trial_start[tr], 1) for k, tr, _, t in self.events if k == "trial_end"}
        first_trial = min(trial_start.values(), default=end)
        return {"total_s": round(end - self.t0, 1),
                "data_and_setup_s": round((start or end) - self.t0, 1),
                "warmup_s": round(w1 - w0, 1) if w0 and w1 else 0.0,
                "baselines_s": round((max(baseline_times) if baseline_times else first_trial) - (w1 or start or end), 1),
                "trials_s": trials, "trials_total_s": round(sum(trials.values()), 1),
                "trial_mean_s": round(sum(trials.values()) / max(1, len(trials)), 1),
                "load_1min_during": {"min": round(min(self.load), 2), "mean": round(sum(self.load) / len(self.load), 2),
                                     "max": round(max(self.load), 2), "samples": len(self.load)} if self.load else None}


def kws_root(data_dir: Optional[str], speakers: int) -> Path:
    """Data root holding a ``speakers``-speaker synthetic corpus; built here if missing."""
    from jointopt.data._cache import resolve_root
    from jointopt.data.synthetic_kws import NAME, CORPUS, generate

    base = resolve_root(data_dir)
    root = base if speakers == 100 else base / f"synthetic_kws_{speakers}spk"
    corpus = root / NAME / CORPUS
    if not (corpus / "testing_list.txt").is_file():
        print(f"building the synthetic corpus ({speakers} speakers) at {corpus}", file=sys.stderr)
        generate(corpus, speakers=speakers, jobs=2)
    return root


def share_warmup(shared: Path, run_dir: Path) -> None:
    """Give ``run_dir`` the warm-up network and uniform baselines of the study in ``shared`` (same config
    and seed): a study made there then trains neither again (benchmarks that compare studies)."""
    import shutil

    (run_dir / "warmup").mkdir(parents=True, exist_ok=True)
    for file in (shared / "warmup").glob("*.*"):
        if file.suffix in (".pt", ".json"):
            shutil.copy2(file, run_dir / "warmup" / file.name)
    shutil.copy2(shared / "baselines.json", run_dir / "baselines.json")


def schedule(config) -> dict:
    c = config
    return {"threads": c.threads, "batch_size": c.data.batch_size, "limit_train": c.data.limit_train,
            "val_fraction": c.data.val_fraction, "trials": c.tuner.trials, "sampler": c.tuner.sampler,
            "lambda": [c.tuner.lambda_min, c.tuner.lambda_max], "baselines": list(c.tuner.baselines),
            **{p: {"epochs": getattr(c, p).epochs, "max_steps": getattr(c, p).max_steps} for p in
               ("warmup", "search", "finetune")},
            "selector_lr": c.search.selector_lr, "temperature_decay": c.search.temperature_decay,
            "selector_travel": c.search.selector_travel, "final_temperature": c.search.final_temperature,
            "hard_fraction": c.search.hard_fraction, "distill": c.finetune.distill, "keep_init": c.space.keep_init,
            "seed": c.seed}


def log_timing(run: Path) -> Optional[dict]:
    """Phase times of a finished run rebuilt from its ``search.log`` (1 s resolution, no load samples).

    The log's stamps carry no date: each process that resumed the study starts its lines on the day
    ``environment.json`` records for it (``resumed``), and the time the study sat stopped between
    two processes is left out of every duration."""
    env = json.loads((run / "environment.json").read_text())
    log = run / "search.log"
    if not log.exists():
        return None
    timer = Timer()
    timer.close()
    start = datetime.datetime.fromisoformat(env["started"])
    resumes = [datetime.datetime.fromisoformat(r).date() for r in env.get("resumed", [])]
    timer.t0, timer.load, day, last, end = start.timestamp(), [], start.date(), None, None
    processes, stopped = 0, 0.0
    for line in log.read_text().splitlines():
        match = LOG_LINE.match(line)
        if not match:
            continue
        resumed = match["kind"] == "study_start" and processes > 0
        if match["kind"] == "study_start":
            if resumed and processes - 1 < len(resumes):
                day = resumes[processes - 1]
            processes += 1
        t = datetime.datetime.combine(day, datetime.time.fromisoformat(match["stamp"])).timestamp()
        if last is not None and t < last - 43200:  # past midnight
            day += datetime.timedelta(days=1)
            t += 86400
        if resumed and last is not None:
            stopped += max(0.0, t - last)  # from the stopped process's last line to the new one's first
        last = t
        t -= stopped
        fields = dict(f.split("=", 1) for f in (match["where"] or "").split())
        trial = int(fields["trial"]) if "trial" in fields else None
        timer(types.SimpleNamespace(kind=match["kind"], trial=trial, phase=fields.get("phase"), time=t))
        if match["kind"] == "study_end":
            end = t
    return timer.summary(end) if end else None


def machine() -> dict:
    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "jointopt"], cwd=REPO,
                                    capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "git_commit": commit,
            "jointopt_uncommitted_changes": dirty}


# -- results ----------------------------------------------------------------------------------------
def kb(bits) -> str:
    """A memory cost in bits as kB (1000 bytes) with two decimals; "—" when there is none."""
    return "—" if bits is None else f"{bits / 8000:.2f}"


def write_results(out: Path, stem: str, record: dict, text: str, indent: int = 1) -> None:
    """A benchmark's results: ``out/<stem>.json`` (the record) and ``out/<stem>.md`` (its table), atomically."""
    from jointopt._files import atomic_write_text

    atomic_write_text(out / f"{stem}.json", json.dumps(record, indent=indent, default=str) + "\n")
    atomic_write_text(out / f"{stem}.md", text)
