"""Does the ONNX export compute what the frozen network computes under onnxruntime's default settings?

    python -m benchmarks export_fidelity --run RUN [--run RUN2 ...] [--emulate Haswell] [--out DIR]

For every completed trial of each run directory, plus the warm-up network quantized to 8 bits in
every channel (the case that stresses onnxruntime's integer kernels most), the ``onnx`` export is
run by onnxruntime (CPU provider, one thread) on the run's test split (``--limit N``: its first N samples), twice: with graph
optimisations off (the graph as written) and with the defaults (``ORT_ENABLE_ALL``: Q/DQ fused
into integer kernels). Reported per network: top-1 agreement with the frozen PyTorch network,
max |logit difference|, and test accuracy of both.

``--emulate CPU`` repeats the default-settings run on the first ``--emulate-limit`` test samples
under ``qemu-x86_64 -cpu CPU`` (user-mode
emulation; e.g. ``Haswell``: AVX2 without VNNI, where onnxruntime's uint8 × int8 kernels saturate
16-bit pair sums). The machine's own CPU may have VNNI, whose kernels are exact; the emulated one
shows what a deployment on an older x86 CPU computes. Results go to ``DIR/export_fidelity.{json,md}``
(default ``benchmarks/results``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def run_onnx(path, x: np.ndarray, optimize: bool) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {session.get_inputs()[0].name: x[i:i + 256]})[0]
                           for i in range(0, len(x), 256)])


def _emulated(cpu: str, model: Path, x: np.ndarray, work: Path) -> np.ndarray:
    """Default-settings output of ``model`` on ``x`` under ``qemu-x86_64 -cpu cpu`` (this file as the child)."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        raise RuntimeError("qemu-x86_64 is not installed (apt-get install qemu-user)")
    np.save(work / "x.npy", x)
    subprocess.run([qemu, "-cpu", cpu, sys.executable, __file__, "--child", str(model), str(work / "x.npy"),
                    str(work / "y.npy")], check=True, stderr=subprocess.DEVNULL)
    return np.load(work / "y.npy")


def _all_eight_bit(run: Path, x: torch.Tensor):
    """The warm-up network converted and frozen with every channel kept at 8 bits (no fine-tuning)."""
    import jointopt
    from jointopt.config import Config
    from jointopt.train import load_checkpoint
    from jointopt.tune.setup import build_model, warmup_key

    config = Config.from_yaml(run / "config.yaml")
    info = json.loads((run / "dataset.json").read_text())
    model = build_model(config, info["input_shape"], info["num_classes"])
    model.load_state_dict(load_checkpoint(run / "warmup" / f"{warmup_key(config)}.pt")["state"])
    searchable = jointopt.convert(model.eval(), x, config.space.build(config.search.sampling))
    for gate in searchable.gates.values():
        gate.logits.data.fill_(10.0)
    for _, layer in searchable.searchable_layers():
        layer.bit_logits.data.fill_(-10.0)
        layer.bit_logits.data[..., -1] = 10.0
    return searchable.eval().set_mode("hard").freeze().eval()


def networks(run: Path, x: torch.Tensor):
    """(label, frozen network) of every completed trial and of the 8-bit warm-up network."""
    from jointopt.tune.trials import load_trial

    done = sorted(int(p.name) for p in (run / "trials").iterdir() if (p / "result.json").exists())
    for number in done:
        _, frozen, _ = load_trial(run, number)
        yield f"trial {number}", frozen
    yield "warm-up, all 8 bit", _all_eight_bit(run, x)


def measure(run: Path, emulate, work: Path, limit=None, emulate_limit=500) -> list:
    import onnx

    from jointopt.config import Config
    from jointopt.errors import ExportError
    from jointopt.export import export
    from jointopt.tune.setup import load_dataset

    data = load_dataset(Config.from_yaml(run / "config.yaml"))
    x_val = next(iter(data.batches("val", 256)))[0]
    x_test = torch.cat([x for x, _ in data.batches("test", 512)])[:limit]
    y_test = data.test.y[:limit]
    rows = []
    for label, frozen in networks(run, x_val):
        out = work / label.replace(" ", "_").replace(",", "")
        try:
            try:  # as `jointopt export` does: the preprocessing recorded, the ONNX taking raw data
                export(frozen, out, x_val, "onnx", preprocessing=data)
            except TypeError:  # a jointopt from before the preprocessing was exported
                export(frozen, out, x_val, "onnx")
            verified = "passed"
        except ExportError as exc:
            verified = "FAILED: " + str(exc).splitlines()[0][:120]
        model = out / "model.onnx"
        inputs = x_test.numpy()
        if [i.name for i in onnx.load(str(model)).graph.input] == ["raw"]:
            inputs = data.test.x[:limit].float().numpy()  # an export that normalises in its graph takes raw data
        with torch.no_grad():
            expected = frozen(x_test).numpy()
        row = {"run": str(run), "network": label, "export_verification": verified, "samples": len(inputs),
               "torch_test_acc": float((expected.argmax(1) == y_test.numpy()).mean())}
        runs = {"graph as written": run_onnx(model, inputs, False), "default settings": run_onnx(model, inputs, True)}
        if emulate:
            runs[f"default settings, emulated {emulate}"] = _emulated(emulate, model, inputs[:emulate_limit], out)
        for name, got in runs.items():
            n = len(got)
            row[name] = {"samples": n, "top1_agreement": float((got.argmax(1) == expected[:n].argmax(1)).mean()),
                         "max_abs_diff": float(np.abs(got - expected[:n]).max()),
                         "test_acc": float((got.argmax(1) == y_test[:n].numpy()).mean())}
        row["onnx_bytes"] = model.stat().st_size
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list) -> str:
    runs = [k for k in rows[0] if isinstance(rows[0][k], dict)] if rows else []
    lines = ["| run | network | ONNX bytes | " + " | ".join(f"{r} ({rows[0][r]['samples']} samples): top-1 agreement "
                                                             "/ max diff" for r in runs)
             + " | test acc torch / default |", "|---" * (4 + len(runs)) + "|"]
    for row in rows:
        cells = [f"{100 * row[r]['top1_agreement']:.2f} % / {row[r]['max_abs_diff']:.3g}" for r in runs]
        lines.append(f"| {Path(row['run']).name} | {row['network']} | {row['onnx_bytes']:,} | " + " | ".join(cells)
                     + f" | {100 * row['torch_test_acc']:.2f} / {100 * row['default settings']['test_acc']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks export_fidelity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, type=Path, help="a run directory (repeatable)")
    parser.add_argument("--emulate", default=None, help="also run under qemu-x86_64 -cpu CPU (e.g. Haswell)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--limit", type=int, default=None, help="use the first N test samples (default: all)")
    parser.add_argument("--emulate-limit", type=int, default=500,
                        help="samples of the emulated run (emulation is slow; default 500)")
    parser.add_argument("--name", default="export_fidelity", help="file name stem of the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.run:
            rows += measure(run, args.emulate, Path(tmp), args.limit, args.emulate_limit)
    import onnxruntime

    args.out.mkdir(parents=True, exist_ok=True)
    head = (f"`python -m benchmarks export_fidelity {' '.join(argv if argv is not None else sys.argv[1:])}`, "
            f"onnxruntime {onnxruntime.__version__}\n\n")
    (args.out / f"{args.name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / f"{args.name}.md").write_text(head + table(rows) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:  # the emulated onnxruntime run: model, input .npy, output .npy
        _, _, model_path, x_path, y_path = sys.argv
        np.save(y_path, run_onnx(model_path, np.load(x_path), True))
    else:
        sys.exit(main())
