"""``pai``: structured pruning at initialization, then train once — in the spirit of Reconvene.

Eccles et al. (Reconvene, CCGrid 2024) observe that what unstructured pruning-at-initialization
methods really decide is how much of each layer to keep, and turn that into structured pruning
that a device can use. Here, per trial:

1. A freshly initialised network (the study's model, seeded by the trial) scores every weight on
   ``batches`` training batches with a saliency: ``snip`` |g ⊙ w| (Lee et al., ICLR 2019),
   ``grasp`` w ⊙ Hg (Wang et al., ICLR 2020; the weights whose removal least reduces gradient flow
   score lowest), or the data-free ``synflow`` |w ⊙ ∂R/∂w| with R the output sum of the network
   with |w|, zero biases and an all-ones input (Tanaka et al., NeurIPS 2020; one round).
2. ``allocation: reconvene``: one global threshold keeps the ``keep`` share of all weights; each
   channel group keeps the share of its producers' weights that survived, taking the channels with
   the largest summed saliency. ``allocation: global``: channels ranked across groups by summed
   saliency (each group's divided by its mean magnitude), the ``keep`` share kept.
   The pruned network exists at this point — ``result.json`` → ``search.prune_s`` records how
   many seconds it took, before any training.
3. Train once: the float network with BatchNorm trains for the warm-up's budget with the pruned
   channels held at exactly zero (their conv weights and biases and their BatchNorm scale and shift
   are zero and get no gradient), so folding BatchNorm leaves them zero and freeze removes them
   without changing the function; then quantize to a uniform width (``bits``, cycled over the
   trials) and fine-tune for the search's and the fine-tune's epochs like every non-search method.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ._base import Method, fixed, spread, trial_index
from ._common import finish, fix_bits, fix_gates, keep_masks, kept_fraction, prepare, producers, searchable

SALIENCIES = ("snip", "grasp", "synflow")
ALLOCATIONS = ("reconvene", "global")


@dataclass
class PaiOptions:
    """``keep``: [low, high] share of weights (``reconvene``) or channels (``global``) kept, spread over the
    trials; ``bits``: uniform widths after training (cycled); ``batches``: training batches scored."""

    saliency: str = "snip"
    allocation: str = "reconvene"
    keep: List[float] = field(default_factory=lambda: [0.1, 1.0])
    bits: List[int] = field(default_factory=lambda: [8, 4])
    batches: int = 4

    def check(self, config) -> None:
        if self.saliency not in SALIENCIES:
            raise ConfigError(f"methods.pai.saliency={self.saliency!r}; choose {', '.join(SALIENCIES)}")
        if self.allocation not in ALLOCATIONS:
            raise ConfigError(f"methods.pai.allocation={self.allocation!r}; choose {', '.join(ALLOCATIONS)}")
        if len(self.keep) != 2 or not 0 < self.keep[0] <= self.keep[1] <= 1:
            raise ConfigError(f"methods.pai.keep={self.keep} must be [low, high] with 0 < low <= high <= 1")
        allowed = [b for b in config.space.weight_bits if b > 0]
        if not self.bits or any(b not in allowed for b in self.bits):
            raise ConfigError(f"methods.pai.bits={self.bits}: every width must be one of {allowed}")
        if self.batches < 1:
            raise ConfigError("methods.pai.batches must be >= 1")


class PaiMethod(Method):
    name = "pai"
    summary = "structured pruning at initialization (SNIP/GraSP/SynFlow saliency, Reconvene-style), train once"
    Options = PaiOptions

    def suggest(self, trial, study):
        o = self.options(study.config)
        i = trial_index(trial)
        return {"keep": fixed(trial, "keep", round(spread(i // len(o.bits), *o.keep, log=True), 4)),
                "bits": fixed(trial, "bits", int(o.bits[i % len(o.bits)]))}

    def run(self, runner, warm, params):
        from ..train.loop import train_float
        from ..tune.setup import build_model

        started = time.time()
        seed = prepare(runner)
        runner.resume_state = None  # a retried trial starts again from its initialisation
        o = self.options(runner.config)
        data = runner.dataset
        model = build_model(runner.config, data.input_shape, data.num_classes).to(runner.device)
        init = searchable(runner, model)  # the initial network (BatchNorm at its initial statistics, folded)
        scores = saliency(runner, init, o, seed)
        masks = allocate_channels(init, scores, params["keep"], o.allocation)
        prune_s = time.time() - started
        held = hold_pruned(model, init, masks)
        model, float_acc = train_float(model, data, runner.config, runner.bus, runner.device, seed, trial=runner.trial)
        net = searchable(runner, model)
        zero = check_zero(net, masks)
        fix_gates(net, masks)
        fix_bits(net, int(params["bits"]))
        info = {"saliency": o.saliency, "allocation": o.allocation, "prune_s": prune_s,
                "kept_channels": kept_fraction(masks), "float_val_acc": float_acc, "held_parameters": held,
                "pruned_outputs_zero": zero}
        return finish(runner, net, warm, params, started, seed, info=info, budget=self.finetune_budget(runner.config))


def saliency(runner, net, o: PaiOptions, seed: int) -> Dict[str, torch.Tensor]:
    """Per searchable layer, a score per weight (higher = keep), on the network in float mode."""
    layers = dict(net.searchable_layers())
    net.set_mode("float")
    if o.saliency == "synflow":
        return _synflow(net, layers, runner)
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for x, y in runner.dataset.batches("train", runner.config.data.batch_size, shuffle=True, generator=generator,
                                       device=runner.device):
        batches.append((x, y))
        if len(batches) >= o.batches:
            break
    weights = [layer.weight for layer in layers.values()]
    net.eval()
    if o.saliency == "snip":
        grads = [torch.zeros_like(w) for w in weights]
        for x, y in batches:
            for acc, g in zip(grads, torch.autograd.grad(F.cross_entropy(net(x), y), weights)):
                acc += g
        return {n: (g * w).abs().detach() for n, g, w in zip(layers, grads, weights)}
    # GraSP: Hg = d(g · stop_grad(g)) / dw; keep the largest w ⊙ Hg
    grads = [torch.zeros_like(w) for w in weights]
    for x, y in batches:
        for acc, g in zip(grads, torch.autograd.grad(F.cross_entropy(net(x), y), weights)):
            acc += g.detach()
    hg = [torch.zeros_like(w) for w in weights]
    for x, y in batches:
        g = torch.autograd.grad(F.cross_entropy(net(x), y), weights, create_graph=True)
        dot = sum((a * b).sum() for a, b in zip(g, grads))
        for acc, h in zip(hg, torch.autograd.grad(dot, weights)):
            acc += h.detach()
    return {n: (w.detach() * h) for n, w, h in zip(layers, weights, hg)}


def _synflow(net, layers, runner) -> Dict[str, torch.Tensor]:
    import copy

    probe = copy.deepcopy(net).double()
    probe_layers = dict(probe.searchable_layers())
    with torch.no_grad():
        for layer in probe_layers.values():
            layer.weight.abs_()
            if layer.bias is not None:
                layer.bias.zero_()
    probe.set_mode("float").eval()
    x = torch.ones((1, *runner.dataset.input_shape), dtype=torch.float64, device=runner.device)
    weights = [layer.weight for layer in probe_layers.values()]
    grads = torch.autograd.grad(probe(x).sum(), weights)
    return {n: (g * w).abs().float().detach() for n, g, w in zip(layers, grads, weights)}


def allocate_channels(net, scores: Dict[str, torch.Tensor], keep: float, allocation: str) -> Dict[str, torch.Tensor]:
    """Channel keep masks per prunable group from per-weight scores (see the module docstring)."""
    writers = producers(net)
    gates = {gid: gate for gid, gate in net.gates.items() if gate.prunable and gid in writers}
    channel = {gid: sum(scores[name].flatten(1).sum(1).cpu() for name, _ in writers[gid]) for gid in gates}
    if allocation == "global":
        return keep_masks(channel, keep, "global")
    flat = torch.cat([s.flatten().cpu() for s in scores.values()])
    n = max(1, int(round(keep * flat.numel())))
    threshold = torch.sort(flat, descending=True).values[n - 1]
    masks = {}
    for gid in gates:
        kept = sum(int((scores[name] >= threshold).sum()) for name, _ in writers[gid])
        total = sum(scores[name].numel() for name, _ in writers[gid])
        masks.update(keep_masks({gid: channel[gid]}, kept / total))
    return masks


def hold_pruned(model, net, masks: Dict[str, torch.Tensor]) -> int:
    """Zero the pruned channels of ``model`` (the float network with BatchNorm) and keep them zero while it
    trains: each producer's weights and bias, and the scale and shift of the BatchNorm after it."""
    from ..graph.fold import trace

    gm = trace(model)
    modules = dict(gm.named_modules())
    after = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), torch.nn.modules.batchnorm._BatchNorm):
            src = node.args[0]
            if getattr(src, "op", None) == "call_module" and len(src.users) == 1:
                after[src.target] = node.target
    held = 0
    for name, layer in net.searchable_layers():
        mask = masks.get(layer.out_group)
        if mask is None:
            continue
        params = [model.get_submodule(name).weight, model.get_submodule(name).bias]
        if name in after:
            bn = model.get_submodule(after[name])
            params += [bn.weight, bn.bias]
        for p in params:
            if p is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)
            m = mask.to(p.device, p.dtype).reshape(shape)
            with torch.no_grad():
                p.mul_(m)
            p.register_hook(lambda grad, m=m: grad * m)
            held += 1
    return held


def check_zero(net, masks: Dict[str, torch.Tensor]) -> bool:
    """Whether every pruned channel's folded weights and bias are exactly zero after training."""
    for _, layer in net.searchable_layers():
        mask = masks.get(layer.out_group)
        if mask is None or bool(mask.all()):
            continue
        gone = ~mask.to(layer.weight.device)
        if bool(layer.weight.detach()[gone].any()) or (layer.bias is not None and bool(layer.bias.detach()[gone].any())):
            return False
    return True
