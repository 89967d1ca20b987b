"""Export to C and check it: integer program → files → compiled ``infer`` == Python reference, bit for bit.

:func:`export_c` is what ``export(frozen, out, x, "c")`` runs. Its checks (``verify.json`` → ``c``):

* the integer reference (:func:`~jointopt.export.integer.run_reference`) against the
  fake-quantized frozen network on the export batch: top-1 agreement (at least
  :data:`MIN_AGREEMENT`) and the largest logit difference;
* with a C compiler on the machine (``$CC``, ``cc``, ``gcc`` or ``clang``): the files are built with
  the documented command and ``infer`` must print the reference's logits bit for bit on up to
  :data:`C_SAMPLES` inputs; without one the check says so and is skipped;
* the arena equals the ``ram`` cost model of the frozen network, and the packed weights the
  ``memory`` cost model (``sizes``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

MIN_AGREEMENT = 0.99
TIE_TOLERANCE = 0.02  # a changed class is a near tie when PyTorch's margin is at most 2 % of its largest |output|
C_SAMPLES = 64
FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def find_compiler() -> Optional[str]:
    """A C compiler: ``$CC`` if set, else ``cc``, ``gcc`` or ``clang`` from the PATH; None when there is none."""
    for candidate in filter(None, (os.environ.get("CC"), "cc", "gcc", "clang")):
        path = shutil.which(candidate)
        if path:
            return path
    return None


def compile_c(directory, binary, compiler: Optional[str] = None, extra: Tuple[str, ...] = (),
              sources: Optional[List[str]] = None) -> Path:
    """Build every ``.c`` file of ``directory`` (or the named ``sources`` in it) into ``binary``, documented flags.

    Raises:
        RuntimeError: no compiler, or the build failed (the message holds the compiler's output).
    """
    compiler = compiler or find_compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (set $CC or install cc/gcc/clang)")
    directory = Path(directory)
    sources = sorted(str(p) for p in directory.glob("*.c")) if sources is None else [str(directory / s) for s in sources]
    cmd = [compiler, *FLAGS, *extra, *sources, "-I", str(directory), "-lm", "-o", str(binary)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")
    return Path(binary)


def run_infer(binary, x, timeout: float = 120.0) -> np.ndarray:
    """Logits [N, K] (float32) that ``infer N`` prints for the float batch ``x`` [N, ...]."""
    x = np.ascontiguousarray(np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype="<f4"))
    done = subprocess.run([str(binary), str(len(x))], input=x.tobytes(), capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{binary} exited with {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
    values = np.array([np.float32(float(v)) for v in done.stdout.split()], dtype=np.float32)
    return values.reshape(len(x), -1)


def time_infer(binary, sample, repeat: int = 200) -> float:
    """Mean host time of one inference in microseconds, measured inside ``infer --time``."""
    x = np.asarray(sample.detach().cpu().numpy() if isinstance(sample, torch.Tensor) else sample, dtype="<f4")
    done = subprocess.run([str(binary), "--time", str(repeat)], input=x.tobytes(), capture_output=True, check=True)
    return float(done.stderr.split()[0])


def agreement(program, frozen_out: torch.Tensor, x: torch.Tensor) -> dict:
    """Integer reference vs the fake-quantized frozen network on ``x``.

    ``decisive_agreement`` forgives a changed class where PyTorch itself hardly decides: its margin
    between its class and the integer network's is at most :data:`TIE_TOLERANCE` of its largest
    |output| (the integer rounding legitimately flips such near ties; the export checks this one).
    """
    from .integer import run_reference

    logits, _ = run_reference(program, x)
    return compare(logits, frozen_out.detach().cpu().float().reshape(len(x), -1).numpy())


def compare(logits: np.ndarray, ref: np.ndarray) -> dict:
    """Top-1 agreement of ``logits`` with the reference outputs ``ref``, near ties counted apart (see :func:`agreement`)."""
    diff = np.abs(logits - ref)
    rows = np.arange(len(logits))
    mine, theirs = logits.argmax(1), ref.argmax(1)
    margin = ref[rows, theirs] - ref[rows, mine]
    scale = float(np.abs(ref).max(initial=0))
    ties = int(((mine != theirs) & (margin <= TIE_TOLERANCE * scale)).sum())
    agree = float((mine == theirs).mean()) if len(logits) else 1.0
    return {"samples": int(len(logits)), "top1_agreement": agree, "near_ties": ties,
            "decisive_agreement": agree + ties / max(len(logits), 1), "tie_tolerance": TIE_TOLERANCE,
            "max_abs_diff": float(diff.max(initial=0)), "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
            "output_max_abs": scale}


def verify_c(directory, program, x: torch.Tensor, name: str, samples: int = C_SAMPLES) -> dict:
    """Build ``name``'s files in ``directory`` and compare ``infer`` with the Python reference bit for bit."""
    from .integer import run_reference

    compiler = find_compiler()
    if compiler is None:
        return {"compiled": False, "reason": "no C compiler on this machine (set $CC)", "ok": True}
    batch = x[:samples]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            sources = [files.name for files in sorted(Path(directory).glob("*.c"))
                       if files.name in ("jointopt_runtime.c", f"{name}.c", f"{name}_main.c")]
            binary = compile_c(directory, Path(tmp) / "infer", compiler, sources=sources)
            got = run_infer(binary, batch)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            return {"compiled": False, "reason": str(exc)[:2000], "ok": False}
    ref, _ = run_reference(program, batch)
    same = got.shape == ref.shape and bool(np.array_equal(got.view(np.uint32), ref.view(np.uint32)))
    differing = int((got != ref).any(1).sum()) if got.shape == ref.shape else len(batch)
    return {"compiled": True, "compiler": compiler, "samples": int(len(batch)), "bit_exact": same,
            "differing_samples": differing, "ok": same}


def export_integer(frozen, out, x: torch.Tensor, expected: torch.Tensor, name: str, formats, comment: str = "",
                   preprocessing=None, best_effort: bool = False) -> Tuple[Dict[str, Path], dict]:
    """The integer formats (``c``, ``onnx_int8``) of ``frozen``: one program, calibrated on ``x``.

    Args:
        preprocessing: the export's :class:`~jointopt.export.preprocessing.Preprocessing` (or None),
            written into the C header and the ONNX metadata.
        best_effort: a network the integer runtime cannot run (an operation it lacks) is skipped
            with the reason instead of failing the export (``formats="all"``).

    Returns:
        (files by role, the ``c`` / ``onnx_int8`` entries of ``verify.json``).
    """
    from ..errors import ExportError
    from .integer import build_program
    from .onnx_int8 import export_onnx_int8

    try:
        program = build_program(frozen, x)
    except ExportError as exc:
        if not best_effort:
            raise
        return {}, {f: {"skipped": str(exc), "ok": True} for f in ("c", "onnx_int8") if f in formats}
    files, checks = {}, {}
    record = preprocessing_record(preprocessing)
    if "c" in formats:
        c_files, checks["c"] = export_c(program, frozen, out, x, expected, name, comment, record)
        files.update(c_files)
    if "onnx_int8" in formats:
        try:
            files["onnx_int8"], checks["onnx_int8"] = export_onnx_int8(program, Path(out) / f"{name}.int8.onnx", x,
                                                                       expected, comment, record)
        except ExportError as exc:
            if not best_effort:
                raise
            checks["onnx_int8"] = {"skipped": str(exc), "ok": True}
    return files, checks


def export_c(program, frozen, out, x: torch.Tensor, expected: torch.Tensor, name: str, comment: str = "",
             preprocessing: Optional[dict] = None) -> Tuple[Dict[str, Path], dict]:
    """Write the C files of ``program`` (the integer form of ``frozen``) and verify them."""
    from .c_format import flash_bytes, write_c

    files = write_c(program, out, name, comment, preprocessing)
    check = {"reference": agreement(program, expected, x), "arena_bytes": program.arena_bytes,
             "flash_bytes": flash_bytes(program, preprocessing), "preprocessing": preprocessing is not None, "ram_cost_bytes": ram_cost(frozen, x[:2]), "notes": program.notes}
    check["reference"]["min_agreement"] = MIN_AGREEMENT
    check["build"] = verify_c(out, program, x, Path(files["c_source"]).stem)
    check["ok"] = bool(check["build"]["ok"] and check["reference"]["decisive_agreement"] >= MIN_AGREEMENT
                       and check["ram_cost_bytes"] == program.arena_bytes)
    return files, check


def ram_cost(frozen, x: torch.Tensor) -> int:
    """The ``ram`` cost model bound to ``frozen``'s graph, on its layer statistics (bytes)."""
    from jointopt.cost_models.ram import RamCost

    from ..graph.freeze import frozen_layer_stats

    return int(round(float(RamCost.for_network(frozen, x).network_cost(frozen_layer_stats(frozen)))))


def preprocessing_record(pre) -> Optional[dict]:
    """The header's view of a :class:`~jointopt.export.preprocessing.Preprocessing` (None: not recorded)."""
    if pre is None:
        return None
    return {"dataset": pre.dataset, "layout": pre.layout, "mean": list(pre.mean), "std": list(pre.std),
            "inv_std": list(pre.inv_std), "min": pre.raw_range[0], "max": pre.raw_range[1],
            "raw_dtype": pre.raw_dtype, "class_names": list(pre.class_names)}


def report_lines(check: dict) -> List[str]:
    """The ``c`` lines of the export report."""
    if "skipped" in check:
        return [f"c      skipped: {check['skipped']}"]
    r, b = check["reference"], check["build"]
    status = "ok" if check.get("ok") else "FAILED"
    ties = r.get("near_ties", 0)
    forgiven = (f", {ties} near tie{'s' if ties > 1 else ''} (PyTorch's margin under {100 * r['tie_tolerance']:g} % "
                "of its largest output)" if ties else "")
    lines = [f"c      integer reference vs PyTorch on {r['samples']} samples: top-1 agreement "
             f"{100 * r['top1_agreement']:.2f} %{forgiven} (needs {100 * r['min_agreement']:.0f} %), max |diff| "
             f"{r['max_abs_diff']:.3g} (outputs up to {r['output_max_abs']:.3g})"]
    if b.get("compiled"):
        lines.append(f"       compiled with {Path(b['compiler']).name}: infer == reference bit for bit on {b['samples']} "
                     f"samples: {'yes' if b['bit_exact'] else 'NO (%d differ)' % b['differing_samples']}")
    else:
        lines.append(f"       not compiled: {b['reason'].splitlines()[0] if b.get('reason') else 'unknown reason'}")
    f = check["flash_bytes"]
    lines.append(f"       RAM: arena {check['arena_bytes']:,} bytes (ram cost {check['ram_cost_bytes']:,}); flash: "
                 f"{f['total']:,} bytes of constants ({f['weights']:,} weights + {f['total'] - f['weights']:,} "
                 f"biases, requantization, widths, tables, descriptors)  {status}")
    return lines
