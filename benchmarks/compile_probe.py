"""torch.compile on the search step: how much it would save on small models, and what it would cost.

The search step of a small network (the quickstart's digits CNN: 8x8 inputs, four layers) is
dominated by small operator calls, not by its convolutions (``benchmarks/overhead.py``). This
probe measures what compiling the step's loss would change, before the training loop takes it on:

* ``float`` — the eager float training step of ``overhead.py`` (the baseline of every ratio);
* ``joint`` — the eager joint search step of ``overhead.py`` (activations at 8 bits);
* ``compiled`` — the same step with the loss (forward of the searchable network, cross-entropy and
  the differentiable memory cost) under ``torch.compile(dynamic=False)``; backward through the
  compiled graph, Adam eager as in training.

Interleaved repetitions, medians, ratios against ``float`` in the same run. Then the costs: the
first compiled step (a cold Inductor cache in a fresh temporary folder), the step after the
selector temperature changes (the search anneals it every step; it is a Python float today), and
the first step of a new network of the same model (every trial converts a new one). And a check
that the compiled loss and gradients match the eager ones.

Needs a C++ compiler (Inductor's CPU back-end). Run ``python -m benchmarks compile_probe --help``.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as overhead.py: shared cores

import argparse
import datetime
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

try:  # run as part of the benchmarks package, or as a script
    from .overhead import Step, _timed, machine
except ImportError:
    from overhead import Step, _timed, machine

RESULTS = Path(__file__).resolve().parent / "results"


class CompiledStep:
    """``Step``'s joint configuration with its loss compiled; ``step`` can be swapped for a new network."""

    def __init__(self, step: Step):
        import torch

        self.step = step
        self._loss = torch.compile(self.eager_loss, dynamic=False)

    def eager_loss(self, x, y):
        import torch.nn.functional as F

        net = self.step.net
        return F.cross_entropy(net(x), y) + self.step.lam * net.cost(self.step.cost) / self.step.ref

    def loss(self):
        return self._loss(self.step.x, self.step.y)

    def __call__(self) -> None:
        loss = self.loss()
        for opt in self.step.opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in self.step.opts:
            opt.step()


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def agreement(compiled: CompiledStep) -> dict:
    """Largest differences between the compiled and the eager loss and gradients of its network."""
    import torch

    params = [p for p in compiled.step.net.parameters() if p.requires_grad]
    eager = compiled.eager_loss(compiled.step.x, compiled.step.y)
    grads = torch.autograd.grad(eager, params)
    loss = compiled.loss()
    again = torch.autograd.grad(loss, params)
    rel = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-12)) for a, b in zip(again, grads))
    return {"loss_abs_diff": abs(float(loss.detach()) - float(eager.detach())), "grad_max_rel_diff": rel}


def probe(model: str, args) -> dict:
    import torch

    cold = {}
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # a cold cache: what a user's first study pays
        try:
            compiled = CompiledStep(Step(model, "joint", args.batch))
            cold["first_step_s"] = _seconds(compiled)
            cold["second_step_s"] = _seconds(compiled)
            state = compiled.step.net.state
            state.temperature = 0.7
            cold["after_temperature_change_s"] = _seconds(compiled)
            state.temperature = 1.0
            compiled.step = Step(model, "joint", args.batch)
            cold["new_network_s"] = _seconds(compiled)
            cold["new_network_second_step_s"] = _seconds(compiled)
            compiled.step = Step(model, "joint", args.batch)  # untrained, as the eager configuration below
            checked = agreement(compiled)
            steps = {"float": Step(model, "float", args.batch), "joint": Step(model, "joint", args.batch),
                     "compiled": compiled}
            for fn in steps.values():
                for _ in range(args.warmup):
                    fn()
            times = {name: [] for name in steps}
            for _ in range(args.repeats):
                for name, fn in steps.items():
                    times[name].append(_timed(fn, args.steps)[0])
        finally:
            if previous is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous
    med = {name: statistics.median(v) for name, v in times.items()}
    return {"model": model, "step_s": med, "ratio": {k: med[k] / med["float"] for k in ("joint", "compiled")},
            "compile": cold, "agreement": checked, "threads": torch.get_num_threads()}


def markdown(record: dict) -> str:
    lines = ["# torch.compile on the search step (probe)", "",
             f"- command: `{record['command']}`",
             f"- date {record['date_utc']}, {record['machine']['cpu']}, {record['machine']['cores']} cores, torch "
             f"{record['machine']['torch']}; batch {record['batch']}, {record['threads']} thread(s), "
             f"{record['repeats']} interleaved repetitions x {record['steps']} steps (medians)",
             f"- load average before / after: {record['load_before']} / {record['load_after']}",
             *[f"- note: {n}" for n in record["notes"]], "",
             "| model | float step | joint eager | joint, loss compiled | first compiled step (cold cache) | "
             "after a temperature change | first step of a new network | compiled vs eager: loss, gradients |",
             "|---|---|---|---|---|---|---|---|"]
    for r in record["models"]:
        c, a = r["compile"], r["agreement"]
        lines.append(f"| {r['model']} | {r['step_s']['float'] * 1e3:.2f} ms | **{r['ratio']['joint']:.2f}x** | "
                     f"**{r['ratio']['compiled']:.2f}x** | {c['first_step_s']:.1f} s | "
                     f"{c['after_temperature_change_s']:.1f} s | {c['new_network_s']:.1f} s | "
                     f"{a['loss_abs_diff']:.1e}, {a['grad_max_rel_diff']:.1e} (max rel.) |")
    lines += ["", "Ratios: median step time / median float step, measured in the same run. A temperature change "
              "or a new network recompiles the graph: the search anneals the temperature every step and "
              "every trial converts a new network, so the training loop cannot use the compiled step as it "
              "is (see the README's search-overhead section).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m benchmarks compile_probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="digits_cnn", help="comma-separated zoo models (default digits_cnn)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--out", default=str(RESULTS), help="results folder; '-' prints only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    record = {"command": "python -m benchmarks compile_probe " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "batch": args.batch, "threads": args.threads, "repeats": args.repeats,
              "steps": args.steps, "notes": args.note, "load_before": [round(x, 2) for x in os.getloadavg()]}
    record["models"] = [probe(m.strip(), args) for m in args.models.split(",") if m.strip()]
    record["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = markdown(record)
    if args.out != "-":
        from jointopt._files import atomic_write_text

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "compile_probe.json", json.dumps(record, indent=1) + "\n")
        atomic_write_text(out / "compile_probe.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
