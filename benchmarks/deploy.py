"""Deployment of front points: flash and RAM, host C inference time, integer vs fake-quant agreement, int8 ONNX latency.

    python -m benchmarks deploy                          # quickstart + reduced Fashion-MNIST studies (about 10 min)
    python -m benchmarks deploy --run RUN [--run RUN2]   # measure the fronts of finished run directories
    python -m benchmarks deploy --only quickstart --samples 200 --out /tmp/smoke

For every point of each study's Pareto front the trial's frozen network is exported with
``jointopt.export(..., "c")`` (calibrated on the first 256 validation samples, as
``jointopt export`` does), the C files are built with the documented command
(``cc -std=c99 -O2 -Wall -Wextra -Werror *.c -lm``) and ``infer`` runs the validation samples.
Reported: packed weight bytes (= the ``memory`` cost / 8) and all constant data (flash), the
arena (RAM; = the ``ram`` cost bound to the network, and the registered ``ram`` model's chain
estimate next to it), host time per inference measured inside ``infer --time`` (mean of R runs,
one core), top-1 agreement and largest logit difference between the C program and the
fake-quantized frozen PyTorch network, and whether the C logits equal the Python integer
reference bit for bit.

The ONNX table times, for each study's uniform 8-bit network (the warm-up network with every
channel at 8 bits, frozen; no fine-tuning), the current ``onnx`` export (Q/DQ around float
convolutions, weights per width group) against the ``onnx_int8`` export (QLinearConv etc.) in
onnxruntime, CPU provider, one thread, default optimisations, batch 1 and 32: median over
interleaved repetitions of the CPU time of ``session.run``. The Fashion-MNIST study is reduced to
fit a shared 2-core machine (``--fashion-set``); the front points are real trained networks.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

try:  # run as part of the benchmarks package, or as a script
    from ._machine import cpu_model
except ImportError:
    from _machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FASHION_SET = ["tuner.trials=5", "tuner.baselines=[]", "warmup.epochs=2", "threads=2"]


def run_study(name: str, out: Path, overrides: List[str]) -> Path:
    import jointopt
    from jointopt.config import Config
    from jointopt.tune import quickstart_config

    config = quickstart_config() if name == "quickstart" else Config.from_yaml(REPO / "configs/fashion_mnist_resnet8.yaml")
    if overrides:
        config = config.override(overrides)
    started = time.time()
    jointopt.search(config, out)
    print(f"{name}: study finished in {time.time() - started:.0f} s -> {out}", flush=True)
    return out


def validation(run: Path, samples: int):
    from jointopt.config import Config
    from jointopt.tune.setup import load_dataset

    data = load_dataset(Config.from_yaml(run / "config.yaml"))
    xs, ys = [], []
    for x, y in data.batches("val", 500):
        xs.append(x)
        ys.append(y)
        if sum(len(b) for b in xs) >= samples:
            break
    return torch.cat(xs)[:samples], torch.cat(ys)[:samples], data


def uniform_w8(run: Path):
    """The run's warm-up network with every channel kept at 8 bits, frozen (no fine-tuning)."""
    from jointopt.config import Config
    from jointopt.graph import convert
    from jointopt.train import load_checkpoint
    from jointopt.tune.setup import build_model, warmup_key

    config = Config.from_yaml(run / "config.yaml")
    data = json.loads((run / "dataset.json").read_text())
    model = build_model(config, data["input_shape"], data["num_classes"])
    model.load_state_dict(load_checkpoint(run / "warmup" / f"{warmup_key(config)}.pt")["state"])
    net = convert(model.eval(), torch.zeros((2, *data["input_shape"])), config.space.build(config.search.sampling))
    with torch.no_grad():
        for gate in net.gates.values():
            gate.logits.fill_(10.0)
        for _, layer in net.searchable_layers():
            layer.bit_logits.zero_()
            layer.bit_logits[:, layer.weight_bits.index(max(layer.weight_bits))] = 10.0
    return net.eval().set_mode("hard").freeze().eval()


def measure_point(run: Path, trial: int, x, y, data, work: Path, reps: int) -> dict:
    from jointopt.cost_models.ram import RamCost
    from jointopt.cost import get_cost_model
    from jointopt.export import export
    from jointopt.export.c_export import compile_c, run_infer, time_infer
    from jointopt.export.integer import build_program, run_reference
    from jointopt.graph.freeze import frozen_layer_stats
    from jointopt.tune.trials import load_trial

    _, frozen, result = load_trial(run, trial)
    calibration = x[:256]
    directory = work / f"{run.name}-{trial}"
    exported = export(frozen, directory, calibration, "c", metadata={"run": str(run), "trial": trial},
                      preprocessing=data)
    check = exported.verification["c"]
    program = build_program(frozen, calibration)
    binary = compile_c(directory, directory / "infer")
    c_logits = run_infer(binary, x)
    with torch.no_grad():
        fake = frozen(x).numpy()
    exact_n = min(len(x), 500)
    reference, _ = run_reference(program, x[:exact_n])
    stats = frozen_layer_stats(frozen)
    memory_bits = float(get_cost_model("memory").network_cost(stats))
    return {
        "trial": trial, "val_acc_recorded": result.get("val_acc"), "samples": int(len(x)),
        "fake_quant_acc": float((fake.argmax(1) == y.numpy()).mean() * 100),
        "c_acc": float((c_logits.argmax(1) == y.numpy()).mean() * 100),
        "top1_agreement": float((c_logits.argmax(1) == fake.argmax(1)).mean()),
        "max_abs_logit_diff": float(np.abs(c_logits - fake).max()), "logit_max_abs": float(np.abs(fake).max()),
        "c_equals_reference": bool(np.array_equal(c_logits[:exact_n].view(np.uint32), reference.view(np.uint32))),
        "reference_samples": exact_n,
        "memory_cost_bits": memory_bits, "weight_bytes": check["flash_bytes"]["weights"],
        "flash_bytes": check["flash_bytes"], "arena_bytes": program.arena_bytes,
        "ram_cost_bytes": float(RamCost.for_network(frozen, calibration[:2]).network_cost(stats)),
        "ram_registered_bytes": float(RamCost().network_cost(stats)),
        "host_us_per_inference": time_infer(binary, x[0], reps),
        "kept_fraction": result.get("kept_fraction"), "mean_bits": result.get("mean_bits"),
    }


def _cpu_run(session, feed) -> float:
    start = time.thread_time()
    session.run(None, feed)
    return time.thread_time() - start


def onnx_latency(frozen, x, work: Path, reps: int) -> dict:
    import onnxruntime as ort

    from jointopt.export import export

    directory = work / "w8"
    result = export(frozen, directory, x[:256], "onnx,onnx_int8")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.log_severity_level = 3
    sessions = {"onnx (Q/DQ, current)": ort.InferenceSession(str(directory / "model.onnx"), options,
                                                              providers=["CPUExecutionProvider"]),
                "onnx_int8 (QOperator)": ort.InferenceSession(str(directory / "model.int8.onnx"), options,
                                                               providers=["CPUExecutionProvider"])}
    rows = {}
    for batch in (1, 32):
        feed = {"input": x[:batch].numpy()}
        for s in sessions.values():  # warm up, and check the input name
            s.run(None, {s.get_inputs()[0].name: feed["input"]})
        times = {k: [] for k in sessions}
        names = list(sessions)
        for r in range(reps):
            for name in names[r % 2:] + names[:r % 2]:
                s = sessions[name]
                times[name].append(_cpu_run(s, {s.get_inputs()[0].name: feed["input"]}))
        rows[batch] = {k: statistics.median(v) * 1e6 / batch for k, v in times.items()}
    with torch.no_grad():
        expected = frozen(x).numpy()
    s = sessions["onnx_int8 (QOperator)"]
    got = s.run(None, {"input": x.numpy()})[0]
    return {"us_per_sample": rows, "int8_top1_agreement": float((got.argmax(1) == expected.argmax(1)).mean()),
            "verify": {k: result.verification[k] for k in ("onnx", "onnx_int8")}}


def _label(run: Path) -> str:
    from jointopt.config import Config

    config = Config.from_yaml(run / "config.yaml")
    return f"{config.data.name} / {config.model.name}"


def measure_run(run: Path, samples: int, reps: int, onnx_reps: int, work: Path) -> dict:
    front = json.loads((run / "front.json").read_text())
    x, y, data = validation(run, samples)
    order = sorted(front["front"], key=lambda r: r["costs"]["memory"])
    points = [measure_point(run, int(r["trial"]), x, y, data, work, reps) for r in order]
    w8 = uniform_w8(run)
    from jointopt.config import Config

    config = Config.from_yaml(run / "config.yaml")
    setup = {"trials": config.tuner.trials, "warmup_epochs": config.warmup.epochs, "search_epochs": config.search.epochs,
             "finetune_epochs": config.finetune.epochs}
    return {"run": str(run), "dataset": data.name, "study": setup, "points": points,
            "onnx_w8": onnx_latency(w8, x, work, onnx_reps)}


def table(results: Dict[str, dict]) -> str:
    lines = ["| study | trial | val acc C / fake-quant (%) | top-1 agreement | max logit diff | C == reference | "
             "weights B (memory cost / 8) | flash constants (B) | RAM arena (B) = ram | ram (chain model) | "
             "host C µs/inference |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for p in r["points"]:
            lines.append(f"| {name} | {p['trial']} | {p['c_acc']:.2f} / {p['fake_quant_acc']:.2f} | "
                         f"{100 * p['top1_agreement']:.2f} % | {p['max_abs_logit_diff']:.3g} (of {p['logit_max_abs']:.3g}) | "
                         f"{'yes' if p['c_equals_reference'] else 'NO'} ({p['reference_samples']}) | "
                         f"{p['weight_bytes']:,} ({p['memory_cost_bits'] / 8:,.1f}) | {p['flash_bytes']['total']:,} | "
                         f"{p['arena_bytes']:,} = {p['ram_cost_bytes']:,.0f} | {p['ram_registered_bytes']:,.0f} | "
                         f"{p['host_us_per_inference']:,.1f} |")
    lines += ["", "| study (uniform 8-bit network) | batch | onnx Q/DQ (current) µs/sample | onnx_int8 µs/sample | speed-up | "
              "int8 top-1 agreement |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        o = r["onnx_w8"]
        for batch, row in o["us_per_sample"].items():
            qdq, int8 = row["onnx (Q/DQ, current)"], row["onnx_int8 (QOperator)"]
            lines.append(f"| {name} | {batch} | {qdq:,.1f} | {int8:,.1f} | {qdq / int8:.2f}x | "
                         f"{100 * o['int8_top1_agreement']:.2f} % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", type=Path, help="a finished run directory (repeatable); default: run "
                                                                    "the quickstart and Fashion-MNIST studies")
    parser.add_argument("--only", choices=("quickstart", "fashion_mnist"), action="append")
    parser.add_argument("--fashion-set", nargs="*", default=FASHION_SET, help="overrides of the Fashion-MNIST config")
    parser.add_argument("--samples", type=int, default=2000, help="validation samples per point (default 2000)")
    parser.add_argument("--reps", type=int, default=200, help="runs inside infer --time (default 200)")
    parser.add_argument("--onnx-reps", type=int, default=200, help="interleaved onnxruntime repetitions (default 200)")
    parser.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "bench-deploy")
    parser.add_argument("--out", default=str(RESULTS), help="results directory, or - for stdout only")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only rewrite deploy.md (next to JSON) from a recorded deploy.json")
    args = parser.parse_args(argv)
    if args.render:
        record = json.loads(args.render.read_text())
        (args.render.parent / "deploy.md").write_text(_markdown(record, table(record["results"])))
        return 0
    torch.set_num_threads(1)
    load_start = os.getloadavg()
    runs = {}
    if args.run:  # named after the study's data set and model, e.g. "digits / digits_cnn"
        runs = {_label(run): run for run in args.run}
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        for name in args.only or ("quickstart", "fashion_mnist"):
            sets = args.fashion_set if name == "fashion_mnist" else []
            run = run_study(name, args.runs_dir / f"{name}-{stamp}", sets)
            runs[_label(run)] = run
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: measure_run(run, args.samples, args.reps, args.onnx_reps, Path(tmp)) for name, run in runs.items()}
    text = table(results)
    print(text)
    if args.out != "-":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        record = {"benchmark": "deploy", "command": "python -m benchmarks deploy " + " ".join(map(str, argv or sys.argv[1:])),
                  "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                              "torch": torch.__version__, "load_start": load_start, "load_end": os.getloadavg()},
                  "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "fashion_set": args.fashion_set, "results": results}
        (out / "deploy.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
        (out / "deploy.md").write_text(_markdown(record, text))
    return 0


def _markdown(record: dict, text: str) -> str:
    import onnxruntime

    m = record["machine"]
    head = [f"# Deployment of front points (`{record['command'].strip()}`)", "",
            f"{record['date_utc']}; {m['cpu']}, {m['cores']} cores (shared), torch {m['torch']}, onnxruntime "
            f"{onnxruntime.__version__}; load average {m['load_start'][0]:.2f} at start, {m['load_end'][0]:.2f} at end.",
            "Studies: " + "; ".join(f"{name}: `{r['run']}` ({r['study']['trials']} trials, warm-up "
                                    f"{r['study']['warmup_epochs']} epochs)" for name, r in record["results"].items())
            + f". A study run by this script uses its quickstart config, or the Fashion-MNIST config with "
              f"`{' '.join(record['fashion_set'])}`.", "",
            "Every point of each study's front, exported to C, built with `cc -std=c99 -O2 -Wall -Wextra -Werror` and run "
            "on the validation samples. *weights* = packed weight bytes = memory cost / 8; *flash constants* adds the "
            "int32 biases, requantization multipliers and shifts, width fields, tables and layer descriptors (32-bit "
            "target). *RAM arena* is the C runtime's static activation buffer and equals the `ram` cost model bound "
            "to the network; *ram (chain model)* is the registered `ram` model without the graph (exact for sequential "
            "networks, a lower bound with shortcuts). *C == reference*: the C logits equal the Python integer reference "
            "bit for bit on the first N samples. Host time: mean of `infer --time R` (CPU time, one core, shared machine). "
            "The second table: onnxruntime (CPU provider, one thread, default optimisations) on each study's uniform "
            "8-bit network, the current Q/DQ `onnx` export against the `onnx_int8` export; median CPU time per sample "
            "over interleaved repetitions.", "", ""]
    return "\n".join(head) + text + "\n"


if __name__ == "__main__":
    sys.exit(main())
