"""GPU throughput: training steps per second, float vs joint search, AMP off/on, 1 vs 2 worker processes.

For ResNet-8 (CIFAR-10, 32x32) and ResNet-18 (Tiny ImageNet, 64x64), on random batches:

* ``float`` — the model with BatchNorm, cross-entropy, Adam (the warm-up's step);
* ``search`` — the searchable network (BN folded, weights ``(0, 2, 4, 8)`` per channel, 8-bit
  activations), soft mode, ``task + λ·cost('memory')/ref``, Adam + SGD (the search phase's step);

each with AMP off (fp32) and on (bf16 autocast over the forward, as ``jointopt search --amp`` trains;
the quantizers, the cost and the optimizer steps in fp32). ``workers`` runs the same step loop in 1 or 2 processes at once (each on
its own GPU where there are two, else sharing one) and reports their summed steps/s, what
``jointopt search --workers 2`` gains. Steps are timed after warm-up steps, with
``torch.cuda.synchronize()`` around the timed loop only (no host sync inside it).

Without a CUDA device it measures nothing, says so and exits 0 (``--allow-cpu`` runs the same code
on the CPU as a smoke test and never writes the results files). Run::

    python -m benchmarks gpu                      # writes benchmarks/results/gpu.{md,json} (gpu.partial.* until done)
    python -m benchmarks gpu --models resnet18 --batch 128 --steps 50
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("resnet8", "resnet18")
ROW = "{model:9s} {mode:6s} amp={amp} workers={workers}: {rate:8.2f} steps/s"  # one measured row, as printed


def make_step(model_name: str, mode: str, amp: bool, batch: int, device: str):
    """A closure running one training step of ``mode`` (float | search) on ``device``."""
    import torch
    import torch.nn.functional as F

    import jointopt
    from jointopt.zoo import model_info

    info = model_info(model_name)
    torch.manual_seed(0)
    model = jointopt.create_model(model_name)
    x = torch.randn(batch, *info.input_shape)
    y = torch.randint(0, info.num_classes, (batch,))
    if mode == "float":
        net = model.to(device).train()
        opts = [torch.optim.Adam(net.parameters(), lr=1e-3)]
        cost = ref = None
    else:
        net = jointopt.convert(model.eval(), x, jointopt.SearchSpace()).to(device).train().set_mode("soft")
        opts = [torch.optim.Adam(list(net.weight_parameters()), lr=1e-3),
                torch.optim.SGD(list(net.selector_parameters()), lr=1e-2, momentum=0.9)]
        cost = jointopt.get_cost_model("memory")
        ref = net.reference_cost(cost)
    x, y = x.to(device), y.to(device)
    kind = "cuda" if device.startswith("cuda") else "cpu"

    def step() -> None:
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(net(x), y)
        if cost is not None:
            loss = loss + 0.1 * net.cost(cost) / ref  # the cost in fp32, outside autocast
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in opts:
            opt.step()

    return step


def steps_per_second(model_name: str, mode: str, amp: bool, args, device: str) -> float:
    import torch

    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    step = make_step(model_name, mode, amp, args.batch, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    return args.steps / (time.perf_counter() - start)


def run_workers(model_name: str, mode: str, amp: bool, args, workers: int, devices) -> float:
    """Summed steps/s of ``workers`` processes running the step loop at once."""
    procs = []
    for i in range(workers):
        cmd = [sys.executable, "-m", "benchmarks", "gpu", "--child", f"{model_name},{mode},{int(amp)}",
               "--device", devices[i % len(devices)], "--batch", str(args.batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent))
    rates = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"benchmark worker exited with {p.returncode}")
        rates.append(float(out.strip().splitlines()[-1]))
    return sum(rates)


def write(record: dict) -> None:
    """``record``'s rows so far as benchmarks/results/gpu.{json,md} once the run is complete, and as
    gpu.partial.{json,md} before (a run stopped early keeps its rows and replaces no complete table)."""
    stem = "gpu" if record["complete"] else "gpu.partial"
    if record["complete"]:
        for old in RESULTS.glob("gpu.partial.*"):
            old.unlink()
    (RESULTS / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# GPU throughput ({', '.join(record['gpus'])}, torch {record['torch']}, batch {record['batch']})", "",
             f"Command: `{record['command']}` ({record['date']}, {record.get('steps', '?')} timed steps after "
             f"{record.get('warmup', '?')} untimed ones per row)", ""]
    notes = record.get("notes", [])
    lines += [f"- note: {n}" for n in notes] + ([""] if notes else [])
    if not record["complete"]:
        lines += ["**The run stopped before its last rows**: the table holds the rows it measured.", ""]
    lines += ["| model | step | AMP | workers | steps/s | vs float, same AMP and workers |", "|---|---|---|---|---|---|"]
    rate = {(r["model"], r["mode"], r["amp"], r["workers"]): r["steps_per_s"] for r in record["rows"]}
    for r in record["rows"]:
        base = rate.get((r["model"], "float", r["amp"], r["workers"]))
        ratio = f"{r['steps_per_s'] / base:.2f}x" if base else "—"
        lines.append(f"| {r['model']} | {r['mode']} | {'bf16' if r['amp'] else 'off'} | {r['workers']} | "
                     f"{r['steps_per_s']:.2f} | {ratio} |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated zoo models (default: %(default)s)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=50, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (cudnn autotuning, allocator)")
    p.add_argument("--workers", default="1,2", help="worker process counts to compare (default: %(default)s)")
    p.add_argument("--allow-cpu", action="store_true", help="without CUDA, run on the CPU as a smoke test (no files)")
    p.add_argument("--device", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import torch

    if args.child:  # one worker process of run_workers: print its steps/s
        model_name, mode, amp = args.child.split(",")
        print(steps_per_second(model_name, mode, amp == "1", args, args.device))
        return 0
    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print("no CUDA device here: nothing measured, benchmarks/results/gpu.* left as they are. On a machine with "
              "a GPU run: python -m benchmarks gpu")
        return 0
    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if cuda else ["cpu"]
    record = {"command": "python -m benchmarks gpu " + " ".join(argv if argv is not None else sys.argv[1:]),
              "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
              "torch": torch.__version__, "cuda": torch.version.cuda, "host": platform.node(),
              "date": datetime.datetime.now().isoformat(timespec="seconds"), "batch": args.batch,
              "steps": args.steps, "warmup": args.warmup, "rows": [], "complete": False}
    plan = [(m, mode, amp, w) for m in args.models.split(",") for mode in ("float", "search") for amp in (False, True)
            for w in map(int, args.workers.split(","))]
    for model_name, mode, amp, workers in plan:
        rate = run_workers(model_name, mode, amp, args, workers, devices) if workers > 1 else \
            steps_per_second(model_name, mode, amp, args, devices[0])
        record["rows"].append({"model": model_name, "mode": mode, "amp": amp, "workers": workers, "steps_per_s": rate})
        print(ROW.format(model=model_name, mode=mode, amp="on " if amp else "off", workers=workers, rate=rate), flush=True)
        record["complete"] = len(record["rows"]) == len(plan)
        if cuda:  # after every row: a run stopped early keeps what it measured (gpu.partial.*)
            write(record)
    if not cuda:
        print("CPU smoke run: results files not written")
        return 0
    print(f"written: {RESULTS / 'gpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
