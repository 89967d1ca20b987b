"""Read a run directory back: config, baselines, every completed trial, per-epoch metrics.

The report works from files only (the study may be running, finished, or on another machine), so
it reads what the tuner and the listeners wrote:

* ``config.yaml``, ``dataset.json``, ``baselines.json``, ``front.json`` (once the study ended);
* ``trials/<n>/result.json`` of every completed trial (also those of other workers);
* ``trials/<n>/metrics.jsonl`` (one row per epoch) and ``trials/<n>/allocation.jsonl`` (the
  per-layer allocation after every search epoch, written by every study);
* ``search.log``, for the search epoch each trial kept (its ``phase_end`` line).

Where each file is and how it is read is :class:`jointopt.tune.rundir.RunDir`'s business.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..results import BaselineResult, TrialResult
from .._pareto import pareto_front  # the one front (re-exported by jointopt.report)

if TYPE_CHECKING:
    from ..tune.rundir import RunDir

ACCURACY_KEYS = {"val": "val_acc", "test": "test_acc"}


@dataclass
class RunData:
    """Everything the report needs from one run directory."""

    path: Path
    config: dict
    results: List[TrialResult]
    baselines: Dict[str, BaselineResult] = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)

    @property
    def layout(self) -> "RunDir":
        from ..tune.rundir import RunDir  # imported when used: `import jointopt.report` stays light

        return RunDir(self.path)

    @property
    def target(self) -> str:
        return str((self.config.get("cost") or {}).get("target") or
                   (self.results[0].target if self.results else "memory"))

    @property
    def method(self) -> str:
        """The method that made the trials (``jointopt methods``); runs before methods existed are ``joint``."""
        return str(self.config.get("method") or "joint")

    @property
    def cost_names(self) -> List[str]:
        """Costs every trial reports, the study's target first."""
        names = [self.target] + [n for r in self.results for n in r["costs"]]
        names += [n for b in self.baselines.values() for n in b["costs"]]
        return list(dict.fromkeys(names))

    @property
    def weight_bits(self) -> tuple:
        """The search space's weight widths (0 = pruned)."""
        return tuple(self.config.get("space", {}).get("weight_bits") or ())

    @property
    def act_bits(self) -> int:
        return max(self.config.get("space", {}).get("act_bits") or [8])

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def front(self, target: Optional[str] = None) -> List[TrialResult]:
        """The Pareto-optimal trials under ``target`` (default: the study's), sorted by that cost; as in
        the study, a collapsed or early-stopped trial is never a front point."""
        return pareto_front([r for r in self.results if r.on_front], target or self.target)

    def trial_dir(self, trial: int) -> Path:
        return self.layout.trial_dir(trial)

    def baseline_dir(self, name: str) -> Path:
        """Where uniform baseline ``name``'s per-epoch metrics are (``baselines/w8/metrics.jsonl``)."""
        return self.layout.baseline_dir(name)

    def metrics(self, trial: int) -> List[dict]:
        from ..tune.rundir import METRICS

        return read_jsonl(self.layout.trial_file(trial, METRICS))

    def baseline_metrics(self, name: str) -> List[dict]:
        from ..tune.rundir import METRICS

        return read_jsonl(self.baseline_dir(name) / METRICS)

    def allocation_history(self, trial: int) -> List[dict]:
        """Rows ``{"epoch": e, "layers": [...]}`` of the search epochs, if they were recorded."""
        from ..tune.rundir import ALLOCATION

        return read_jsonl(self.layout.trial_file(trial, ALLOCATION))

    def kept_epoch(self, trial: int) -> Optional[int]:
        """The search epoch whose choice was frozen (the best one, not necessarily the last), if logged.

        Read from the study's ``search.log``, whose line ``phase_end trial=3 phase=search {"best_epoch": 4}``
        every study writes, with or without the TensorBoard listener.
        """
        from ..tune.rundir import LOG

        log = self.path / LOG
        pattern = re.compile(rf" phase_end trial={int(trial)} phase=search (\{{.*\}})$")
        found = None
        for line in log.read_text().splitlines() if log.is_file() else []:
            match = pattern.search(line)
            if match:
                try:
                    found = int(json.loads(match.group(1))["best_epoch"])
                except (ValueError, KeyError, TypeError):
                    continue
        return found

    def check_target(self, target: str) -> None:
        """Raise :class:`ConfigError` unless every trial reports cost ``target``, saying how to get it."""
        missing = [r["trial"] for r in self.results if target not in r["costs"]]
        if not missing and (self.results or target == self.target):
            return
        which = f" for trials {trial_ranges(missing)} ({len(missing)} of {len(self.results)})" if missing else ""
        raise ConfigError(f"run {str(self.path)!r} does not report cost {target!r}{which}; it reports "
                          f"{', '.join(self.cost_names) or 'none'}: {_how_to_report(target, self.cost_names)}")


def trial_ranges(numbers) -> str:
    """``[0, 1, 2, 3, 5, 7, 8]`` → ``0-3, 5, 7-8``: every trial, however many."""
    numbers = sorted(set(int(n) for n in numbers))
    parts, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(n) if n == start else f"{start}-{n}")
            start = None
    return ", ".join(parts)


TIME_UNITS = ("cycle", "cycles", "s", "ms", "us", "\u00b5s", "\u03bcs", "ns")  # a cost model in one of these is a latency


def _measures_time(name: str) -> bool:
    """Whether cost model ``name`` (a built-in, a plug-in or a measured table) counts time, by its unit;
    a measured table that cannot be read from here (a path relative to another folder) is offered."""
    from ..cost import get_cost_model

    try:
        return str(get_cost_model(name).unit).strip().lower() in TIME_UNITS
    except Exception:  # noqa: BLE001 - not loadable here: only a table's file name can say
        return name.endswith((".csv", ".json"))


def _how_to_report(target: str, reported: List[str]) -> str:
    """The fix: a reported cost to plot instead, or a cost model to add to the next study."""
    from ..cost import get_cost_model

    if target == "latency":  # `jointopt search --target latency` means its first --cost-model, default mpic
        latency = [n for n in reported if _measures_time(n)]
        if latency:
            return (f"'latency' is not a cost name (in `jointopt search` it stands for the first --cost-model); "
                    f"this study's latency cost is {latency[0]!r}: pass --target {latency[0]}")
        return ("'latency' is not a cost name (in `jointopt search` it stands for the first --cost-model); this study "
                "reported no latency cost: add one to a new study, e.g. `jointopt search --cost-model mpic` "
                "(or ne16, or your measured table)")
    try:
        get_cost_model(target)
    except Exception as exc:  # noqa: BLE001 - the message says why it cannot be added either
        return f"{target!r} is not a cost model here ({exc}); see `jointopt cost-models`"
    return f"plot one of those, or add it to a new study with `jointopt search --cost-model {target}`"


def load_run(path) -> RunData:
    """Read run directory ``path``; raises :class:`~jointopt.tune.rundir.RunDirError` (a
    :class:`ConfigError`) if it is not one."""
    from ..tune.rundir import RunDir, RunDirError

    layout = RunDir(path).check()
    config = layout.config_dict()
    summary = layout.front(tolerant=True)  # other workers' trials too, whose result.json is on their machines
    results: Dict[int, TrialResult] = {r.trial: r for r in summary.results} if summary else {}
    results.update(layout.results(strict=False))  # the trial's own file is the latest word on it
    baselines = layout.baselines() or (summary.baselines if summary else {})
    try:
        dataset = layout.dataset()
    except RunDirError:
        dataset = {}
    return RunData(layout.path, config, [results[k] for k in sorted(results)], baselines, dataset or {})


def read_jsonl(path: Path) -> List[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line being appended by a live study
            continue
    return rows
