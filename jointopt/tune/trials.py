"""Rebuild a trial's frozen network from a run directory (no pickled code is loaded)."""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import torch

from ..results import TrialResult
from ..train import load_checkpoint
from .rundir import FROZEN, SEARCHABLE, RunDir, RunDirError
from .setup import build_model, warmup_key


def load_trial(run: str | Path, number: int, device: str = "cpu") -> Tuple[torch.nn.Module, torch.nn.Module, TrialResult]:
    """(searchable network, frozen network, result) of trial ``number`` in ``run``, both networks on ``device``.

    Raises:
        RunDirError: ``run`` is not a run directory, or trial ``number`` has no result (the completed
            trials are named).
    """
    from ..graph import convert

    layout = RunDir(run).check()
    result = layout.result(number)
    config = layout.config()
    data = layout.dataset()
    if not data:
        raise RunDirError(f"{str(layout.path)!r} has no dataset.json: the study did not start its trials")
    model = build_model(config, data["input_shape"], data["num_classes"])
    warm = load_checkpoint(layout.warmup_path(warmup_key(config)))
    model.load_state_dict(warm["state"])
    shape = result.input_shape or tuple(data["input_shape"])
    example = torch.zeros((2, *shape))
    net = convert(model.eval(), example, config.space.build(config.search.sampling))
    net.load_state_dict(load_checkpoint(layout.trial_file(number, SEARCHABLE)))
    frozen = net.eval().set_mode("hard").freeze()
    frozen.load_state_dict(load_checkpoint(layout.trial_file(number, FROZEN)))
    return net.to(device), frozen.to(device).eval(), result  # both on ``device``
