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
from jointopt.zoo import model_info

try:  # run as part of the benchmarks package, or as a script
    from ._machine import cpu_model
except ImportError:
    from _machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
KEEP = (1.0, 0.7, 0.5, 0.35, 0.25)
MIXED_KEEP = (1.0, 0.5)
WIDE_KEEP = (1.0, 0.7, 0.5, 0.35)  # ResNet-18 (Tiny ImageNet, 64x64): 64..512 channels, batch 1 only
CONV_CHANNELS = (4, 8, 11, 12, 16, 22, 24, 32, 45, 48, 64)


def frozen_network(keep: float, mixed: bool, seed: int = 0, model: str = "resnet8"):
    torch.manual_seed(seed)
    shape = model_info(model).input_shape
    module = jointopt.create_model(model).eval()
    x = torch.randn(8 if model == "resnet18" else 32, *shape, generator=torch.Generator().manual_seed(seed))
    net = jointopt.convert(module, x)
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


def measure(sessions: dict, inputs: dict, reps: int, budget: float = 0.03) -> dict:
    """Median seconds per inference of each session, interleaved: ``{"wall": {...}, "cpu": {...}}``.

    ``inputs`` maps each session's name to its input array. ``cpu`` is the CPU time of the calling
    thread (onnxruntime runs single-threaded in it): on a shared machine it is not inflated by the
    time other processes hold the core.
    """
    inner = {}
    for name, s in sessions.items():
        for _ in range(3):
            s.run(None, {"input": inputs[name]})
        start = time.thread_time()
        s.run(None, {"input": inputs[name]})
        inner[name] = max(1, round(budget / max(time.thread_time() - start, 1e-6)))
    wall = {name: [] for name in sessions}
    cpu = {name: [] for name in sessions}
    names = list(sessions)
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            s, n, x = sessions[name], inner[name], {"input": inputs[name]}
            start, start_cpu = time.perf_counter(), time.thread_time()
            for _ in range(n):
                s.run(None, x)
            cpu[name].append((time.thread_time() - start_cpu) / n)
            wall[name].append((time.perf_counter() - start) / n)
    return {"wall": {k: statistics.median(v) for k, v in wall.items()},
            "cpu": {k: statistics.median(v) for k, v in cpu.items()}}


def op_profile(path, x: np.ndarray, runs: int = 20) -> dict:
    """onnxruntime's own per-operator profile: mean microseconds per inference, by operator type.

    Every ``Conv``/``QLinearConv``/``FusedConv`` node is listed on its own too (name, time, and the
    shapes onnxruntime recorded), so the time of each convolution can be set against its MACs.
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(3 + runs):  # 3 warm-up runs, dropped below
            s.run(None, {"input": x})
        events = json.loads(Path(s.end_profiling()).read_text())
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    per_run = len(nodes) // (runs + 3)
    nodes = nodes[3 * per_run:]  # drop the warm-up runs
    by_op, convs = {}, {}
    for e in nodes:
        op = e["args"].get("op_name", "?")
        by_op[op] = by_op.get(op, 0.0) + e["dur"] / runs
        if "Conv" in op:
            name = e["name"][: -len("_kernel_time")]
            entry = convs.setdefault(name, {"op": op, "us": 0.0, "output_shape": None})
            entry["us"] += e["dur"] / runs
            shapes = e["args"].get("output_type_shape") or []
            if shapes:
                entry["output_shape"] = list(next(iter(shapes[0].values())))
    total = sum(by_op.values())
    return {"total_us": total, "by_op_us": dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
            "convs": convs}


def conv_scaling(tmp: Path, reps: int) -> list:
    """How onnxruntime's time for one 3x3 convolution (c -> c channels, 16x16, batch 32) follows its
    c^2 MACs at the channel counts pruning produces.

    The network is conv-BN-ReLU twice, exported by jointopt at 8 bits. The *second* convolution is
    the one measured: its input is a quantized activation, so onnxruntime runs it as an integer
    ``QLinearConv`` (the first one, fed by the unquantized input, runs in float). Its time is read
    from onnxruntime's own profiler, node by node; the float graph of the same network gives the
    float time of the same convolution.
    """
    import onnx

    rows = []
    for c in CONV_CHANNELS:
        torch.manual_seed(c)
        layers = []
        for _ in range(2):
            layers += [torch.nn.Conv2d(c, c, 3, padding=1, bias=False), torch.nn.BatchNorm2d(c), torch.nn.ReLU()]
        module = torch.nn.Sequential(*layers).eval()
        x = torch.randn(32, c, 16, 16)
        net = jointopt.convert(module, x)
        for _, layer in net.searchable_layers():
            layer.bit_logits.data.zero_()
            layer.bit_logits.data[:, -1] = 10.0
        frozen = net.eval().set_mode("hard").freeze().eval()
        path = export(frozen, tmp / f"conv{c}", x, "onnx").files["onnx"]
        float_path = tmp / f"conv{c}_float.onnx"
        onnx.save(_float_graph(frozen, x[:1]), str(float_path))
        runs = max(20, reps)
        quant = op_profile(path, x.numpy(), runs)
        plain = op_profile(float_path, x.numpy(), runs)
        int8 = [v for v in quant["convs"].values() if v["op"] == "QLinearConv"]
        if len(int8) != 1:
            raise RuntimeError(f"expected one QLinearConv for c={c}, onnxruntime ran {quant['convs']}")
        second = list(plain["convs"].values())[1]
        macs = 32 * 16 * 16 * c * c * 9
        rows.append({"channels": c, "macs": macs, "int8_op": "QLinearConv", "int8_us": int8[0]["us"],
                     "transpose_us": quant["by_op_us"].get("Transpose", 0.0), "float_op": second["op"],
                     "float_us": second["us"]})
    top = rows[-1]
    for row in rows:
        for kind in ("int8", "float"):
            row[f"{kind}_time_ratio"] = row[f"{kind}_us"] / top[f"{kind}_us"]
            row[f"{kind}_gmac_s"] = row["macs"] / row[f"{kind}_us"] / 1e3
        row["mac_ratio"] = row["macs"] / top["macs"]
    return rows


def cpu_name() -> str:
    return cpu_model()


def pruned_series(model: str, keeps, mixed_keeps, batches, tmp: Path, reps: int, profile_batch=None) -> list:
    """Export ``model`` pruned to each keep fraction (8-bit, plus mixed rows), time it at each batch."""
    import onnx

    rows, sessions, paths = [], {}, {}
    shape = model_info(model).input_shape
    for keep, mixed in [(k, False) for k in keeps] + [(k, True) for k in mixed_keeps]:
        name = f"{model} keep {round(100 * keep)} %, {'mixed 2/4/8' if mixed else 'w8'}"
        frozen, x = frozen_network(keep, mixed, model=model)
        result = export(frozen, tmp / name.replace(" ", "_").replace("/", "").replace(",", ""), x, "onnx")
        path = paths[name] = result.files["onnx"]
        sessions[name] = session(path)
        if not mixed:
            float_path = tmp / f"float_{model}_{round(100 * keep)}.onnx"
            onnx.save(_float_graph(frozen, x[:1]), str(float_path))
            sessions["float " + name] = session(float_path)
        hist = {}
        for r in result.summary:
            for b, n in r["bits"].items():
                hist[b] = hist.get(b, 0) + n
        rows.append({"model": model, "network": name, "keep": keep, "mixed": mixed,
                     "macs": int(frozen_cost(frozen, "macs")), "memory_bits": int(frozen_cost(frozen, "memory")),
                     "channels_kept": sum(r["kept"] for r in result.summary),
                     "out_channels": [r["kept"] for r in result.summary], "bits": hist,
                     "onnx_bytes": path.stat().st_size, "top1_agreement": result.verification["onnx"]["top1_agreement"],
                     "ort_ops": fused_ops(path)})
        print(f"exported {name}: {rows[-1]['macs'] / 1e6:.2f} MMAC", flush=True)
    rng = np.random.default_rng(0)
    latency = {}
    for batch in batches:
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        latency[batch] = measure(sessions, {name: x for name in sessions}, reps)
        print(f"timed {model} at batch {batch}", flush=True)
    reference = rows[0]
    for row in rows:
        row["mac_reduction"] = reference["macs"] / row["macs"]
        for batch in batches:
            for clock in ("cpu", "wall"):
                t = latency[batch][clock]
                row[f"{clock}_ms_b{batch}"] = 1000 * t[row["network"]]
                row[f"{clock}_speedup_b{batch}"] = t[reference["network"]] / t[row["network"]]
                if not row["mixed"]:
                    row[f"float_{clock}_ms_b{batch}"] = 1000 * t["float " + row["network"]]
                    row[f"float_{clock}_speedup_b{batch}"] = t["float " + reference["network"]] / t["float " + row["network"]]
            row[f"meets_target_b{batch}"] = (None if row["mac_reduction"] < 2 or row["mixed"]
                                             else row[f"cpu_speedup_b{batch}"] >= 0.7 * row["mac_reduction"])
        if profile_batch and not row["mixed"]:
            x = rng.standard_normal((profile_batch, *shape)).astype(np.float32)
            row[f"profile_b{profile_batch}"] = op_profile(paths[row["network"]], x)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=25, help="interleaved repetitions (default 25)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="where to write the results")
    parser.add_argument("--no-wide", action="store_true", help="skip the ResNet-18 rows (the slowest part, ~2 min)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import onnx
    import onnxruntime

    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = pruned_series("resnet8", KEEP, MIXED_KEEP, (1, 32), tmp, args.reps, profile_batch=32)
        if not args.no_wide:
            rows += pruned_series("resnet18", WIDE_KEEP, (), (1,), tmp, max(5, args.reps // 3))
        scaling = conv_scaling(tmp, args.reps)
    load_after = os.getloadavg()
    record = {
        "benchmark": "export_latency", "command": "python " + " ".join([Path(__file__).relative_to(REPO).as_posix(), *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": [round(v, 2) for v in load], "load_average_after": [round(v, 2) for v in load_after]},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__, "numpy": np.__version__, "jointopt": jointopt.__version__},
        "settings": {"threads": 1, "reps": args.reps, "reps_resnet18": max(5, args.reps // 3),
                     "batches": {"resnet8": [1, 32], "resnet18": [1]}, "graph_optimizations": "onnxruntime defaults",
                     "clock": "target judged on thread CPU time (time.thread_time); wall clock reported too",
                     "target": "speed-up >= 0.7 x MAC reduction where the reduction is >= 2x (8-bit rows)"},
        "rows": rows, "conv_scaling": scaling,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "export_latency.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "export_latency.md").write_text(markdown(record) + "\n")
    print(markdown(record))
    return 0


def _series_table(rows: list, batches) -> list:
    head = "| network | MMAC | MAC reduction | " + " | ".join(
        f"b{b} latency (ms) | b{b} speed-up" for b in batches) + " | target met (" + " / ".join(
        f"b{b}" for b in batches) + ") | float graph speed-up (" + " / ".join(f"b{b}" for b in batches) + ") |"
    lines = [head, "|---|---:|---:|" + "---:|---:|" * len(batches) + "---|---:|"]
    for r in rows:
        met = " / ".join("—" if r[f"meets_target_b{b}"] is None else ("yes" if r[f"meets_target_b{b}"] else "no")
                         for b in batches)
        fl = " / ".join(f"{r[f'float_cpu_speedup_b{b}']:.2f}×" for b in batches) if not r["mixed"] else "—"
        cells = " | ".join(f"{r[f'cpu_ms_b{b}']:.3f} | {r[f'cpu_speedup_b{b}']:.2f}×" for b in batches)
        lines.append(f"| {r['network']} | {r['macs'] / 1e6:.2f} | {r['mac_reduction']:.2f}× | {cells} | {met} | {fl} |")
    return lines


def markdown(record: dict) -> str:
    m, v = record["machine"], record["versions"]
    rows = record["rows"]
    small = [r for r in rows if r.get("model", "resnet8") == "resnet8"]
    wide = [r for r in rows if r.get("model") == "resnet18"]
    lines = ["# Export latency: pruned networks in onnxruntime", "",
             f"- command: `{record['command']}`", f"- date: {record['date']}",
             f"- machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; load average "
             f"{m['load_average_before'][0]} before / {m['load_average_after'][0]} after (a shared machine: "
             "latency is the CPU time of the inference thread; wall clock in the JSON)",
             f"- versions: python {v['python']}, torch {v['torch']}, onnx {v['onnx']}, onnxruntime {v['onnxruntime']}, "
             f"numpy {v['numpy']}, jointopt {v['jointopt']}",
             f"- onnxruntime CPU provider, 1 thread, default graph optimisations; median of {record['settings']['reps']} "
             "interleaved repetitions; speed-up vs the unpruned w8 network of the same model in the same run",
             f"- target: {record['settings']['target']}", "",
             "## ResNet-8 (MLPerf Tiny, 32x32, 16/32/64 channels)", ""]
    lines += _series_table(small, (1, 32))
    pruned = [r for r in rows if not r["mixed"] and r["mac_reduction"] >= 2]
    batches = {r["network"]: [b for b in (1, 32) if f"meets_target_b{b}" in r] for r in pruned}
    met = sum(bool(r[f"meets_target_b{b}"]) for r in pruned for b in batches[r["network"]])
    cases = sum(len(b) for b in batches.values())
    lines += ["", "The float graph column times the same pruned networks exported without any Q/DQ node, i.e. how "
              "onnxruntime's own convolutions scale with pruning at these channel counts."]
    if wide:
        reps = record["settings"].get("reps_resnet18")
        lines += ["", f"## ResNet-18 (Tiny ImageNet, 64x64, 64..512 channels), batch 1, median of {reps} repetitions", ""]
        lines += _series_table(wide, (1,))
    lines += ["", f"**Target met in {met} of {cases} (row, batch) cases.**"]
    scaling = record.get("conv_scaling")
    if scaling:
        lines += ["", "## Why: one convolution at the channel counts pruning produces", "",
                  "A 3x3 convolution, c -> c channels, 16x16, batch 32: the second of two conv-BN-ReLU blocks exported "
                  "by jointopt at 8 bits, which onnxruntime runs as an integer QLinearConv, and the same convolution "
                  "in the float graph of that network. Times are onnxruntime's own per-node profile (µs per inference; the "
                  "int8 path also pays the NHWC Transposes, listed apart). If time followed MACs, the time ratio "
                  "would equal the MAC ratio.", "",
                  "| c | MMAC | MAC ratio vs c=64 | QLinearConv µs | int8 time ratio | int8 GMAC/s | Transposes µs | "
                  "float conv µs | float time ratio | float GMAC/s |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in scaling:
            lines.append(f"| {r['channels']} | {r['macs'] / 1e6:.1f} | {r['mac_ratio']:.3f} | {r['int8_us']:.0f} | "
                         f"{r['int8_time_ratio']:.3f} | {r['int8_gmac_s']:.1f} | {r['transpose_us']:.0f} | "
                         f"{r['float_us']:.0f} | {r['float_time_ratio']:.3f} | {r['float_gmac_s']:.1f} |")
    profiled = [r for r in small if "profile_b32" in r]
    if profiled:
        ops = []
        for r in profiled:
            for op in r["profile_b32"]["by_op_us"]:
                if op not in ops:
                    ops.append(op)
        lines += ["", "## onnxruntime's profile of the ResNet-8 exports (batch 32, µs per inference by operator)", "",
                  "| network | total | " + " | ".join(ops) + " |", "|---|---:|" + "---:|" * len(ops)]
        for r in profiled:
            p = r["profile_b32"]["by_op_us"]
            lines.append(f"| {r['network']} | {r['profile_b32']['total_us']:.0f} | "
                         + " | ".join(f"{p.get(op, 0):.0f}" for op in ops) + " |")
    ref = small[0]["ort_ops"]
    mixed = [r for r in small if r["mixed"]]
    lines += ["", "Operators onnxruntime runs for the ResNet-8 w8 reference after its optimisations: "
              + ", ".join(f"{k} {n}" for k, n in ref.items()) + "."]
    if mixed:
        lines.append(f"For {mixed[-1]['network']}: " + ", ".join(f"{k} {n}" for k, n in mixed[-1]["ort_ops"].items())
                     + ". Mixed-width layers are re-assembled with Concat + Gather, so onnxruntime cannot fuse them "
                     "into integer convolutions and runs them as DequantizeLinear + float Conv.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
