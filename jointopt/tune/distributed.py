"""``torchrun ... -m jointopt search --lambda X``: one trial (warm-up, search, fine-tune) on several processes.

A study's trials are independent, so several GPUs usually serve a study best as several workers
(``--workers``). One large trial instead uses DistributedDataParallel (:mod:`jointopt.train.distributed`):
every rank runs the same phases on its slice of every batch, and rank 0 writes a run directory laid
out as a one-trial study (trial 0), which ``jointopt report`` and ``jointopt export`` read.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError
from ..train import EventBus, save_checkpoint, train_float
from .._files import atomic_write_text
from ..train.cuda import prepare
from ..train.amp import autocast_forward
from ..train.distributed import DistributedAmpTrialRunner, DistributedTrialRunner, ShardedData, data_parallel, setup, teardown
from . import rundir
from ..results import StudyResult
from ..train.phases import CHECKPOINT
from .front import front_csv, front_table, pareto_front
from .setup import build_model, load_dataset, warmup_key


def run_trial(config, run_dir: Path, lam: float, listeners=(), argv=None) -> dict:
    """Run one trial with λ = ``lam`` under torchrun; every rank returns the result, rank 0 writes ``run_dir``."""
    import torch.distributed as dist

    ranks = setup(config.device)
    run_dir = Path(run_dir)
    try:
        problem = [None]
        if ranks.is_main and (run_dir / rundir.CONFIG).exists():
            problem[0] = (f"run directory {str(run_dir)!r} already holds a study; a torchrun trial starts in a new "
                          "--out folder")
        dist.broadcast_object_list(problem, src=0)  # every rank stops, not only the one that found it
        if problem[0]:
            raise ConfigError(problem[0])
        if config.threads:
            torch.set_num_threads(config.threads)
        dataset = prepare(load_dataset(config), ranks.device)  # on CUDA: resident on the GPU, cuDNN autotuned
        data = ShardedData(dataset, ranks)
        if ranks.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / rundir.CONFIG, config.to_yaml())
            env = rundir.environment(config, argv)
            env.update(distributed={"world_size": ranks.world, "backend": dist.get_backend()})
            rundir.write_json(run_dir / rundir.ENVIRONMENT, env)
            rundir.write_json(run_dir / rundir.DATASET, dataset_record(dataset))
            bus = EventBus([rundir.MetricsWriter(run_dir), rundir.LogWriter(run_dir), *listeners])
        else:
            bus = EventBus([])
        bus.emit("study_start", config=config.to_dict(), run_dir=str(run_dir), target=config.cost.target, trials=1,
                 storage=None)
        torch.manual_seed(config.seed)  # the initial weights depend on the seed only, as in a study
        model = build_model(config, dataset.input_shape, dataset.num_classes).to(ranks.device)
        with autocast_forward(model, ranks.device, enabled=config.amp), data_parallel(model, ranks):
            warm, warm_acc = train_float(model, data, config, bus, ranks.device, config.seed)
        key = warmup_key(config)
        tdir = rundir.trial_dir(run_dir, 0)
        if ranks.is_main:
            save_checkpoint(run_dir / "warmup" / f"{key}.pt", {"state": warm.state_dict(), "val_acc": warm_acc, "key": key})
            tdir.mkdir(parents=True, exist_ok=True)
        bus.emit("trial_start", 0, params={"lambda": lam}, reason="fixed λ (torchrun)")
        runner_class = DistributedAmpTrialRunner if config.amp else DistributedTrialRunner  # amp: bf16 autocast
        runner = runner_class(config, data, bus, ranks.device, 0, tdir if ranks.is_main else None,
                              ranks=ranks)
        result = runner.run(warm, lam).replace(method="joint", input_shape=tuple(dataset.input_shape),
                                               extra={"world_size": ranks.world})
        record = result.to_json()
        if ranks.is_main:
            layout = rundir.RunDir(run_dir)
            save_checkpoint(layout.trial_file(0, rundir.SEARCHABLE), runner.searchable.state_dict())
            save_checkpoint(layout.trial_file(0, rundir.FROZEN), runner.frozen.state_dict())
            layout.write_result(result)
            layout.trial_file(0, CHECKPOINT).unlink(missing_ok=True)
            bus.emit("trial_end", 0, result=result)
            target = config.cost.target
            front = pareto_front([result], target)
            atomic_write_text(run_dir / rundir.PARETO_CSV, front_csv(front, target))
            layout.write_front(StudyResult(target, tuple(front), (result,)))
            record["table"] = front_table(front, target, {})
            bus.close()
        return record
    finally:
        teardown()


def dataset_record(dataset) -> dict:
    """What ``dataset.json`` holds (shape, classes, the preprocessing every export records)."""
    return {"name": dataset.name, "input_shape": list(dataset.input_shape), "num_classes": dataset.num_classes,
            "class_names": list(dataset.class_names), "substitute": dataset.substitute,
            "mean": dataset.mean.tolist(), "std": dataset.std.tolist(),
            "raw_dtype": str(dataset.train.x.dtype).replace("torch.", ""),
            "raw_range": [float(dataset.train.x.min()), float(dataset.train.x.max())] if len(dataset.train) else None}
