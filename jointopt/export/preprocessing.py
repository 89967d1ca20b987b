"""What an exported network's input is: the preprocessing contract every export format carries.

The networks jointopt trains never see raw data: the data pipeline
(:meth:`jointopt.data.Dataset.batches`) turns a raw sample into the network's input with, per
channel ``c`` and in float32,

    input = (float32(raw) - mean[c]) * inv_std[c],   inv_std[c] = float32(1) / std[c] (float32 division)

``mean`` and ``std`` are computed on the training split, in raw units. A deployment that feeds raw
pixels (or raw audio features) to a network without this step gets the wrong class; so every
export records a :class:`Preprocessing` (manifest, ONNX metadata, npz, C header, ``verify.json``),
and the ONNX graph applies it itself unless told otherwise.

Example::

    pre = Preprocessing.from_dataset(jointopt.get_dataset("digits"))
    pre.layout, pre.mean, pre.std            # 'NCHW', (77.97...,), (95.96...,)
    x = pre.normalize(raw_uint8_batch)       # exactly what the training pipeline fed the network
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

import torch

from ..errors import ExportError

LAYOUTS = {1: "NC", 2: "NCL", 3: "NCHW"}  # by the number of dimensions of one sample
FORMULA = "input = (float32(raw) - mean[c]) * inv_std[c] per channel c, in float32; inv_std = float32(1 / std)"


def _floats(value, where: str) -> Tuple[float, ...]:
    try:
        items = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ExportError(f"preprocessing: {where} must be a list of numbers, got {value!r}") from None
    if not items or not all(math.isfinite(v) for v in items):
        raise ExportError(f"preprocessing: {where} must be a non-empty list of finite numbers, got {value!r}")
    return items


@dataclass(frozen=True)
class Preprocessing:
    """Raw data → network input, and what the output classes are.

    Attributes:
        mean: per-channel mean of the raw training data (raw units).
        std: per-channel standard deviation (raw units, > 0).
        layout: dimension order of a batch: ``"NCHW"`` (images, spectrograms), ``"NCL"`` (1-D
            signals) or ``"NC"`` (feature vectors).
        raw_range: ``(min, max)`` of the raw training data (e.g. ``(0, 255)`` for 8-bit images).
        raw_dtype: element type the raw data is stored in (``"uint8"`` images, ``"float16"``
            audio features, ...).
        class_names: one name per output index.
        dataset: the data set's registry name.
    """

    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    layout: str = "NCHW"
    raw_range: Tuple[float, float] = (0.0, 255.0)
    raw_dtype: str = "uint8"
    class_names: Tuple[str, ...] = ()
    dataset: str = ""

    def __post_init__(self):
        mean, std = _floats(self.mean, "mean"), _floats(self.std, "std")
        if len(mean) != len(std):
            raise ExportError(f"preprocessing: {len(mean)} means for {len(std)} standard deviations; "
                              "give one of each per input channel")
        if min(std) <= 0:
            raise ExportError(f"preprocessing: std must be > 0 in every channel, got {list(std)}")
        if self.layout not in LAYOUTS.values():
            raise ExportError(f"preprocessing: layout {self.layout!r}; choose one of {', '.join(LAYOUTS.values())}")
        bounds = _floats(self.raw_range, "raw_range")
        low, high = bounds if len(bounds) == 2 else (1.0, 0.0)
        if not low <= high:
            raise ExportError(f"preprocessing: raw_range must be [min, max] with min <= max, got {self.raw_range!r}")
        if not isinstance(self.raw_dtype, str) or not hasattr(torch, self.raw_dtype) \
                or not isinstance(getattr(torch, self.raw_dtype), torch.dtype):
            raise ExportError(f"preprocessing: raw_dtype {self.raw_dtype!r} is not a torch dtype name (e.g. 'uint8')")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "raw_range", (low, high))
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        object.__setattr__(self, "dataset", str(self.dataset))

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def from_dataset(cls, data) -> "Preprocessing":
        """The preprocessing of a :class:`jointopt.data.Dataset` (its ``mean``/``std`` and raw training data)."""
        x = data.train.x
        raw_range = (float(x.min()), float(x.max())) if x.numel() else (0.0, 0.0)
        return cls(tuple(data.mean.float().tolist()), tuple(data.std.float().tolist()),
                   LAYOUTS.get(len(data.input_shape), "NCHW"), raw_range, str(x.dtype).replace("torch.", ""),
                   tuple(data.class_names), data.name)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        """Inverse of :meth:`to_dict` (extra keys such as ``inv_std`` or ``formula`` are ignored)."""
        if not isinstance(data, dict):
            raise ExportError(f"preprocessing must be an object, got {type(data).__name__}")
        fields = ("mean", "std", "layout", "raw_range", "raw_dtype", "class_names", "dataset")
        missing = [k for k in ("mean", "std") if k not in data]
        if missing:
            raise ExportError(f"preprocessing lacks {', '.join(missing)}")
        return cls(**{k: data[k] for k in fields if k in data})

    @classmethod
    def from_run(cls, run: Union[str, Path]) -> Optional["Preprocessing"]:
        """Read from a run directory's ``dataset.json``; None when it predates the stored mean/std."""
        from ..tune.rundir import DATASET

        path = Path(run) / DATASET
        try:
            info = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(info, dict) or "mean" not in info or "std" not in info:
            return None
        shape = info.get("input_shape") or []
        return cls(info["mean"], info["std"], LAYOUTS.get(len(shape), "NCHW"),
                   info.get("raw_range") or (0.0, 255.0), info.get("raw_dtype", "uint8"),
                   tuple(info.get("class_names") or ()), info.get("name", ""))

    # -- using ------------------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return len(self.mean)

    @property
    def inv_std(self) -> Tuple[float, ...]:
        """``1 / std`` rounded as the data pipeline computes it (a float32 division)."""
        return tuple((1.0 / torch.tensor(self.std, dtype=torch.float32)).tolist())

    def _per_channel(self, values, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != len(self.layout) or x.shape[1] != self.channels:
            raise ExportError(f"preprocessing expects a {self.layout} batch with {self.channels} channel(s), "
                              f"got shape {list(x.shape)}")
        return torch.tensor(values, dtype=torch.float32).view((1, -1) + (1,) * (x.dim() - 2))

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw batch → network input, bit for bit what :meth:`Dataset.batches` computes."""
        x = raw.float()
        return (x - self._per_channel(self.mean, x)) * self._per_channel(self.inv_std, x)

    def raw_from(self, x: torch.Tensor) -> torch.Tensor:
        """A raw batch that normalises to (nearly) ``x``: the inverse, rounded to integers where the raw
        data are integers and clipped to :attr:`raw_range` (float32)."""
        raw = x.double() * self._per_channel(self.std, x).double() + self._per_channel(self.mean, x).double()
        if not getattr(torch, self.raw_dtype).is_floating_point:
            raw = raw.round()
        return raw.clamp(*self.raw_range).float()

    def to_dict(self) -> dict:
        """JSON-able, with the derived ``inv_std`` and the formula spelled out for readers of the files."""
        data = asdict(self)
        data.update(mean=list(self.mean), std=list(self.std), raw_range=list(self.raw_range),
                    class_names=list(self.class_names), inv_std=list(self.inv_std), formula=FORMULA)
        return data

    def describe(self) -> str:
        """One line for reports."""
        show = lambda values: ", ".join(f"{v:.4g}" for v in values)
        return (f"{self.layout} input = (raw - [{show(self.mean)}]) / [{show(self.std)}] per channel; raw "
                f"{self.raw_dtype} in [{self.raw_range[0]:g}, {self.raw_range[1]:g}]; {len(self.class_names)} classes")


def as_preprocessing(value) -> Optional[Preprocessing]:
    """``None``, a :class:`Preprocessing`, its dict, or a :class:`jointopt.data.Dataset` → Preprocessing."""
    if value is None or isinstance(value, Preprocessing):
        return value
    if isinstance(value, dict):
        return Preprocessing.from_dict(value)
    if hasattr(value, "mean") and hasattr(value, "train") and hasattr(value, "class_names"):
        return Preprocessing.from_dataset(value)
    raise ExportError(f"preprocessing must be a Preprocessing, its dict or a jointopt Dataset, "
                      f"got {type(value).__name__}")


def check_classes(pre: Optional[Preprocessing], outputs: int) -> None:
    """The class names must match the network's output size when both are known."""
    if pre is not None and pre.class_names and len(pre.class_names) != outputs:
        raise ExportError(f"preprocessing names {len(pre.class_names)} classes but the network has {outputs} "
                          "outputs; pass the data set the network was trained on")


def read_preprocessing(path: Union[str, Path]) -> Optional[Preprocessing]:
    """The preprocessing an export recorded: from an export directory, ``verify.json``, a manifest
    (``NAME.json``), an ``.onnx`` or a ``.packed.npz`` file; None when the export did not know it."""
    path = Path(path)
    if path.is_dir():
        path = path / "verify.json"
    if not path.exists():
        raise ExportError(f"no export file at {str(path)!r}")
    if path.suffix == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        found = json.loads(props["jointopt.preprocessing"]) if "jointopt.preprocessing" in props else None
    elif path.name.endswith(".npz"):
        from .npz_format import read_meta

        found = read_meta(path).get("preprocessing")
    else:
        try:
            found = json.loads(path.read_text()).get("preprocessing")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            raise ExportError(f"{str(path)!r} is not a jointopt export file") from None
    return Preprocessing.from_dict(found) if isinstance(found, dict) else None
