"""Reading and indexing a measured look-up table (the data behind the ``lut`` cost model)."""
from __future__ import annotations

import bisect
import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from jointopt.errors import ConfigError

KINDS = ("conv1d", "conv2d", "dwconv1d", "dwconv2d", "linear")
_ALIASES = {"conv": "conv2d", "dwconv": "dwconv2d", "depthwise": "dwconv2d", "dw": "dwconv2d",
            "fc": "linear", "dense": "linear"}
VALUE_COLUMNS = ("cost", "cycles", "latency", "energy")
_META_KEYS = ("name", "unit", "description", "display_unit", "display_scale")

Key = Tuple[str, Tuple[int, ...], Tuple[int, ...], int, int]  # kind, kernel, stride, weight bits, act bits


@dataclass(frozen=True)
class Row:
    """One measurement: a whole layer of this geometry at these widths costs ``value``."""

    kind: str
    kernel: Tuple[int, ...]
    stride: Tuple[int, ...]
    out_size: Tuple[int, ...]
    in_channels: int
    out_channels: int
    weight_bits: int
    act_bits: int
    value: float

    @property
    def key(self) -> Key:
        return (self.kind, self.kernel, self.stride, self.weight_bits, self.act_bits)

    @property
    def fan_in(self) -> int:
        return 1 if self.kind.startswith("dw") else self.in_channels

    @property
    def macs(self) -> float:
        return float(self.out_channels * self.fan_in * math.prod(self.kernel) * math.prod(self.out_size))


def describe(key: Key) -> str:
    kind, kernel, stride, w, a = key
    shape = f" {'x'.join(map(str, kernel))} stride {'x'.join(map(str, stride))}" if kernel else ""
    return f"{kind}{shape} w{w}a{a}"


@dataclass
class Knots:
    """Piecewise-linear curve of cost against MACs through the rows of one key (and output size)."""

    macs: List[float] = field(default_factory=list)
    values: List[float] = field(default_factory=list)
    exact: Dict[tuple, float] = field(default_factory=dict)  # (out_size, fan_in, out) → value at tied MACs

    @classmethod
    def build(cls, rows: Sequence[Row]) -> "Knots":
        by_macs: Dict[float, Dict[tuple, List[float]]] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            by_macs[row.macs][(row.out_size, row.fan_in, row.out_channels)].append(row.value)
        knots = cls()
        for macs in sorted(by_macs):
            shapes = {shape: sum(v) / len(v) for shape, v in by_macs[macs].items()}
            knots.macs.append(macs)
            knots.values.append(sum(shapes.values()) / len(shapes))
            if len(shapes) > 1:  # same MACs, different shapes: the curve goes through the mean
                knots.exact.update(shapes)
        return knots

    def segment(self, macs: float) -> Tuple[float, float, float, float]:
        """The knots (x0, y0, x1, y1) around ``macs``; the curve starts at (0, 0)."""
        xs, ys = [0.0] + self.macs, [0.0] + self.values
        i = min(max(bisect.bisect_left(xs, macs), 1), len(xs) - 1)
        return xs[i - 1], ys[i - 1], xs[i], ys[i]


class LutTable:
    """Rows of a measured table, indexed by key and output size.

    Args:
        rows: the measurements.
        meta: ``name``, ``unit``, ``description``, ``display_unit``, ``display_scale``.
        source: where the rows came from, for messages.
    """

    def __init__(self, rows: Sequence[Row], meta: Optional[dict] = None, source: str = "look-up table"):
        if not rows:
            raise ConfigError(f"{source}: the look-up table has no rows")
        self.rows = list(rows)
        self.meta = dict(meta or {})
        self.source = source
        grouped: Dict[Key, Dict[Tuple[int, ...], List[Row]]] = defaultdict(lambda: defaultdict(list))
        for row in self.rows:
            grouped[row.key][row.out_size].append(row)
        self.by_size = {key: {size: Knots.build(r) for size, r in sizes.items()} for key, sizes in grouped.items()}
        self.pooled = {key: Knots.build([r for rs in sizes.values() for r in rs]) for key, sizes in grouped.items()}

    def knots(self, key: Key, out_size: Tuple[int, ...], layer: str) -> Knots:
        """Rows at the layer's own output size when the table has them, else all sizes of the key."""
        if key not in self.by_size:
            have = ", ".join(describe(k) for k in sorted(self.by_size)[:12])
            more = " ..." if len(self.by_size) > 12 else ""
            raise ConfigError(
                f"{self.source} has no rows for {describe(key)} (layer {layer or '?'}); it has: {have}{more}. "
                "Measure that case and add rows, or remove the width from the search space"
            )
        return self.by_size[key].get(tuple(out_size), self.pooled[key])

    # -- reading -----------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path) -> "LutTable":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"look-up table {str(path)!r} does not exist")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: not valid JSON ({exc})") from None
            meta = {} if isinstance(data, list) else {k: data[k] for k in _META_KEYS if k in data}
            raw = data if isinstance(data, list) else data.get("rows")
            if not isinstance(raw, list):
                raise ConfigError(f"{path}: expected a list of rows or an object with a 'rows' list")
            places = [f"{path} row {i + 1}" for i in range(len(raw))]
        else:
            meta, raw, places = _read_csv(text, path)
        return cls.from_rows(raw, meta, str(path), places)

    @classmethod
    def from_rows(cls, raw: Sequence[dict], meta: Optional[dict] = None, source: str = "look-up table",
                  places: Optional[Sequence[str]] = None) -> "LutTable":
        places = places or [f"{source} row {i + 1}" for i in range(len(raw))]
        rows = [parse_row(r, place) for r, place in zip(raw, places)]
        meta = dict(meta or {})
        columns = {c for r in raw for c in r if c in VALUE_COLUMNS and not _empty(r.get(c))}
        if "unit" not in meta:
            if columns - {"cycles"}:
                raise ConfigError(f"{source}: say what the values measure, e.g. a '# unit: us' line (CSV) or "
                                  "\"unit\": \"uJ\" (JSON); only a 'cycles' column implies the unit")
            meta["unit"] = "cycle"
        return cls(rows, meta, source)


def _read_csv(text: str, path: Path):
    meta, lines, places = {}, [], []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").partition(":")
            if sep and key.strip() in _META_KEYS:
                meta[key.strip()] = value.strip()
            continue
        lines.append(line)
        places.append(f"{path} line {number}")
    reader = csv.DictReader(lines)
    raw = [{k.strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    return meta, raw, places[1:]


def _empty(value) -> bool:
    return value is None or (isinstance(value, (str, list, tuple)) and len(value) == 0)


def _ints(value, place: str, what: str, dims: int) -> Tuple[int, ...]:
    if _empty(value) or dims == 0:
        return ()
    if isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = str(value).lower().replace("×", "x").split("x")
    try:
        out = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"{place}: {what}={value!r} is not an integer or AxB") from None
    if len(out) == 1 and dims > 1:
        out = out * dims
    if len(out) != dims or min(out) < 1:
        raise ConfigError(f"{place}: {what}={value!r} needs {dims} positive size(s)")
    return out


def _int(raw: dict, name: str, place: str, default=None) -> int:
    value = raw.get(name, "")
    if _empty(value):
        if default is None:
            raise ConfigError(f"{place}: column {name!r} is missing or empty")
        return default
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        raise ConfigError(f"{place}: {name}={value!r} is not an integer") from None
    if number < 1 or number != float(value):
        raise ConfigError(f"{place}: {name}={value!r} must be a positive integer")
    return number


def parse_row(raw: dict, place: str) -> Row:
    """Validate one row (a dict of column → value) into a :class:`Row`."""
    kind = str(raw.get("kind", "")).strip().lower()
    kind = _ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ConfigError(f"{place}: kind={raw.get('kind')!r}; use one of {', '.join(KINDS)}")
    dims = 0 if kind == "linear" else (1 if kind.endswith("1d") else 2)
    kernel = _ints(1 if _empty(raw.get("kernel")) else raw["kernel"], place, "kernel", dims)
    stride = _ints(1 if _empty(raw.get("stride")) else raw["stride"], place, "stride", dims)
    size = raw.get("out_size")
    if dims and _empty(size):
        raise ConfigError(f"{place}: column 'out_size' (e.g. 16x16) is needed for {kind} rows")
    out_size = _ints(size, place, "out_size", dims if dims else (0 if _empty(size) else 1))
    value_name = next((c for c in VALUE_COLUMNS if not _empty(raw.get(c))), None)
    if value_name is None:
        raise ConfigError(f"{place}: no value; give one of the columns {', '.join(VALUE_COLUMNS)}")
    try:
        value = float(raw[value_name])
    except (TypeError, ValueError):
        raise ConfigError(f"{place}: {value_name}={raw[value_name]!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{place}: {value_name}={value} must be finite and >= 0")
    out_channels = _int(raw, "out_channels", place)
    in_channels = _int(raw, "in_channels", place, default=out_channels if kind.startswith("dw") else None)
    return Row(kind, kernel, stride, out_size, in_channels, out_channels, _int(raw, "weight_bits", place),
               _int(raw, "act_bits", place), value)
