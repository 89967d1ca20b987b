"""Float baseline: ResNet-8 (1x28x28) on Fashion-MNIST with the warm-up schedule of
configs/fashion_mnist_resnet8.yaml. Records test accuracy (issue target >= 88 %) and time per epoch.

    python benchmarks/fashion_mnist_float.py                 # the recorded run (2 threads)
    python benchmarks/fashion_mnist_float.py --epochs 1 --limit-train 2000 --out /tmp/smoke   # smoke test

The loop is the plain float warm-up the pipeline starts from: Adam (lr, weight decay from the
config), learning rate x lr_decay after every epoch, cross-entropy, per-batch augmentation from the
data set, early stop on validation accuracy after ``patience`` epochs without improvement; the
test accuracy is measured with the weights of the best validation epoch (and reported for the last
epoch too). Writes ``<out>/fashion_mnist_float.json`` and ``.md``.
"""
from __future__ import annotations

import os

# On a shared machine, OpenMP threads that spin while waiting for a busy core cost 3-4x in wall
# time (measured here: 496 vs 132 ms per step with 2 threads at load 8). Passive waiting is set
# before torch starts its thread pool; export OMP_WAIT_POLICY=ACTIVE to measure the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import jointopt
from jointopt.config import Config
from jointopt.data import get_dataset
from jointopt.zoo import create_model

try:  # run as part of the benchmarks package, or as a script
    from ._machine import cpu_model
except ImportError:
    from _machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.88


def evaluate(model, dataset, split, batch_size):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in dataset.batches(split, batch_size):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / len(dataset.split(split))


def train(config: Config, epochs: int, limit_train):
    torch.manual_seed(config.seed)
    dataset = get_dataset(config.data.name, config.data.root, val_fraction=config.data.val_fraction,
                          seed=config.seed, limit_train=limit_train)
    model = create_model(config.model.name, **config.model.kwargs)
    phase = config.warmup
    optimizer = torch.optim.Adam(model.parameters(), lr=phase.lr, weight_decay=phase.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=phase.lr_decay)
    generator = torch.Generator().manual_seed(config.seed)
    history, best, best_state, best_epoch, stale = [], -1.0, None, 0, 0
    for epoch in range(epochs):
        model.train()
        start, loss_sum, steps = time.perf_counter(), 0.0, 0
        for x, y in dataset.batches("train", config.data.batch_size, shuffle=True, augment=config.data.augment,
                                    generator=generator):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach())
            steps += 1
            if phase.max_steps and steps >= phase.max_steps:
                break
        train_s = time.perf_counter() - start
        schedule.step()
        val = evaluate(model, dataset, "val", config.data.eval_batch_size)
        history.append({"epoch": epoch + 1, "train_seconds": round(train_s, 2), "steps": steps,
                        "train_loss": round(loss_sum / max(steps, 1), 4), "val_accuracy": round(val, 4)})
        print(f"epoch {epoch + 1}/{epochs}: {train_s:.0f} s, loss {loss_sum / max(steps, 1):.4f}, val {val:.4f}",
              file=sys.stderr, flush=True)
        if val > best:
            best, best_state, best_epoch, stale = val, copy.deepcopy(model.state_dict()), epoch + 1, 0
        else:
            stale += 1
            if stale >= phase.patience:
                break
    last_test = evaluate(model, dataset, "test", config.data.eval_batch_size)
    test = last_test
    if best_epoch != len(history):
        model.load_state_dict(best_state)
        test = evaluate(model, dataset, "test", config.data.eval_batch_size)
    return dataset, history, test, last_test, best


def machine() -> dict:
    cpu = cpu_model()
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "fashion_mnist_resnet8.yaml"))
    parser.add_argument("--epochs", type=int, default=None, help="default: warmup.epochs of the config")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = Config.from_yaml(args.config)
    epochs = args.epochs if args.epochs is not None else config.warmup.epochs
    info = machine()
    started = datetime.datetime.now(datetime.timezone.utc)
    wall = time.perf_counter()
    dataset, history, test, last_test, best_val = train(config, epochs, args.limit_train)
    wall = time.perf_counter() - wall
    info["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    epoch_s = [h["train_seconds"] for h in history]
    result = {
        "benchmark": "fashion_mnist_float",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date_utc": started.isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "config": str(Path(args.config).resolve().relative_to(REPO)) if Path(args.config).resolve().is_relative_to(REPO)
        else args.config,
        "model": {"name": config.model.name, "kwargs": config.model.kwargs},
        "data": {"name": dataset.name, "source": dataset.notes, "train": len(dataset.train), "val": len(dataset.val),
                 "test": len(dataset.test), "batch_size": config.data.batch_size, "augment": config.data.augment},
        "schedule": {"epochs_requested": epochs, "epochs_run": len(history), "lr": config.warmup.lr,
                     "weight_decay": config.warmup.weight_decay, "lr_decay": config.warmup.lr_decay,
                     "patience": config.warmup.patience},
        "threads": args.threads,
        "test_accuracy_best_val_epoch": round(test, 4),
        "test_accuracy_last_epoch": round(last_test, 4),
        "best_val_accuracy": round(best_val, 4),
        "target_test_accuracy": TARGET,
        "meets_target": test >= TARGET,
        "seconds_per_epoch_mean": round(float(np.mean(epoch_s)), 1),
        "seconds_per_epoch": epoch_s,
        "wall_seconds_total": round(wall, 1),
        "history": history,
        "machine": info,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "jointopt": jointopt.__version__},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fashion_mnist_float.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "fashion_mnist_float.md").write_text(render(result))
    print(f"test accuracy {test:.4f} (target {TARGET}), {result['seconds_per_epoch_mean']} s/epoch; wrote {out}")
    return 0


def render(r: dict) -> str:
    rows = "\n".join(f"| {h['epoch']} | {h['train_seconds']:.1f} | {h['steps']} | {h['train_loss']:.4f} | "
                     f"{100 * h['val_accuracy']:.2f} |" for h in r["history"])
    m, v = r["machine"], r["versions"]
    verdict = "meets" if r["meets_target"] else "does NOT meet"
    return f"""# Fashion-MNIST, ResNet-8, float training

Test accuracy **{100 * r['test_accuracy_best_val_epoch']:.2f} %** (weights of the best validation epoch;
last epoch {100 * r['test_accuracy_last_epoch']:.2f} %), which {verdict} the issue target of
{100 * r['target_test_accuracy']:.0f} %. Training takes **{r['seconds_per_epoch_mean']:.0f} s per epoch** on
{r['threads']} threads ({r['data']['train']:,} training images, batch {r['data']['batch_size']}).

- command: `{r['command']}`
- date (UTC): {r['date_utc']}, commit {r['git_commit']}
- config: `{r['config']}` (warm-up schedule: {r['schedule']['epochs_run']} of {r['schedule']['epochs_requested']}
  epochs run, Adam lr {r['schedule']['lr']}, weight decay {r['schedule']['weight_decay']}, lr x{r['schedule']['lr_decay']}
  per epoch, augmentation {'on' if r['data']['augment'] else 'off'})
- data: {r['data']['source']}; train {r['data']['train']:,} / val {r['data']['val']:,} / test {r['data']['test']:,}
- machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['platform']}; OMP_WAIT_POLICY={m['omp_wait_policy']}; load average
  {m['load_average_at_start']} at the start and {m['load_average_at_end']} at the end (the machine is shared,
  so epoch times include contention)
- versions: Python {v['python']}, torch {v['torch']}, numpy {v['numpy']}, jointopt {v['jointopt']}
- total wall time: {r['wall_seconds_total']:.0f} s

| epoch | train s | steps | train loss | val acc % |
|---|---|---|---|---|
{rows}
"""


if __name__ == "__main__":
    sys.exit(main())
