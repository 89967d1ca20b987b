"""``uniform``: every weight at one width, quantization-aware fine-tuning — the baselines, as a method.

Trial ``n`` takes width ``bits[n mod len(bits)]`` (so ``--trials`` = the number of widths sweeps each
once); no channel is pruned. The network is trained for the search's and the fine-tune's epochs, as
the study's uniform baselines are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from ._base import Method, fixed, trial_index
from ._common import fix_bits, fix_gates


@dataclass
class UniformOptions:
    """``bits``: the widths to sweep (empty: the search space's non-zero widths, widest first)."""

    bits: List[int] = field(default_factory=list)

    def check(self, config) -> None:
        widths = _widths(self, config)
        allowed = [b for b in config.space.weight_bits if b > 0]
        bad = [b for b in widths if b not in allowed]
        if bad or not widths:
            from ..errors import ConfigError

            raise ConfigError(f"methods.uniform.bits={self.bits}: every width must be one of the search space's "
                              f"{allowed} (a trial is stored as a choice in that space); add it to space.weight_bits")


def _widths(options: UniformOptions, config) -> List[int]:
    return list(options.bits) if options.bits else sorted((b for b in config.space.weight_bits if b > 0), reverse=True)


class UniformMethod(Method):
    name = "uniform"
    summary = "all weights at one width, swept over methods.uniform.bits; quantization-aware fine-tuning"
    Options = UniformOptions

    def suggest(self, trial, study):
        widths = _widths(self.options(study.config), study.config)
        return {"bits": fixed(trial, "bits", int(widths[trial_index(trial) % len(widths)]))}

    def allocate(self, runner, net, warm, params, seed):
        fix_gates(net)
        fix_bits(net, int(params["bits"]))
        return {"bits": int(params["bits"])}
