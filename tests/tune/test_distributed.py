"""One trial under torchrun with DistributedDataParallel (gloo, 2 CPU processes) equals the single-process trial."""
import json
import subprocess
import sys

import pytest
import torch

from jointopt.train import EventBus, TrialRunner, load_checkpoint, train_float
from jointopt.tune.study import build_model, load_dataset, warmup_key


def test_torchrun_trial_equals_single_process(tiny_config, tmp_path):
    config = tiny_config.override(["threads=1"])
    config_file = tmp_path / "trial.yaml"
    config_file.write_text(config.to_yaml())
    run = tmp_path / "ddp"
    # the README's command: torchrun --nproc-per-node 2 -m jointopt search --lambda X ...
    job = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "jointopt", "search", "--config", str(config_file), "--lambda", "20.0", "--out", str(run),
                          "--no-tensorboard", "--quiet"], capture_output=True, text=True, timeout=600)
    assert job.returncode == 0, job.stdout + job.stderr
    assert job.stdout.count("one trial on 2 processes") == 1  # rank 0 alone reports ...
    env = json.loads((run / "environment.json").read_text())  # ... and writes the run directory
    assert env["distributed"] == {"world_size": 2, "backend": "gloo"}
    ddp = json.loads((run / "trials/0/result.json").read_text())

    # the same trial in one process, from the same warm-up network
    dataset = load_dataset(config)
    torch.manual_seed(config.seed)
    warm = build_model(config, dataset.input_shape, dataset.num_classes)
    warm.load_state_dict(load_checkpoint(run / "warmup" / f"{warmup_key(config)}.pt")["state"])
    runner = TrialRunner(config, dataset, EventBus([]), torch.device("cpu"), 0, None)
    single = json.loads(json.dumps(runner.run(warm, 20.0)))
    assert ddp["allocation"] == single["allocation"]
    assert single["kept_fraction"] < 1 or single["mean_bits"] < 8  # the search moved: a real comparison
    assert ddp["costs"] == single["costs"]
    assert ddp["val_acc"] == pytest.approx(single["val_acc"], abs=100.0 / len(dataset.val) + 1e-9)  # one sample
    frozen = load_checkpoint(run / "trials/0/frozen.pt")
    for name, value in runner.frozen.state_dict().items():
        assert torch.allclose(frozen[name].float(), value.float(), rtol=1e-3, atol=1e-4), name

    # the warm-up under DDP: BatchNorm normalises each process's half batch (no SyncBatchNorm on CPU),
    # so it is close to the single-process warm-up, not equal: it moved the weights the same way
    torch.manual_seed(config.seed)
    start = build_model(config, dataset.input_shape, dataset.num_classes)
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])
    initial = flat(start)
    reference, _ = train_float(start, dataset, config, EventBus([]), torch.device("cpu"), config.seed)
    moved = flat(reference) - initial
    assert (flat(warm) - flat(reference)).norm() < 0.5 * moved.norm()
    assert torch.nn.functional.cosine_similarity(flat(warm) - initial, moved, dim=0) > 0.9
