"""``random``: random structured pruning at the same ratios as ``magnitude`` — the floor every method must beat.

Each trial draws its own random channel ranking (seeded by the study seed and the trial number),
keeps the ``keep`` share of channels in every group (``scope: layer``) or over all groups
(``global``), quantizes every weight to one width and fine-tunes with the same budget as
``magnitude``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._common import prunable_gates
from ._magnitude import PruneOptions, PruneThenQuantize


@dataclass
class RandomOptions(PruneOptions):
    pass


class RandomMethod(PruneThenQuantize):
    name = "random"
    summary = "random structured pruning at the magnitude ratios + uniform width: the floor to beat"
    Options = RandomOptions

    def scores(self, net, seed):
        generator = torch.Generator().manual_seed(seed)
        return {gid: torch.rand(gate.size, generator=generator) for gid, gate in prunable_gates(net).items()}
