"""What a study produces, as typed, versioned records: a trial's result, a baseline's, the study's.

A trial's full record is ``trials/<n>/result.json`` (:class:`TrialResult`); the uniform networks are
``baselines.json`` (name → :class:`BaselineResult`); ``front.json`` and the value of
``jointopt.search`` are a :class:`StudyResult`. Each has ``to_json()`` (plain JSON types) and
``from_json()``; every record written carries ``"version": RESULT_VERSION``.

Versions: files without a ``version`` key were written before it existed (version 0); they hold the
same keys and are read as they are (a ``bits_histogram`` whose keys JSON made strings gets integer
keys again). A newer version than this jointopt knows is refused with :class:`ResultError`, which
says to upgrade jointopt.

The attributes are the typed interface. For scripts written against the dicts of earlier versions a
record also reads like its JSON form, read-only: ``result["val_acc"]``, ``result.get("collapsed")``,
``summary["front"]``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional, Tuple

from .errors import JointoptError

RESULT_VERSION = 1


class ResultError(JointoptError, ValueError):
    """A result record cannot be read: not a record of this kind, or written by a newer jointopt."""


def _check_version(data: Any, what: str) -> int:
    if not isinstance(data, dict):
        raise ResultError(f"{what}: expected a JSON object, got {type(data).__name__}")
    version = data.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ResultError(f"{what}: version {version!r} is not a record version (0..{RESULT_VERSION})")
    if version > RESULT_VERSION:
        raise ResultError(f"{what} has version {version}, newer than this jointopt reads ({RESULT_VERSION}); "
                          "upgrade jointopt to read it")
    return version


def _require(data: dict, keys, what: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ResultError(f"{what}: missing {', '.join(map(repr, missing))}")


class _JsonView(Mapping):
    """Read-only ``record[key]`` access to ``record.to_json()`` (compatibility with the dict records)."""

    def to_json(self) -> dict:  # pragma: no cover - every record defines it
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())

    __eq__ = object.__eq__  # replaced by the dataclass's field-wise equality
    __hash__ = None


# -- one trial ---------------------------------------------------------------------------------------
_TRIAL_FIELDS = ("trial", "target", "params", "val_acc", "test_acc", "costs", "cost_display", "bits_histogram",
                 "allocation", "mean_bits", "kept_fraction", "reference", "time_s", "search", "method", "warnings",
                 "collapsed", "stopped_early", "input_shape")
SUMMARY_FIELDS = ("trial", "target", "params", "val_acc", "test_acc", "costs", "cost_display", "kept_fraction",
                  "mean_bits", "bits_histogram", "time_s", "method", "collapsed", "stopped_early")


@dataclass(frozen=True, eq=True)
class TrialResult(_JsonView):
    """One completed trial: its parameters, accuracies, the frozen network's cost under every active
    cost model and its allocation.

    Attributes:
        trial: the Optuna trial number.
        target: the study's target cost model.
        params: the trial's parameters (``lambda``, ...).
        val_acc, test_acc: top-1 accuracy of the frozen network in %.
        costs: cost model name → cost of the frozen network (raw units).
        cost_display: the same costs as the cost models print them.
        bits_histogram: weight width → number of output channels at that width.
        allocation: per layer ``{"layer", "kept", "total", "bits": {width: channels}, "act_bits"}``
            (empty in a summary, see :meth:`summary_json`).
        mean_bits: mean weight width over the kept weights.
        kept_fraction: share of output channels kept.
        reference: cost model name → cost of the unpruned widest network.
        time_s: wall time of the trial.
        search: what the search (or the method) recorded at freeze time.
        method: the method that made the trial (``joint`` by default).
        warnings: what went wrong but left a usable network.
        collapsed: why the trial is at chance accuracy (then it is not a front point), or None.
        stopped_early: why the study stopped the trial halfway through its search, without its
            fine-tune (:mod:`jointopt.tune.early_stop`; then it is not a front point), or None.
        input_shape: the network's input shape (without the batch).
        extra: keys of the record this class has no field for (kept, written back).
    """

    trial: int
    target: str
    params: Dict[str, Any]
    val_acc: float
    test_acc: float
    costs: Dict[str, float]
    cost_display: Dict[str, str] = field(default_factory=dict)
    bits_histogram: Dict[int, int] = field(default_factory=dict)
    allocation: Tuple[dict, ...] = ()
    mean_bits: float = 0.0
    kept_fraction: float = 1.0
    reference: Dict[str, float] = field(default_factory=dict)
    time_s: float = 0.0
    search: Dict[str, Any] = field(default_factory=dict)
    method: str = "joint"
    warnings: Tuple[str, ...] = ()
    collapsed: Optional[str] = None
    stopped_early: Optional[str] = None
    input_shape: Optional[Tuple[int, ...]] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    version: int = RESULT_VERSION

    def cost(self, name: Optional[str] = None) -> float:
        """The frozen network's cost under ``name`` (default: the target)."""
        return self.costs[name or self.target]

    @property
    def on_front(self) -> bool:
        """Whether the trial may be a front point (a collapsed or early-stopped trial may not)."""
        return not self.collapsed and not self.stopped_early

    def replace(self, **changes) -> "TrialResult":
        return dataclasses.replace(self, **changes)

    def summary_json(self) -> dict:
        """The few hundred bytes a trial stores in the Optuna study (user attribute ``result``):
        everything but the per-layer allocation, the reference costs, the search record and the
        warnings. :meth:`from_json` reads it back (those fields empty)."""
        return {k: v for k, v in self.to_json().items() if k in SUMMARY_FIELDS + ("version",)}

    def to_json(self) -> dict:
        out: Dict[str, Any] = {"version": self.version}
        for name in _TRIAL_FIELDS:
            value = getattr(self, name)
            if name in ("collapsed", "stopped_early", "input_shape") and value is None or \
                    name in ("warnings", "allocation", "reference") and not value:
                continue  # written only when there is something to say (a summary has no allocation)
            if name == "allocation":  # as JSON writes them: widths as string keys
                value = [{**row, "bits": {str(b): n for b, n in row["bits"].items()}} if "bits" in row else dict(row)
                         for row in value]
            elif name in ("warnings", "input_shape"):
                value = list(value)
            elif name == "bits_histogram":
                value = {str(b): n for b, n in value.items()}
            out[name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any) -> "TrialResult":
        """A result from its JSON form (``result.json``, a study's summary); see the module for versions."""
        _check_version(data, "trial result")
        what = f"result of trial {data.get('trial')!r}"
        _require(data, ("trial", "params", "val_acc", "test_acc", "costs"), what)
        if not isinstance(data["trial"], int) or isinstance(data["trial"], bool) or data["trial"] < 0:
            raise ResultError(f"{what}: the trial number must be a non-negative integer")
        known = {k: data[k] for k in _TRIAL_FIELDS if k in data}
        extra = {k: v for k, v in data.items() if k not in _TRIAL_FIELDS and k != "version"}
        known.setdefault("target", next(iter(data["costs"]), ""))
        try:
            known["val_acc"], known["test_acc"] = float(known["val_acc"]), float(known["test_acc"])
            known["costs"] = {str(k): float(v) for k, v in known["costs"].items()}
            known["bits_histogram"] = {int(b): int(n) for b, n in (known.get("bits_histogram") or {}).items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise ResultError(f"{what}: {exc}") from None
        known["warnings"] = tuple(known.get("warnings") or ())
        try:
            known["allocation"] = tuple({**row, "bits": {int(b): int(n) for b, n in row["bits"].items()}}
                                        if "bits" in row else dict(row) for row in known.get("allocation") or ())
        except (TypeError, ValueError, AttributeError) as exc:
            raise ResultError(f"{what}: allocation: {exc}") from None
        if known.get("input_shape") is not None:
            known["input_shape"] = tuple(int(n) for n in known["input_shape"])
        for name in ("params", "cost_display", "reference", "search"):
            known[name] = dict(known.get(name) or {})
        return cls(**known, extra=extra, version=RESULT_VERSION)


# -- a uniform baseline ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=True)
class BaselineResult(_JsonView):
    """A reference network the front is compared with: the float warm-up network (``float``) or a
    uniform network with every weight at ``bits`` bits (``w8``, ``w4``, ...), trained with a trial's budget.

    ``name`` is its key in ``baselines.json``; the JSON form does not repeat it.
    """

    name: str
    val_acc: float
    test_acc: float
    costs: Dict[str, float] = field(default_factory=dict)
    bits: Optional[int] = None
    version: int = RESULT_VERSION

    def to_json(self) -> dict:
        out = {"version": self.version, "val_acc": self.val_acc, "test_acc": self.test_acc, "costs": dict(self.costs)}
        if self.bits is not None:
            out["bits"] = self.bits
        return out

    @classmethod
    def from_json(cls, name: str, data: Any) -> "BaselineResult":
        _check_version(data, f"baseline {name!r}")
        _require(data, ("val_acc", "test_acc"), f"baseline {name!r}")
        return cls(str(name), float(data["val_acc"]), float(data["test_acc"]),
                   {str(k): float(v) for k, v in (data.get("costs") or {}).items()},
                   int(data["bits"]) if data.get("bits") is not None else None)


def baselines_to_json(baselines: Dict[str, BaselineResult]) -> dict:
    return {name: b.to_json() for name, b in baselines.items()}


def baselines_from_json(data: Any) -> Dict[str, BaselineResult]:
    if not isinstance(data, dict):
        raise ResultError(f"baselines: expected a JSON object, got {type(data).__name__}")
    return {name: BaselineResult.from_json(name, value) for name, value in data.items()}


# -- a failed trial and the whole study ---------------------------------------------------------------
@dataclass(frozen=True, eq=True)
class FailedTrial(_JsonView):
    """A trial that failed with a recorded reason (it diverged): kept off the front, not retried."""

    trial: int
    params: Dict[str, Any]
    reason: str

    def to_json(self) -> dict:
        return {"trial": self.trial, "params": dict(self.params), "reason": self.reason}

    @classmethod
    def from_json(cls, data: Any) -> "FailedTrial":
        if not isinstance(data, dict):
            raise ResultError(f"failed trial: expected a JSON object, got {type(data).__name__}")
        _require(data, ("trial", "reason"), "failed trial")
        return cls(int(data["trial"]), dict(data.get("params") or {}), str(data["reason"]))


@dataclass(frozen=True, eq=True)
class StudyResult(_JsonView):
    """What a study returns and ``front.json`` holds: the front, every completed trial, the baselines
    and the trials that failed, under the study's ``target`` cost model."""

    target: str
    front: Tuple[TrialResult, ...]
    results: Tuple[TrialResult, ...]
    baselines: Dict[str, BaselineResult] = field(default_factory=dict)
    failed: Tuple[FailedTrial, ...] = ()
    listener_errors: Tuple[str, ...] = ()
    version: int = RESULT_VERSION

    def to_json(self) -> dict:
        out = {"version": self.version, "target": self.target, "front": [r.to_json() for r in self.front],
               "results": [r.to_json() for r in self.results], "baselines": baselines_to_json(self.baselines),
               "failed": [f.to_json() for f in self.failed]}
        if self.listener_errors:
            out["listener_errors"] = list(self.listener_errors)
        return out

    @classmethod
    def from_json(cls, data: Any) -> "StudyResult":
        _check_version(data, "study result")
        results = tuple(TrialResult.from_json(r) for r in data.get("results") or ())
        by_trial = {r.trial: r for r in results}
        front = tuple(by_trial.get(int(r.get("trial", -1))) or TrialResult.from_json(r) for r in data.get("front") or ())
        return cls(str(data.get("target") or (results[0].target if results else "memory")), front, results,
                   baselines_from_json(data.get("baselines") or {}),
                   tuple(FailedTrial.from_json(f) for f in data.get("failed") or ()),
                   tuple(map(str, data.get("listener_errors") or ())))


def to_plain(value: Any) -> Any:
    """``value`` with every record replaced by its JSON form (for ``json.dumps(..., default=to_plain)``)."""
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    return str(value)
