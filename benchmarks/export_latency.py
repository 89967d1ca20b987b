"""onnxruntime latency of exported ResNet-8 networks pruned to several MAC fractions.

    python benchmarks/export_latency.py --reps 40        # the recorded run (writes benchmarks/results/)
    python benchmarks/export_latency.py --reps 5 --out /tmp/smoke

Every network is the MLPerf Tiny ResNet-8 (CIFAR-10 shape, random weights: latency does not depend
on the values) converted with jointopt, with the keep gates set so that each prunable channel group
keeps a fraction of its channels (100 %, 70 %, 50 %, 35 %, 25 %), frozen and exported to ONNX by
``jointopt.export`` (which also verifies it against PyTorch). The unpruned network (all weights
8 bit) is the reference; the pruned ones also use 8-bit weights, so the comparison isolates pruning.
Two extra rows use mixed 2/4/8-bit weights to show what mixed precision costs in onnxruntime.
For context, the float graph of each 8-bit network (no Q/DQ nodes: what the exporter writes
before jointopt replaces the weights) is timed too, showing how onnxruntime's own convolutions
scale with pruning on layers this small.

onnxruntime: CPU provider, 1 intra-op thread, default graph optimisations. Latency per inference
is the median over interleaved repetitions (each repetition times every model once, in a rotated
order), at batch 1 and batch 32, measured as CPU time of the inference thread (robust to other
jobs on a shared machine) and as wall clock. Speed-up = reference latency / latency; the target
is speed-up >= 0.7 x MAC reduction wherever the MAC reduction is >= 2x.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import jointopt
from jointopt.export import export
from jointopt.export.onnx_format import _float_graph
from jointopt.graph import frozen_cost

try:  # run as part of the benchmarks package, or as a script
    from ._machine import cpu_model
except ImportError:
    from _machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
KEEP = (1.0, 0.7, 0.5, 0.35, 0.25)
MIXED_KEEP = (1.0, 0.5)


def frozen_resnet8(keep: float, mixed: bool, seed: int = 0):
    torch.manual_seed(seed)
    model = jointopt.create_model("resnet8").eval()
    x = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    net = jointopt.convert(model, x)
    g = torch.Generator().manual_seed(seed + 1)
    for gate in net.gates.values():
        if gate.prunable:
            k = max(1, round(keep * gate.size))
            logits = torch.full((gate.size,), -5.0)
            logits[torch.randperm(gate.size, generator=g)[:k]] = 5.0
            gate.logits.data = logits
    for _, layer in net.searchable_layers():
        if mixed:
            layer.bit_logits.data = torch.randn(layer.bit_logits.shape, generator=g)
        else:
            layer.bit_logits.data.zero_()
            layer.bit_logits.data[:, -1] = 10.0  # the largest width: 8 bit
    return net.eval().set_mode("hard").freeze().eval(), x


def session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def fused_ops(path) -> dict:
    """Operator counts of the graph onnxruntime actually runs (after its optimisations)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        options.log_severity_level = 3  # the "optimised model is hardware specific" warning is expected here
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model = onnx.load(options.optimized_model_filepath)
    counts = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def measure(sessions: dict, batch: int, reps: int, budget: float = 0.03) -> dict:
    """Median seconds per inference of each session, interleaved: ``{"wall": {...}, "cpu": {...}}``.

    ``cpu`` is the CPU time of the calling thread (onnxruntime runs single-threaded in it): on a
    shared machine it is not inflated by the time other processes hold the core.
    """
    x = np.random.default_rng(0).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    inner = {}
    for name, s in sessions.items():
        for _ in range(3):
            s.run(None, {"input": x})
        start = time.thread_time()
        s.run(None, {"input": x})
        inner[name] = max(1, round(budget / max(time.thread_time() - start, 1e-6)))
    wall = {name: [] for name in sessions}
    cpu = {name: [] for name in sessions}
    names = list(sessions)
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            s, n = sessions[name], inner[name]
            start, start_cpu = time.perf_counter(), time.thread_time()
            for _ in range(n):
                s.run(None, {"input": x})
            cpu[name].append((time.thread_time() - start_cpu) / n)
            wall[name].append((time.perf_counter() - start) / n)
    return {"wall": {k: statistics.median(v) for k, v in wall.items()},
            "cpu": {k: statistics.median(v) for k, v in cpu.items()}}


def cpu_name() -> str:
    return cpu_model()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=25, help="interleaved repetitions (default 25)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="where to write the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import onnx
    import onnxruntime

    rows, sessions = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        variants = [(k, False) for k in KEEP] + [(k, True) for k in MIXED_KEEP]
        for keep, mixed in variants:
            name = f"keep {round(100 * keep)} %, {'mixed 2/4/8' if mixed else 'w8'}"
            frozen, x = frozen_resnet8(keep, mixed)
            result = export(frozen, Path(tmp) / name.replace(" ", "_").replace("/", ""), x, "onnx")
            path = result.files["onnx"]
            sessions[name] = session(path)
            if not mixed:
                float_path = Path(tmp) / f"float_{round(100 * keep)}.onnx"
                onnx.save(_float_graph(frozen, x[:1]), str(float_path))
                sessions["float " + name] = session(float_path)
            hist = {}
            for r in result.summary:
                for b, n in r["bits"].items():
                    hist[b] = hist.get(b, 0) + n
            rows.append({"network": name, "keep": keep, "mixed": mixed,
                         "macs": int(frozen_cost(frozen, "macs")), "memory_bits": int(frozen_cost(frozen, "memory")),
                         "channels_kept": sum(r["kept"] for r in result.summary), "bits": hist,
                         "onnx_bytes": path.stat().st_size, "top1_agreement": result.verification["onnx"]["top1_agreement"],
                         "ort_ops": fused_ops(path)})
            print(f"exported {name}: {rows[-1]['macs'] / 1e6:.2f} MMAC", flush=True)
        load = os.getloadavg()
        latency = {batch: measure(sessions, batch, args.reps) for batch in (1, 32)}
        load_after = os.getloadavg()
    reference = rows[0]
    for row in rows:
        row["mac_reduction"] = reference["macs"] / row["macs"]
        for batch in (1, 32):
            for clock in ("cpu", "wall"):
                t = latency[batch][clock]
                row[f"{clock}_ms_b{batch}"] = 1000 * t[row["network"]]
                row[f"{clock}_speedup_b{batch}"] = t[reference["network"]] / t[row["network"]]
                if not row["mixed"]:
                    row[f"float_{clock}_ms_b{batch}"] = 1000 * t["float " + row["network"]]
                    row[f"float_{clock}_speedup_b{batch}"] = t["float " + reference["network"]] / t["float " + row["network"]]
            row[f"meets_target_b{batch}"] = (None if row["mac_reduction"] < 2 or row["mixed"]
                                             else row[f"cpu_speedup_b{batch}"] >= 0.7 * row["mac_reduction"])
    record = {
        "benchmark": "export_latency", "command": "python " + " ".join([Path(__file__).relative_to(REPO).as_posix(), *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": [round(v, 2) for v in load], "load_average_after": [round(v, 2) for v in load_after]},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__, "numpy": np.__version__, "jointopt": jointopt.__version__},
        "settings": {"threads": 1, "reps": args.reps, "batches": [1, 32], "graph_optimizations": "onnxruntime defaults",
                     "clock": "target judged on thread CPU time (time.thread_time); wall clock reported too",
                     "target": "speed-up >= 0.7 x MAC reduction where the reduction is >= 2x (8-bit rows)"},
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "export_latency.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "export_latency.md").write_text(markdown(record) + "\n")
    print(markdown(record))
    return 0


def markdown(record: dict) -> str:
    m, v = record["machine"], record["versions"]
    lines = ["# Export latency: pruned ResNet-8 in onnxruntime", "",
             f"- command: `{record['command']}`", f"- date: {record['date']}",
             f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; load average "
             f"{m['load_average_before'][0]} before / {m['load_average_after'][0]} after (a shared machine: other jobs "
             "held the cores, so latency is the CPU time of the inference thread; wall clock in the JSON)",
             f"- versions: python {v['python']}, torch {v['torch']}, onnx {v['onnx']}, onnxruntime {v['onnxruntime']}, "
             f"numpy {v['numpy']}, jointopt {v['jointopt']}",
             f"- onnxruntime CPU provider, 1 thread, default graph optimisations; median of {record['settings']['reps']} "
             "interleaved repetitions; speed-up vs the unpruned w8 network of the same run",
             f"- target: {record['settings']['target']}", "",
             "| network | MMAC | MAC reduction | b1 latency (ms) | b1 speed-up | b32 latency (ms) | b32 speed-up | "
             "target met (b1 / b32) | float graph speed-up (b1 / b32) |", "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in record["rows"]:
        met = " / ".join("—" if r[f"meets_target_b{b}"] is None else ("yes" if r[f"meets_target_b{b}"] else "no")
                         for b in (1, 32))
        fl = f"{r['float_cpu_speedup_b1']:.2f}× / {r['float_cpu_speedup_b32']:.2f}×" if "float_cpu_speedup_b1" in r else "—"
        lines.append(f"| {r['network']} | {r['macs'] / 1e6:.2f} | {r['mac_reduction']:.2f}× | {r['cpu_ms_b1']:.3f} | "
                     f"{r['cpu_speedup_b1']:.2f}× | {r['cpu_ms_b32']:.2f} | {r['cpu_speedup_b32']:.2f}× | {met} | {fl} |")
    ref = record["rows"][0]["ort_ops"]
    mixed = [r for r in record["rows"] if r["mixed"]]
    pruned = [r for r in record["rows"] if not r["mixed"] and r["mac_reduction"] >= 2]
    met = sum(bool(r[f"meets_target_b{b}"]) for r in pruned for b in (1, 32))
    lines += ["", f"Target met in {met} of {2 * len(pruned)} (row, batch) cases. The float graph column times the same "
              "pruned networks exported without any Q/DQ node, i.e. how onnxruntime's own convolutions scale with "
              "pruning at these channel counts: " + ", ".join(
                  f"{r['mac_reduction']:.1f}× fewer MACs → {r['float_cpu_speedup_b32']:.2f}× (float) vs "
                  f"{r['cpu_speedup_b32']:.2f}× (exported) at batch 32" for r in pruned) + ".", "",
              "Operators onnxruntime runs for the w8 reference after its optimisations: "
              + ", ".join(f"{k} {n}" for k, n in ref.items()) + "."]
    if mixed:
        lines.append(f"For {mixed[-1]['network']}: " + ", ".join(f"{k} {n}" for k, n in mixed[-1]["ort_ops"].items())
                     + ". Mixed-width layers are re-assembled with Concat + Gather, so onnxruntime cannot fuse them "
                     "into integer convolutions and runs them as DequantizeLinear + float Conv.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
