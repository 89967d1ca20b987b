"""What the methods share: the searchable network of a trial, setting its choices, channel scores, finishing.

Every method expresses its result as a choice of the study's searchable network (keep gates fixed
open or shut, bit selectors fixed to one width per channel), so that ``freeze`` — the same code
the joint search uses — builds the frozen network, and ``load_trial`` rebuilds it from
``searchable.pt``. ``FIX`` is large enough that a fixed choice is one-hot at any temperature the
schedules reach (sigmoid(20 / T) = 1 in float32 for T <= 1).
"""
from __future__ import annotations

import copy
import math
import time
from typing import Dict, List, Optional, Tuple

import torch

FIX = 20.0


def prepare(runner) -> int:
    """Seed the trial as the joint search does; return the seed."""
    seed = runner.seed  # from the trial's place in the study's plan: a retried trial keeps its seed
    torch.manual_seed(seed)
    return seed


def searchable(runner, model):
    """``model`` (the warm-up network, or any network of the same architecture) converted in the study's
    search space, with the trial's cost models bound to it."""
    from ..graph import convert

    cfg = runner.config
    model = copy.deepcopy(model).to(runner.device).eval()
    net = convert(model, runner.example_batch(), cfg.space.build(cfg.search.sampling))
    runner.bind_costs(net)
    net.temperature = cfg.search.temperature
    return net


# -- choices ---------------------------------------------------------------------------------------
def prunable_gates(net) -> Dict[str, "torch.nn.Module"]:
    return {gid: gate for gid, gate in net.gates.items() if gate.prunable}


def fix_gates(net, masks: Optional[Dict[str, torch.Tensor]] = None) -> None:
    """Shut the channels ``masks`` leaves out (group id → bool keep mask; missing groups keep all) and
    stop the gates from training."""
    masks = masks or {}
    with torch.no_grad():
        for gid, gate in net.gates.items():
            mask = masks.get(gid)
            keep = torch.ones(gate.size, dtype=torch.bool) if mask is None else mask.to(torch.bool).cpu()
            if not gate.prunable and not bool(keep.all()):
                raise ValueError(f"channel group {gid!r} cannot be pruned")
            gate.logits.copy_(torch.where(keep, FIX, -FIX).to(gate.logits))
            gate.logits.requires_grad_(False)


def fix_bits(net, bits) -> None:
    """Fix every layer's weight width: an int for all, or {layer name: int or per-channel tensor of widths}."""
    for name, layer in net.searchable_layers():
        choice = bits.get(name, max(layer.weight_bits)) if isinstance(bits, dict) else bits
        set_layer_bits(layer, choice)


def set_layer_bits(layer, bits) -> None:
    widths = list(layer.weight_bits)
    chosen = torch.as_tensor(bits).reshape(-1).expand(layer.geometry.out_channels).tolist()
    missing = sorted({int(b) for b in chosen} - set(widths))
    if missing:
        from ..errors import ConfigError

        raise ConfigError(f"width {missing[0]} is not in the search space's weight_bits {widths}; add it to "
                          "space.weight_bits")
    index = torch.tensor([widths.index(int(b)) for b in chosen])
    with torch.no_grad():
        logits = torch.nn.functional.one_hot(index, len(widths)).to(layer.bit_logits) * FIX
        layer.bit_logits.copy_(logits)
    layer.bit_logits.requires_grad_(False)


def chosen_bits(net) -> Dict[str, torch.Tensor]:
    """Per layer, the argmax width of every output channel (0 where its group shuts it)."""
    return {name: layer.hard_bits().cpu() for name, layer in net.searchable_layers()}


# -- channel scores and masks -------------------------------------------------------------------------
def producers(net) -> Dict[str, List[Tuple[str, "torch.nn.Module"]]]:
    """Group id → the searchable layers writing its channels (several for a residual add)."""
    out: Dict[str, list] = {}
    for name, layer in net.searchable_layers():
        if layer.out_group is not None:
            out.setdefault(layer.out_group, []).append((name, layer))
    return out


def l1_scores(net) -> Dict[str, torch.Tensor]:
    """Per prunable group, one score per channel: the L1 norm of each producer's filter for it
    (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017), divided by that producer's mean
    filter norm so that producers of a residual add weigh the same, summed over the producers."""
    scores = {}
    writers = producers(net)
    for gid in prunable_gates(net):
        total = None
        for _, layer in writers.get(gid, []):
            norm = layer.weight.detach().abs().flatten(1).sum(1).cpu()
            norm = norm / norm.mean().clamp_min(1e-12)
            total = norm if total is None else total + norm
        if total is not None:
            scores[gid] = total
    return scores


def keep_masks(scores: Dict[str, torch.Tensor], keep: float, scope: str = "layer",
               alive: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
    """Keep the ``keep`` share of channels with the highest scores: in every group (``layer``) or over
    all groups at once (``global``; each group's scores divided by their mean magnitude so groups
    compare). ``alive``: channels already pruned stay pruned. A group always keeps one channel."""
    alive = alive or {}
    normed = {}
    for gid, s in scores.items():
        s = s.detach().double().cpu() / s.detach().double().abs().mean().clamp_min(1e-12)
        if gid in alive:
            s = torch.where(alive[gid].cpu(), s, torch.full_like(s, -math.inf))
        normed[gid] = s
    masks = {}
    if scope == "global" and normed:
        flat = torch.cat(list(normed.values()))
        n = max(1, int(round(keep * flat.numel())))
        threshold = torch.sort(flat, descending=True, stable=True).values[n - 1]
        for gid, s in normed.items():
            masks[gid] = (s >= threshold) & torch.isfinite(s)
    else:
        for gid, s in normed.items():
            n = max(1, int(round(keep * s.numel())))
            order = torch.sort(s, descending=True, stable=True).indices
            mask = torch.zeros(s.numel(), dtype=torch.bool)
            mask[order[:n]] = True
            masks[gid] = mask & torch.isfinite(s)
    for gid, mask in masks.items():
        if not bool(mask.any()):
            mask[int(normed[gid].argmax())] = True
    return masks


def kept_fraction(masks: Dict[str, torch.Tensor]) -> float:
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / max(1, total)


# -- evaluation and the end of a trial --------------------------------------------------------------
@torch.no_grad()
def accuracy(model, dataset, split: str, batch_size: int, device, limit: Optional[int] = None) -> float:
    """Top-1 accuracy (%) of ``model`` on the first ``limit`` samples of ``split`` (all when None)."""
    was = model.training
    model.eval()
    correct = n = 0
    for x, y in dataset.batches(split, batch_size, device=device):
        if limit is not None and n >= limit:
            break
        if limit is not None:
            x, y = x[:limit - n], y[:limit - n]
        correct += int((model(x).argmax(1) == y).sum())
        n += len(y)
    model.train(was)
    return 100.0 * correct / max(1, n)


def hold_zeros(frozen, masks: Dict[str, torch.Tensor]) -> None:
    """Keep the weights ``masks`` leaves out at exactly zero while the frozen network is fine-tuned:
    their gradient is masked, so Adam (whose weight decay adds ``wd · 0``) never moves them."""
    for name, mask in masks.items():
        layer = frozen.get_submodule(name)
        with torch.no_grad():
            layer.weight.mul_(mask.to(layer.weight))
        layer.weight.register_hook(lambda grad, m=mask.to(layer.weight): grad * m)


def finish(runner, net, warm, params: dict, started: float, seed: int, info: Optional[dict] = None,
           budget: Optional[int] = None, weight_masks: Optional[Dict[str, torch.Tensor]] = None):
    """Freeze ``net``'s hard choice, fine-tune (``budget`` epochs, default ``finetune.epochs``; distilled
    from the warm-up network if configured), evaluate, and describe the trial as the joint search does."""
    from ..train.loop import evaluate
    from ..train.phases import describe_frozen, trial_result

    cfg = runner.config
    net.eval().set_mode("hard")
    runner._searchable_state = net.state_dict()  # the fine-tune checkpoints carry it: a resumed trial skips the rest
    frozen = net.freeze()
    if weight_masks:
        hold_zeros(frozen, weight_masks)
    if budget is not None and budget != cfg.finetune.epochs:
        runner.config = cfg.override({"finetune.epochs": budget})
    try:
        frozen = runner.finetune(frozen, warm, seed)
    finally:
        runner.config = cfg
    val_acc, _ = evaluate(frozen, runner.dataset, "val", cfg.data.eval_batch_size, runner.device)
    test_acc, _ = evaluate(frozen, runner.dataset, "test", cfg.data.eval_batch_size, runner.device)
    result = trial_result(describe_frozen(frozen, net, runner.cost_models, cfg.cost.target), trial=runner.trial,
                          val_acc=val_acc, test_acc=test_acc, time_s=time.time() - started, search=info or {},
                          params=dict(params))
    runner.searchable, runner.frozen = net, frozen
    return result


def train_hard(runner, net, seed: int, on_step=None) -> None:
    """Train ``net``'s weights and quantizer steps in ``hard`` mode (the argmax network with its fixed
    choices) for the search phase's budget, with the search's Adam and learning-rate decay, calling
    ``on_step(step, total_steps)`` before every step (to change the choices). Announces a ``search``
    phase with an epoch event each epoch (validation accuracy, kept channels, hard costs), as the
    joint search does, so the progress line, ``metrics.jsonl`` and TensorBoard show it."""
    from ..train.loop import batches, evaluate, steps_per_epoch
    from ..train.phases import adam, mean_bits

    cfg = runner.config
    phase = cfg.search
    steps = steps_per_epoch(runner.dataset, cfg, phase)
    total = steps * phase.epochs
    opt = adam(net, phase, exclude=set(map(id, net.selector_parameters())))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, phase.lr_decay)
    generator = torch.Generator().manual_seed(seed)
    runner._emit("phase_start", "search", epochs=phase.epochs, steps=steps)
    for epoch in range(phase.epochs):
        net.train().set_mode("hard")
        loss_sum, count = 0.0, 0
        for x, y in batches(runner.dataset, cfg, phase, generator, runner.device):
            if on_step is not None:
                on_step(epoch * steps + count, total)
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum, count = loss_sum + float(loss.detach()), count + 1
        sched.step()
        val_acc, val_loss = evaluate(net, runner.dataset, "val", cfg.data.eval_batch_size, runner.device)
        with torch.no_grad():
            hard = {k: float(net.cost(m, hard=True)) for k, m in runner.cost_models.items()}
        summary = net.summary()
        kept = sum(r["kept"] for r in summary) / max(1, sum(r["total"] for r in summary))
        runner._emit("epoch", "search", epoch, loss=loss_sum / max(1, count), task_loss=loss_sum / max(1, count),
                     val_acc=val_acc, val_loss=val_loss, lr=opt.param_groups[0]["lr"], kept_fraction=kept,
                     mean_bits=mean_bits(net.layer_stats(hard=True)), **{f"hard_cost/{k}": v for k, v in hard.items()})
        runner._emit("allocation", "search", epoch, layers=summary)
    runner._emit("phase_end", "search", best_epoch=phase.epochs - 1)
    net.eval()
