"""Read a run directory back: config, baselines, every completed trial, per-epoch metrics.

The report works from files only (the study may be running, finished, or on another machine), so
it reads what the tuner and the listeners wrote:

* ``config.yaml``, ``dataset.json``, ``baselines.json``, ``front.json`` (once the study ended);
* ``trials/<n>/result.json`` of every completed trial (also those of other workers);
* ``trials/<n>/metrics.jsonl`` (one row per epoch) and ``trials/<n>/allocation.jsonl`` (the
  per-layer allocation after every search epoch, written by the TensorBoard listener).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import ConfigError

ALLOCATION_HISTORY = "allocation.jsonl"
ACCURACY_KEYS = {"val": "val_acc", "test": "test_acc"}


@dataclass
class RunData:
    """Everything the report needs from one run directory."""

    path: Path
    config: dict
    results: List[dict]
    baselines: Dict[str, dict] = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)

    @property
    def target(self) -> str:
        return str(self.config.get("cost", {}).get("target") or
                   (self.results[0].get("target") if self.results else "memory"))

    @property
    def cost_names(self) -> List[str]:
        """Costs every trial reports, the study's target first."""
        names = [self.target] + [n for r in self.results for n in r.get("costs", {})]
        names += [n for b in self.baselines.values() for n in b.get("costs", {})]
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

    def front(self, target: Optional[str] = None) -> List[dict]:
        """The Pareto-optimal trials under ``target`` (default: the study's), sorted by that cost."""
        return pareto_front(self.results, target or self.target)

    def trial_dir(self, trial: int) -> Path:
        return self.path / "trials" / str(trial)

    def metrics(self, trial: int) -> List[dict]:
        return read_jsonl(self.trial_dir(trial) / "metrics.jsonl")

    def allocation_history(self, trial: int) -> List[dict]:
        """Rows ``{"epoch": e, "layers": [...]}`` of the search epochs, if they were recorded."""
        return read_jsonl(self.trial_dir(trial) / ALLOCATION_HISTORY)

    def check_target(self, target: str) -> None:
        missing = [r["trial"] for r in self.results if target not in r.get("costs", {})]
        if missing or (not self.results and target != self.target):
            raise ConfigError(f"run {str(self.path)!r} does not report cost {target!r}"
                              f"{' for trials ' + str(missing[:5]) if missing else ''}; reported costs: "
                              f"{', '.join(self.cost_names) or 'none'} (add it with `jointopt search --cost-model "
                              f"{target}` when running the study)")


def load_run(path) -> RunData:
    """Read run directory ``path``; raises :class:`ConfigError` if it is not one."""
    import yaml

    path = Path(path)
    if not (path / "config.yaml").is_file():
        hint = " (it does not exist)" if not path.exists() else ""
        raise ConfigError(f"{str(path)!r} is not a jointopt run directory: no config.yaml{hint}; "
                          "pass the --out folder of `jointopt search`")
    config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    results: Dict[int, dict] = {}
    front_file = path / "front.json"
    summary = _read_json(front_file) if front_file.exists() else {}
    for r in summary.get("results", []):
        results[int(r["trial"])] = r
    for file in sorted((path / "trials").glob("*/result.json")) if (path / "trials").exists() else []:
        data = _read_json(file)
        if data and isinstance(data.get("trial"), int) and data["trial"] >= 0:
            results[data["trial"]] = data  # the trial's own file is the latest word on it
    baselines = _read_json(path / "baselines.json") if (path / "baselines.json").exists() else {}
    baselines = baselines or summary.get("baselines") or {}
    dataset = _read_json(path / "dataset.json") if (path / "dataset.json").exists() else {}
    return RunData(path, config, [results[k] for k in sorted(results)], baselines, dataset or {})


def pareto_front(results: List[dict], target: str, accuracy: str = "val_acc") -> List[dict]:
    """Results not dominated in (higher ``accuracy``, lower ``target`` cost), sorted by cost.

    The same rule as the tuner's front; repeated here because the report may plot a cost other
    than the study's target (``--target``), whose front is a different set of trials.
    """
    points = [r for r in results if target in r.get("costs", {})]
    front = []
    for r in points:
        a, c = r[accuracy], r["costs"][target]
        if not any(o[accuracy] >= a and o["costs"][target] <= c and (o[accuracy] > a or o["costs"][target] < c)
                   for o in points):
            front.append(r)
    unique: Dict[tuple, dict] = {}
    for r in sorted(front, key=lambda r: (r["costs"][target], -r[accuracy], r["trial"])):
        unique.setdefault((r["costs"][target], r[accuracy]), r)
    return list(unique.values())


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


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):  # being replaced right now: the next refresh reads it
        return {}
