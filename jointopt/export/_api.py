"""``export``: one frozen network → the chosen formats in one directory, each verified."""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from .._files import atomic_write_text
from ..errors import ExportError
from .manifest import check_frozen

FORMATS = ("torch", "onnx", "npz", "c", "onnx_int8")
VERIFY_JSON = "verify.json"
SUMMARY_TXT = "summary.txt"


def parse_formats(formats: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """``"all"``, one name, or several (``"onnx,c"`` or a list) → the format names in canonical order."""
    items = [formats] if isinstance(formats, str) else list(formats)
    names = {part.strip() for item in items for part in str(item).split(",") if part.strip()}
    if "all" in names:
        return FORMATS
    unknown = sorted(names - set(FORMATS))
    if unknown or not names:
        raise ExportError(f"unknown export format {', '.join(map(repr, unknown)) or '(none)'}; "
                          f"choose from {', '.join(FORMATS)} or all")
    return tuple(f for f in FORMATS if f in names)


@dataclass(frozen=True)
class ExportOptions:
    """How to export.

    Attributes:
        formats: any of ``torch``, ``onnx``, ``npz``, ``c``, ``onnx_int8`` (or ``"all"``).
        name: base name of the files (``NAME.json``, ``NAME.onnx``, ``NAME.packed.npz``, ``NAME.h``)
            and prefix of the C identifiers.
        int2: ONNX storage of 2-bit weights: ``"int4"`` (default: 2-bit codes in INT4 containers,
            opset 21, what onnxruntime 1.31 runs on CPU with its default optimisations) or
            ``"native"`` INT2 tensors (opset 25; valid ONNX, but onnxruntime 1.31's Q/DQ fusion
            rejects a Conv whose weights are all INT2, so it runs only with graph optimisations off).
        opset: ONNX opset (default: the smallest that holds the weights, 21 or 25).
        min_agreement: onnxruntime must agree with PyTorch on the top-1 class of at least this
            fraction of the verification batch, both running the ONNX graph as written (graph
            optimisations off) and with its default settings (Q/DQ fused into integer kernels
            where it can), or the export fails.
        tie_tolerance: in the default-settings run, a changed top-1 class is forgiven when PyTorch
            itself hardly decides (its margin between the two classes is at most this fraction
            of its largest |output|): the integer kernels' rounding may flip such near ties.
        normalize_input: when the preprocessing is known, the ONNX graph takes raw data (input
            ``raw``) and normalises it itself (``Sub`` mean, ``Mul`` 1/std, in float32 as the
            training pipeline); False: it takes the normalised input the PyTorch network takes.
            Every format records the preprocessing either way.
        onnx_mixed: how the ONNX stores a layer with several weight widths: ``"grouped"``
            (default: one INT4/UINT8 initializer per width, Concat + Gather back into channel
            order; onnxruntime runs the layer in float), ``"uint8"`` (every code in one UINT8
            initializer: smaller for small layers, and onnxruntime fuses it into an integer
            kernel whose coarse int32 bias flips a few more near ties) or ``"smallest"`` (per
            layer, whichever of the two is smaller). All store the same weights.
    """

    formats: Tuple[str, ...] = FORMATS
    name: str = "model"
    int2: str = "int4"
    opset: Optional[int] = None
    min_agreement: float = 0.999
    tie_tolerance: float = 0.02
    normalize_input: bool = True
    onnx_mixed: str = "grouped"

    def __post_init__(self):
        object.__setattr__(self, "formats", parse_formats(self.formats))
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name):
            raise ExportError(f"export name {self.name!r} must be letters, digits, '_' or '-'")
        if self.int2 not in ("native", "int4"):
            raise ExportError(f"int2={self.int2!r}; choose native or int4")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ExportError(f"min_agreement={self.min_agreement} must be in [0, 1]")
        if self.onnx_mixed not in ("smallest", "grouped", "uint8"):
            raise ExportError(f"onnx_mixed={self.onnx_mixed!r}; choose smallest, grouped or uint8")
        if not 0.0 <= self.tie_tolerance < 1.0:
            raise ExportError(f"tie_tolerance={self.tie_tolerance} must be in [0, 1)")


@dataclass
class ExportResult:
    """What :func:`export` wrote and what verification found."""

    directory: Path
    files: Dict[str, Path]
    summary: List[dict]
    verification: dict
    failures: List[str] = field(default_factory=list)

    def table(self) -> str:
        """The per-layer summary (what ``summary.txt`` holds) as an aligned text table."""
        from .summary import summary_table

        return summary_table(self.summary)

    def report(self) -> str:
        """One line per check, as the CLI prints it."""
        v, lines = self.verification, []
        if "onnx" in v:
            lines.extend(_onnx_lines(v["onnx"], v["input"]))
        if "torch" in v:
            t = v["torch"]
            lines.append(f"torch  reloaded with jointopt.load: max |diff| {t['max_abs_diff']:.3g}  {_ok(t)}")
        s = v["sizes"]
        lines.append(f"sizes  packed weights {s['packed_bits']:,} bits = memory cost {s['memory_cost_bits']:,} bits; "
                     f"{s['packed_bytes']:,} bytes = Σ ceil(layer bits / 8)  {_ok(s)}")
        if "npz" in v:
            lines.append(f"npz    codes, scales, biases read back: "
                         f"{'all match' if v['npz']['codes_match'] else ', '.join(v['npz']['mismatches'])}  {_ok(v['npz'])}")
        if "c" in v:
            from .c_export import report_lines

            lines.extend(report_lines(v["c"]))
        if "onnx_int8" in v:
            from .onnx_int8 import report_line

            lines.append(report_line(v["onnx_int8"]))
        return "\n".join(lines)


def _ok(check: dict) -> str:
    return "ok" if check.get("ok") else "FAILED"


def _onnx_lines(o: dict, source: str) -> List[str]:
    """The ``onnx`` lines of the report: each onnxruntime run with its own verdict, and what it fused."""
    opt = o["optimized"]
    raw = " (raw input, normalised in the graph)" if o.get("input") == "raw" else ""
    lines = [f"onnx   onnxruntime vs PyTorch on {o['samples']} {source} samples{raw}, graph as written: max |diff| "
             f"{o['max_abs_diff']:.3g} (outputs up to {o['output_max_abs']:.3g}), top-1 agreement "
             f"{100 * o['top1_agreement']:.2f} %; opset {o['opset']}, IR {o['ir_version']}, checker passed  "
             f"{'ok' if o['top1_agreement'] >= o['min_agreement'] else 'FAILED'}"]
    if "error" in opt:
        return lines + [f"       default settings: cannot run ({opt['note']})  not checked"]
    kernels = opt.get("kernels", {}).get("counts", {})
    count = sum(kernels.values())
    fused = (f"Q/DQ fused into {count} integer kernel{'s' if count > 1 else ''} "
             f"({', '.join(f'{k} x{n}' for k, n in sorted(kernels.items()))})" if kernels
             else "no Q/DQ fusion formed: every layer runs in float")
    ties = opt.get("near_ties", 0)
    forgiven = (f" ({ties} flip{'s' if ties > 1 else ''} a near tie: PyTorch's margin under "
                f"{100 * opt['tie_tolerance']:g} % of its largest output)" if ties else "")
    return lines + [f"       default settings (ORT_ENABLE_ALL), {fused}: max |diff| {opt['max_abs_diff']:.3g}, "
                    f"top-1 agreement {100 * opt['top1_agreement']:.2f} %{forgiven}  {_ok(opt)}"]


def _example(example_input, seed: int = 0) -> Tuple[torch.Tensor, str]:
    if isinstance(example_input, torch.Tensor):
        if example_input.dim() < 2:
            raise ExportError(f"example_input must be a batch [N, ...], got shape {list(example_input.shape)}")
        return example_input.detach().float().cpu(), "given"
    try:
        shape = tuple(int(s) for s in example_input)
    except TypeError:
        raise ExportError("example_input must be a batch tensor or the shape of one sample, e.g. (3, 32, 32)") from None
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((32, *shape), generator=generator), "random normal"


def export(frozen, out: Union[str, Path], example_input, formats: Union[str, Sequence[str], None] = None, *,
           reference=None, metadata: Optional[dict] = None, options: Optional[ExportOptions] = None,
           input_name: Optional[str] = None, preprocessing=None) -> ExportResult:
    """Export a frozen network to ``out`` in each format and verify every file.

    Args:
        frozen: what ``SearchableNetwork.freeze()`` or :func:`jointopt.load` returns.
        out: directory to write into (created).
        example_input: a batch of real inputs (used for tracing and verification — a validation
            batch is best), or the shape of one sample (then a random normal batch is used).
        formats: overrides ``options.formats`` (``"all"``, ``"onnx"``, ``["torch", "c"]``, ...).
        reference: the searchable network the frozen one came from: adds the channel totals
            (kept / total) to the summary and the manifest.
        metadata: JSON-able facts recorded in every file (run, trial, accuracy, costs, ...).
        options: :class:`ExportOptions`.
        input_name: what the batch is, for the report (e.g. ``"validation"``).
        preprocessing: how raw data becomes the network's input — a
            :class:`~jointopt.export.preprocessing.Preprocessing`, its dict, or the
            :class:`jointopt.data.Dataset` the network was trained on. Recorded in every file and in
            ``verify.json``; the ONNX graph applies it (``options.normalize_input``). ``example_input``
            stays the normalised batch.

    Returns:
        An :class:`ExportResult`; ``verify.json`` and ``summary.txt`` are written next to the files.

    Raises:
        ExportError: the network cannot be exported, or a verification check failed (the files
            and ``verify.json`` are kept for inspection).
    """
    from . import npz_format, onnx_format, torch_format, verify
    from .packing import pack_network
    from .preprocessing import as_preprocessing, check_classes
    from .summary import original_channels, summary_rows, summary_table

    options = options or ExportOptions()
    if formats is not None:
        options = ExportOptions(**{**asdict(options), "formats": parse_formats(formats)})
    check_frozen(frozen)
    off = [n for n, m in frozen.named_modules() if getattr(m, "quantize", True) is False]
    if off and set(options.formats) - {"torch"}:
        raise ExportError(f"layers {off[:3]} have quantization switched off (FrozenLayer.quantize = False): the "
                          "integer formats store quantized weights; switch it back on or export only 'torch'")
    if any(p.device.type != "cpu" for p in frozen.parameters()):
        frozen = copy.deepcopy(frozen).cpu()  # files are written from CPU tensors; the caller's copy stays
    x, source = _example(example_input)
    source = input_name or source
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    was_training = frozen.training
    frozen.eval()
    try:
        with torch.no_grad():
            expected = frozen(x)
            layers = pack_network(frozen)
        pre = as_preprocessing(preprocessing)
        check_classes(pre, expected.reshape(len(x), -1).shape[1])
        totals = original_channels(reference)
        meta = {"metadata": metadata or {}, "original_channels": totals,
                "preprocessing": pre.to_dict() if pre is not None else None}
        files, checks = {}, {"input": source, "sizes": verify.verify_sizes(frozen, layers), "preprocessing":
                             pre.to_dict() if pre is not None else "not recorded: pass preprocessing= (or export a trial "
                             "of a run directory) to record the normalisation in the files"}
        if "torch" in options.formats:
            files.update(torch_format.save_torch(frozen, out, options.name, x.shape[1:], meta))
            checks["torch"] = verify.verify_torch(files["manifest"], expected, x)
        if "onnx" in options.formats:
            normalize = pre is not None and options.normalize_input
            files["onnx"] = onnx_format.write_onnx(frozen, layers, x[:1], out / f"{options.name}.onnx", options.int2,
                                                   options.opset, metadata, pre, normalize, options.onnx_mixed)
            onnx_x, onnx_expected = x, expected
            if normalize:  # the graph takes raw data: feed a raw batch, compare with PyTorch on its normalisation
                onnx_x = pre.raw_from(x)
                with torch.no_grad():
                    onnx_expected = frozen(pre.normalize(onnx_x))
            checks["onnx"] = verify.verify_onnx(files["onnx"], onnx_expected, onnx_x, options.min_agreement,
                                                options.tie_tolerance)
        if "npz" in options.formats:
            files["npz"] = npz_format.write_packed(layers, out / f"{options.name}{npz_format.SUFFIX}", meta)
            checks["npz"] = verify.verify_packed(files["npz"], frozen)
        if {"c", "onnx_int8"} & set(options.formats):
            from .c_export import export_integer

            comment = json.dumps(metadata, default=str) if metadata else ""
            integer_files, integer_checks = export_integer(frozen, out, x, expected, options.name, options.formats,
                                                           comment, pre, best_effort=options.formats == FORMATS)
            files.update(integer_files)
            checks.update(integer_checks)
    finally:
        frozen.train(was_training)
    rows = summary_rows(layers, totals)
    checks["file_bytes"] = {k: p.stat().st_size for k, p in files.items()}
    failures = [k for k, v in checks.items() if isinstance(v, dict) and v.get("ok") is False]
    checks["ok"] = not failures
    merged = _merge_verification(out / VERIFY_JSON, checks)
    atomic_write_text(out / VERIFY_JSON, json.dumps(merged, indent=1, default=str) + "\n")
    atomic_write_text(out / SUMMARY_TXT, summary_table(rows) + "\n")
    result = ExportResult(out, {**files, "verify": out / VERIFY_JSON, "summary": out / SUMMARY_TXT}, rows, checks,
                          failures)
    if failures:
        raise ExportError(f"export verification failed ({', '.join(failures)}); see {str(out / VERIFY_JSON)!r}:\n"
                          + result.report())
    return result


def _merge_verification(path: Path, checks: dict) -> dict:
    """``verify.json`` keeps the checks of formats exported earlier into the same folder from the same
    network (same packed sizes), so an ONNX export followed by a C export records both."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return checks
    sizes = json.loads(json.dumps(checks.get("sizes"), default=str))
    if not isinstance(previous, dict) or previous.get("sizes") != sizes:
        return checks  # another network: its checks say nothing about these files
    merged = {k: v for k, v in previous.items() if k not in checks}
    merged.update(checks)
    merged["file_bytes"] = {**previous.get("file_bytes", {}), **checks["file_bytes"]}
    merged["ok"] = not any(isinstance(v, dict) and v.get("ok") is False for v in merged.values())
    return merged
