"""``sensitivity``: measure each layer's sensitivity, allocate widths and pruning to a cost budget, fine-tune.

1. Sensitivity, on the validation split (its first ``eval_samples`` samples), of the warm-up network
   in its argmax form at the widest width: the accuracy drop when one layer alone is quantized to
   each narrower width, and when one channel group alone loses each share in ``prune_steps`` of its
   channels (lowest filter L1 norm first). Measured once per study and kept in
   ``RUN/sensitivity.json`` (the first trial pays for it; ``result.json`` → ``search`` says how long).
2. Allocation, greedy: starting from the widest unpruned network, take the step (one layer one width
   narrower, or one group one pruning step further) with the smallest increase of the summed
   measured drops per unit of target cost saved, until the network's exact target cost — the cost
   model evaluated on the allocation — is within ``budget`` × the reference cost (the unpruned
   network at the widest width). Drops are assumed additive, the usual approximation of
   sensitivity-based mixed precision (e.g. HAWQ's, which uses Hessian traces instead of measured drops).
3. Fine-tune for the search's and the fine-tune's epochs (as the uniform baselines).

Trial ``n`` takes budget point ``n`` of an even spread over ``budget``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch

from ..errors import ConfigError
from ._base import Method, fixed, spread, trial_index
from ._common import accuracy, fix_bits, fix_gates, keep_masks, l1_scores


@dataclass
class SensitivityOptions:
    """``budget``: [low, high] target cost as a share of the widest unpruned network's, spread over the
    trials; ``prune_steps``: shares of a group's channels whose removal is measured (and the steps the
    allocation can take); ``eval_samples``: validation samples per measurement (0 = all)."""

    budget: List[float] = field(default_factory=lambda: [0.08, 0.6])
    prune_steps: List[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    eval_samples: int = 2000

    def check(self, config) -> None:
        if len(self.budget) != 2 or not 0 < self.budget[0] <= self.budget[1] <= 1:
            raise ConfigError(f"methods.sensitivity.budget={self.budget} must be [low, high] with 0 < low <= high <= 1")
        if any(not 0 < p < 1 for p in self.prune_steps) or sorted(self.prune_steps) != list(self.prune_steps):
            raise ConfigError(f"methods.sensitivity.prune_steps={self.prune_steps} must be increasing shares in (0, 1)")
        if self.eval_samples < 0:
            raise ConfigError("methods.sensitivity.eval_samples must be >= 0 (0 = the whole validation split)")


class SensitivityMethod(Method):
    name = "sensitivity"
    summary = "per-layer sensitivity on validation, greedy width/pruning allocation to a cost budget, fine-tune"
    Options = SensitivityOptions

    def suggest(self, trial, study):
        o = self.options(study.config)
        return {"budget": fixed(trial, "budget", round(spread(trial_index(trial), *o.budget, log=True), 4))}

    def allocate(self, runner, net, warm, params, seed):
        o = self.options(runner.config)
        started = time.time()
        table, cached = self._sensitivity(runner, net, o)
        measured = time.time() - started
        bits, prune, cost, reference = greedy(runner, net, table, o, params["budget"])
        apply(net, bits, prune, table["scores"], o.prune_steps)
        return {"sensitivity_s": measured, "sensitivity_cached": cached, "base_val_acc": table["base"],
                "budget_cost": params["budget"] * reference, "cost": cost, "reference_cost": reference,
                "predicted_drop": predicted_drop(table, bits, prune),
                "layer_bits": bits, "group_prune": {g: o.prune_steps[i - 1] if i else 0.0 for g, i in prune.items()}}

    # -- 1. measure ---------------------------------------------------------------------------------
    def _sensitivity(self, runner, net, o) -> Tuple[dict, bool]:
        from ..tune.setup import warmup_key

        cfg = runner.config
        key = {"warmup": warmup_key(cfg), "weight_bits": list(cfg.space.weight_bits), "act_bits": list(cfg.space.act_bits),
               "prune_steps": list(o.prune_steps), "eval_samples": o.eval_samples, "exclude": list(cfg.space.exclude)}
        path = runner.trial_dir.parent.parent / "sensitivity.json" if runner.trial_dir is not None else None
        if path is not None and path.exists():
            try:
                saved = json.loads(path.read_text())
            except ValueError:
                saved = {}
            if saved.get("key") == key:
                table = saved["table"]
                table["scores"] = {g: torch.tensor(v) for g, v in table["scores"].items()}
                return table, True
        table = measure(runner, net, o)
        if path is not None:
            from ..tune import rundir

            stored = dict(table, scores={g: s.tolist() for g, s in table["scores"].items()})
            rundir.write_json(path, {"key": key, "table": stored})
        return table, False


def measure(runner, net, o) -> dict:
    """Validation accuracy drops of single-layer quantization and single-group pruning (see the module docstring)."""
    cfg = runner.config
    limit = o.eval_samples or None
    acc = lambda: accuracy(net, runner.dataset, "val", cfg.data.eval_batch_size, runner.device, limit)  # noqa: E731
    widest = max(cfg.space.weight_bits)
    fix_gates(net)
    fix_bits(net, widest)
    net.eval().set_mode("hard")
    base = acc()
    scores = l1_scores(net)
    drops_bits: Dict[str, Dict[str, float]] = {}
    for name, layer in net.searchable_layers():
        drops_bits[name] = {}
        for b in sorted(set(layer.weight_bits) - {widest}, reverse=True):
            fix_bits(net, {name: b})
            drops_bits[name][str(b)] = base - acc()
        fix_bits(net, widest)
    drops_prune: Dict[str, List[float]] = {}
    for gid, s in scores.items():
        drops_prune[gid] = []
        for share in o.prune_steps:
            fix_gates(net, keep_masks({gid: s}, 1 - share))
            drops_prune[gid].append(base - acc())
        fix_gates(net)
    return {"base": base, "bits": drops_bits, "prune": drops_prune, "scores": scores, "widest": widest}


# -- 2. allocate ------------------------------------------------------------------------------------
def apply(net, bits: Dict[str, int], prune: Dict[str, int], scores, steps) -> None:
    fix_bits(net, bits)
    fix_gates(net, {g: keep_masks({g: scores[g]}, 1 - steps[i - 1])[g] for g, i in prune.items() if i})


def predicted_drop(table, bits: Dict[str, int], prune: Dict[str, int]) -> float:
    drop = sum(table["bits"][name].get(str(b), 0.0) for name, b in bits.items() if b != table["widest"])
    return drop + sum(table["prune"][g][i - 1] for g, i in prune.items() if i)


def greedy(runner, net, table, o, budget: float):
    """The allocation (layer → width, group → pruning step index, 0 = none), its cost and the reference cost."""
    target = runner.cost_models[runner.config.cost.target]
    reference = float(net.reference_cost(target))
    widest = table["widest"]
    bits = {name: widest for name in table["bits"]}
    prune = {gid: 0 for gid in table["prune"]}

    def cost(b, p) -> float:
        apply(net, b, p, table["scores"], o.prune_steps)
        with torch.no_grad():
            return float(net.cost(target, hard=True))

    current = cost(bits, prune)
    while current > budget * reference:
        best = None
        now = predicted_drop(table, bits, prune)
        for name, b in bits.items():
            narrower = sorted(int(w) for w in table["bits"][name] if int(w) < b)
            if narrower:
                trial_bits = dict(bits, **{name: narrower[-1]})
                best = _better(best, (trial_bits, prune), now, table, cost, current)
        for gid, i in prune.items():
            if i < len(o.prune_steps):
                best = _better(best, (bits, dict(prune, **{gid: i + 1})), now, table, cost, current)
        if best is None:
            break  # nothing left to take: the budget is below the smallest allocation
        _, (bits, prune), current = best
    apply(net, bits, prune, table["scores"], o.prune_steps)
    return bits, prune, cost(bits, prune), reference


def _better(best, candidate, now, table, cost, current):
    b, p = candidate
    value = cost(b, p)
    saved = current - value
    if saved <= 0:
        return best
    ratio = (max(predicted_drop(table, b, p) - now, 0.0) + 1e-3) / saved
    return (ratio, candidate, value) if best is None or ratio < best[0] else best
