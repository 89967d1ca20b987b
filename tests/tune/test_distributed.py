"""One trial under torchrun with DistributedDataParallel (gloo, 2 CPU processes) equals the single-process trial."""
import json
import subprocess
import sys

import pytest
import torch

import jointopt
from jointopt.train import EventBus, TrialRunner, load_checkpoint, train_float
from jointopt.tune.setup import build_model, load_dataset, warmup_key


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
    single = runner.run(warm, 20.0).to_json()
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


def test_amp_and_data_parallel_wrappers_compose_in_either_order(tmp_path, monkeypatch):
    """bf16 autocast inside DistributedDataParallel (amp: true under torchrun): the layers see autocast,
    gradients reach the weights, evaluation stays fp32, and both wrappers leave the module as it was."""
    import torch.distributed as dist

    from jointopt.train.amp import autocast_forward
    from jointopt.train.distributed import Ranks, data_parallel
    from nets import Chain

    from torch.nn.parallel import DistributedDataParallel

    through_ddp = []
    ddp_forward = DistributedDataParallel.forward
    monkeypatch.setattr(DistributedDataParallel, "forward",
                        lambda self, *a, **k: through_ddp.append(1) or ddp_forward(self, *a, **k))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        x = torch.randn(4, 3, 12, 12)
        net = jointopt.convert(Chain().eval(), x, jointopt.SearchSpace()).set_mode("soft").train()
        inner = [m for m in net.modules() if m is not net and not list(m.children())][0]
        seen = []
        hook = inner.register_forward_pre_hook(lambda m, i: seen.append(torch.is_autocast_enabled("cpu")))
        ranks = Ranks(0, 1, torch.device("cpu"))
        for first, second in ((lambda: autocast_forward(net, "cpu"), lambda: data_parallel(net, ranks)),
                              (lambda: data_parallel(net, ranks), lambda: autocast_forward(net, "cpu"))):
            seen.clear()
            through_ddp.clear()
            with first(), second():
                out = net.train()(x)
                out.float().sum().backward()
                net.eval()(x)
            assert seen == [True, False]  # the training forward under autocast, evaluation not
            assert through_ddp == [1]  # the training forward went through DDP (its gradient all-reduce)
            assert out.dtype == torch.float32
            assert all(p.grad is not None for p in net.weight_parameters())
            assert "forward" not in vars(net)  # the plain module again
            net.zero_grad(set_to_none=True)
        hook.remove()
    finally:
        dist.destroy_process_group()
