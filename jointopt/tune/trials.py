"""Rebuild a trial's frozen network from a run directory (no pickled code is loaded)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..config import Config
from ..errors import ConfigError
from ..train import load_checkpoint
from . import rundir
from .study import build_model, warmup_key


def load_trial(run: str | Path, number: int, device: str = "cpu"):
    """(searchable network, frozen network, result dict) of trial ``number`` in ``run``."""
    from ..graph import convert

    run = Path(run)
    tdir = rundir.trial_dir(run, number)
    if not (tdir / "result.json").exists():
        done = sorted(int(p.name) for p in (run / "trials").glob("*") if (p / "result.json").exists()) \
            if (run / "trials").exists() else []
        raise ConfigError(f"trial {number} of {str(run)!r} has no result; completed trials: {done or 'none'}")
    config = Config.from_yaml(run / rundir.CONFIG)
    result = json.loads((tdir / "result.json").read_text())
    data = json.loads((run / "dataset.json").read_text())
    model = build_model(config, data["input_shape"], data["num_classes"])
    warm = load_checkpoint(run / "warmup" / f"{warmup_key(config)}.pt")
    model.load_state_dict(warm["state"])
    example = torch.zeros((2, *result["input_shape"]))
    net = convert(model.eval(), example, config.space.build(config.search.sampling))
    net.load_state_dict(load_checkpoint(tdir / "searchable.pt"))
    frozen = net.eval().set_mode("hard").freeze()
    frozen.load_state_dict(load_checkpoint(tdir / "frozen.pt"))
    return net, frozen.to(device).eval(), result
