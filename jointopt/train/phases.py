"""A trial's search and quantization-aware fine-tune (:class:`TrialRunner`), and the record of its frozen network.

The float warm-up and what every phase's epoch loop shares (batches, evaluation, keeping the best
epoch, stopping after ``patience`` epochs without improvement) are in :mod:`jointopt.train.loop`.
Everything a phase does is announced on the event bus.
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._constants import constant
from ..config import Config, PhaseConfig
from ..cost import get_cost_model
from ..errors import DivergedError
from ..graph import convert
from ..graph.network import SearchableNetwork
from ..results import TrialResult
from .checkpoint import save_checkpoint
from ._losses import StepLosses, read_interval
from .events import EventBus
from .faults import fault_point
from .loop import EarlyStop, batches, evaluate, steps_per_epoch, weights_state
from .schedule import SearchSchedule, fused_adam, selector_entropy, selector_optimizer


CHECKPOINT = "checkpoint.pt"  # a trial's per-epoch checkpoint, in its directory (see jointopt.tune.rundir)
EXPLODED = 1e3  # a search whose task loss grows this many times above its first step's (and above 1) diverged


def _search_fault(net, epoch: int, step: int, task: float, reg: float, lam: float, lr: float) -> Optional[str]:
    """The reason a search step's loss is not finite, or None when it is."""
    where = f"the search diverged at epoch {epoch} step {step}"
    if not math.isfinite(reg):
        return (f"{where}: the cost term λ·cost/reference is {reg} at λ={lam:g} (a non-finite cost, or a λ too large "
                "for float32); use a smaller λ")
    if not math.isfinite(task):
        return f"{where}: the task loss is {task} ({weights_state(net)}); lower search.lr (now {lr:g})"
    return None


QUANTIZER_PARAMETERS = ("log_step", "act_clip")


def adam(model: nn.Module, phase: PhaseConfig, exclude=frozenset()) -> torch.optim.Adam:
    """Adam over ``model``'s trainable parameters (less ``exclude``, a set of ids).

    Weight decay applies to weights and biases, not to the quantizers' learned steps and clips:
    decay would pull ``log_step`` towards 0 (a step of 1) and shrink the clips for no reason.
    """
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) not in exclude:
            (plain if name.rsplit(".", 1)[-1] in QUANTIZER_PARAMETERS else decay).append(p)
    groups = [{"params": decay, "weight_decay": phase.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return fused_adam([g for g in groups if g["params"]], lr=phase.lr)


def _distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    t = temperature
    return F.kl_div(F.log_softmax(student / t, 1), F.softmax(teacher / t, 1), reduction="batchmean") * t * t


class TrialRunner:
    """Runs one trial: convert the warm-up network, search, freeze, fine-tune, evaluate.

    Args:
        config: the study configuration.
        dataset: the in-memory data set.
        bus: where progress goes.
        device: torch device.
        trial: trial number (for events), or None for a baseline.
        trial_dir: where per-epoch checkpoints go (None: no checkpoints).
        seed_index: the trial's place in the study's plan (default: ``trial``); the trial's seed is
            ``config.seed * 100003 + seed_index``, so a retried trial keeps the seed of the one it retries.
        baseline: the name of the uniform baseline this runner trains (``w8``, ...), announced on its
            events instead of a trial number.
    """

    def __init__(self, config: Config, dataset, bus: EventBus, device, trial: Optional[int], trial_dir: Optional[Path],
                 seed_index: Optional[int] = None, baseline: Optional[str] = None):
        self.config, self.dataset, self.bus, self.device = config, dataset, bus, device
        self.trial, self.trial_dir, self.baseline = trial, trial_dir, baseline
        self.seed_index = seed_index if seed_index is not None else (trial or 0)
        self.cost_names = cost_names(config)
        self.cost_models = {name: get_cost_model(name) for name in self.cost_names}
        self.resume_state: Optional[dict] = None  # a checkpoint of an interrupted run of the same trial
        self.warnings: List[str] = []  # what went wrong but left a usable network (result.json → warnings)
        self.stop_rule = None  # a jointopt.tune.early_stop.StopRule: may end the search halfway (set by the study)
        self.stopped: Optional[str] = None  # why it did; the fine-tune is then skipped
        self.trajectory: List[Optional[Tuple[float, float]]] = []  # (val_acc, hard target cost) per search epoch

    # -- helpers ----------------------------------------------------------------------------------
    def _emit(self, kind, phase=None, epoch=None, **data):
        self.bus.emit(kind, self.trial, phase, epoch, baseline=self.baseline, **data)

    @property
    def seed(self) -> int:
        """The trial's seed: from the study's seed and the trial's place in the plan, not its number."""
        return self.config.seed * 100003 + self.seed_index

    def _checkpoint(self, phase: str, epoch: int, model: nn.Module, optimizers, sched, generator, stop,
                    extra: Optional[dict] = None) -> None:
        """Everything needed to continue the phase after ``epoch`` (written atomically)."""
        if self.trial_dir is not None:
            save_checkpoint(self.trial_dir / CHECKPOINT, {
                "phase": phase, "epoch": epoch, "state": model.state_dict(),
                "optimizers": [o.state_dict() for o in optimizers], "sched": sched.state_dict(),
                "generator": generator.get_state(), "stop": stop.state_dict(), **(extra or {})})
            fault_point("checkpoint_written", self.trial)

    def _restore(self, phase: str, model: nn.Module, optimizers, sched, generator, stop) -> int:
        """Load a checkpoint of ``phase`` if resuming; return the first epoch to run."""
        saved = self.resume_state
        if not saved or saved.get("phase") != phase:
            return 0
        model.load_state_dict(saved["state"])
        for opt, state in zip(optimizers, saved["optimizers"]):
            opt.load_state_dict(state)
        sched.load_state_dict(saved["sched"])
        generator.set_state(saved["generator"])
        stop.load_state_dict(saved["stop"])
        self._emit("resumed", phase, saved["epoch"], from_epoch=saved["epoch"] + 1)
        return saved["epoch"] + 1

    def bind_costs(self, net: SearchableNetwork) -> None:
        """Bind the cost models to this trial's network (see :meth:`CostModel.bind`)."""
        self.cost_models = {name: model.bind(net) for name, model in self.cost_models.items()}

    def example_batch(self) -> torch.Tensor:
        x, _ = next(self.dataset.batches("train", min(256, len(self.dataset.train)), device=self.device))
        return x

    # -- the trial --------------------------------------------------------------------------------
    def run(self, warm: nn.Module, lam: float, lam2: float = 0.0, temperature_decay: Optional[float] = None
            ) -> TrialResult:
        """The joint search of one trial at strength ``lam`` (``lam2`` for the second target,
        ``temperature_decay`` to override the schedule's): search, freeze, fine-tune, evaluate.
        Sets ``self.searchable`` and ``self.frozen`` and returns the trial's result."""
        cfg = self.config
        started = time.time()
        seed = self.seed
        torch.manual_seed(seed)
        warm = copy.deepcopy(warm).to(self.device).eval()
        space = cfg.space.build(cfg.search.sampling)
        net = convert(warm, self.example_batch(), space)
        self.bind_costs(net)
        net.temperature = cfg.search.temperature
        if self.resume_state and self.resume_state.get("phase") == "finetune":
            net.load_state_dict(self.resume_state["searchable"])  # the search had finished
            net.eval().set_mode("hard")
        else:
            self.search(net, lam, lam2, cfg.search.temperature_decay if temperature_decay is None
                        else temperature_decay, seed)
        self._searchable_state = net.state_dict()
        frozen = net.freeze()
        frozen = self.finetune(frozen, warm, seed)
        val_acc, _ = evaluate(frozen, self.dataset, "val", cfg.data.eval_batch_size, self.device)
        test_acc, _ = evaluate(frozen, self.dataset, "test", cfg.data.eval_batch_size, self.device)
        params = {"lambda": lam, **({"lambda2": lam2} if cfg.cost.second else {}),
                  **({"temperature_decay": temperature_decay} if temperature_decay is not None else {})}
        result = trial_result(describe_frozen(frozen, net, self.cost_models, cfg.cost.target), trial=self.trial,
                              val_acc=val_acc, test_acc=test_acc, time_s=time.time() - started,
                              search=getattr(self, "freeze_report", {}), params=params)
        self.searchable, self.frozen = net, frozen
        return result

    def search(self, net: SearchableNetwork, lam: float, lam2: float, decay: Optional[float], seed: int) -> None:
        cfg, phase = self.config, self.config.search
        generator = torch.Generator().manual_seed(seed)
        target = self.cost_models[cfg.cost.target]
        ref = net.reference_cost(target)
        second = self.cost_models.get(cfg.cost.second) if cfg.cost.second else None
        ref2 = net.reference_cost(second) if second is not None else None
        steps = steps_per_epoch(self.dataset, cfg, phase)
        schedule = SearchSchedule(steps * phase.epochs, steps, phase.temperature, phase.final_temperature, decay,
                                  phase.hard_fraction, phase.sampling)
        opt_w = adam(net, phase, exclude=set(map(id, net.selector_parameters())))
        opt_s = selector_optimizer(net.selector_parameters(), phase, schedule.total_steps)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt_w, phase.lr_decay)
        stop = EarlyStop(phase.patience, higher_is_better=False)
        self._emit("phase_start", "search", epochs=phase.epochs, steps=steps, reference={k: float(net.reference_cost(m))
                                                                                        for k, m in self.cost_models.items()})
        first = self._restore("search", net, (opt_w, opt_s), sched, generator, stop)
        self.trajectory = [None] * first  # epochs run before an interruption are not known here
        first_task = None
        losses = StepLosses(read_interval(self.device))  # one host read per step on the CPU, per 32 on a GPU
        for epoch in range(first, phase.epochs):
            net.train().set_mode("soft")
            total = task_total = reg_total = 0.0
            count = 0

            def consume(rows, last: int) -> None:
                """Check and add up the steps read from the device (the last of them is step ``last``)."""
                nonlocal first_task, total, task_total, reg_total
                for i, (task_value, reg_value) in enumerate(rows):
                    at = last - len(rows) + 1 + i
                    fault = _search_fault(net, epoch, at, task_value, reg_value, lam, phase.lr)
                    if fault is None and first_task is not None and task_value > EXPLODED * max(first_task, 1.0):
                        fault = (f"the search diverged at epoch {epoch} step {at}: the task loss rose from "
                                 f"{first_task:.3g} to {task_value:.3g}; lower search.lr (now {phase.lr:g})")
                    if fault is not None:
                        raise DivergedError(fault)
                    first_task = task_value if first_task is None else first_task
                    total, task_total, reg_total = total + task_value + reg_value, task_total + task_value, \
                        reg_total + reg_value
                    if (at + 1) % max(1, steps // 4) == 0:
                        self._emit("step", "search", epoch, step=at + 1, steps=steps, loss=task_value + reg_value)

            for x, y in batches(self.dataset, cfg, phase, generator, self.device):
                step = epoch * steps + count
                net.temperature = schedule.temperature(step)
                net.state.sampling = schedule.sampling_at(step)
                task = F.cross_entropy(net(x), y)
                reg = lam * net.cost(target) / ref
                if second is not None:
                    reg = reg + lam2 * net.cost(second) / ref2
                loss = task + reg
                consume(losses.add(task, reg), count)  # on the CPU: checked before the step's update
                opt_w.zero_grad(set_to_none=True)
                opt_s.zero_grad(set_to_none=True)
                loss.backward()
                opt_w.step()
                opt_s.step()
                count += 1
            consume(losses.flush(), count - 1)
            sched.step()
            net.temperature = schedule.temperature(min((epoch + 1) * steps, schedule.total_steps - 1))
            net.set_mode("hard")
            val_acc, val_loss = evaluate(net, self.dataset, "val", cfg.data.eval_batch_size, self.device)
            with torch.no_grad():
                hard = {k: float(net.cost(m, hard=True)) for k, m in self.cost_models.items()}
                soft = {k: float(net.cost(m, hard=False)) for k, m in self.cost_models.items()}
            net.set_mode("soft")
            if not math.isfinite(val_loss) or not all(map(math.isfinite, hard.values())):
                raise DivergedError(f"the search diverged at epoch {epoch}: validation loss {val_loss}, hard costs "
                                    f"{hard} ({weights_state(net)}); lower search.lr (now {phase.lr:g}) or λ")
            summary = net.summary()
            kept = sum(r["kept"] for r in summary) / max(1, sum(r["total"] for r in summary))
            score = val_loss + lam * hard[cfg.cost.target] / float(ref)
            n = max(count, 1)
            self._emit("epoch", "search", epoch, loss=total / n, task_loss=task_total / n, reg=reg_total / n,
                       val_acc=val_acc, val_loss=val_loss, lr=opt_w.param_groups[0]["lr"], temperature=net.temperature,
                       kept_fraction=kept, mean_bits=mean_bits(net.layer_stats(hard=True)),
                       selector_entropy=selector_entropy(net),
                       **{f"soft_cost/{k}": v for k, v in soft.items()}, **{f"hard_cost/{k}": v for k, v in hard.items()})
            self._emit("allocation", "search", epoch, layers=summary)
            if decay is None:  # the budget schedule hardens the choice by the last step: keep the last epoch
                stop.update(epoch, -epoch, net)
                done = False
            else:
                done = stop.update(epoch, score, net)
            # after the update: a trial resumed from this checkpoint has this epoch's network as a candidate
            self._checkpoint("search", epoch, net, (opt_w, opt_s), sched, generator, stop)
            self.trajectory.append((val_acc, hard[cfg.cost.target]))
            if self.stop_rule is not None:
                self.stopped = self.stop_rule.verdict(phase.epochs, tuple(self.trajectory), float(ref))
                if self.stopped:
                    self._emit("stopped_early", "search", epoch, reason=self.stopped)
            if done or self.stopped:
                break
        if stop.state is None:  # every epoch's score was NaN: nothing to freeze
            raise DivergedError("the search kept no network: no epoch had a finite score; lower search.lr "
                                f"(now {phase.lr:g}) or λ")
        net.load_state_dict(stop.state)
        net.state.sampling = phase.sampling
        self.freeze_report = self._soft_hard_gap(net)
        net.eval().set_mode("hard")
        self._emit("phase_end", "search", best_epoch=stop.best_epoch, **self.freeze_report)

    def _soft_hard_gap(self, net: SearchableNetwork) -> dict:
        """Validation accuracy of the relaxation (soft) and of its argmax (hard), and the selector entropy, at freeze."""
        batch = self.config.data.eval_batch_size
        soft_acc, _ = evaluate(net.set_mode("soft"), self.dataset, "val", batch, self.device)
        hard_acc, _ = evaluate(net.set_mode("hard"), self.dataset, "val", batch, self.device)
        return {"soft_val_acc": soft_acc, "hard_val_acc": hard_acc, "soft_hard_gap": soft_acc - hard_acc,
                "selector_entropy": selector_entropy(net), "final_temperature": net.temperature}

    def finetune(self, frozen: nn.Module, teacher: nn.Module, seed: int) -> nn.Module:
        cfg, phase = self.config, self.config.finetune
        frozen.to(self.device)
        if phase.epochs == 0 or self.stopped:  # a trial stopped early keeps its network as the search left it
            return frozen.eval()
        generator = torch.Generator().manual_seed(seed + 1)
        opt = adam(frozen, phase)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, phase.lr_decay)
        stop = EarlyStop(phase.patience, higher_is_better=True)
        stop.update(-1, evaluate(frozen, self.dataset, "val", cfg.data.eval_batch_size, self.device)[0], frozen)
        self._emit("phase_start", "finetune", epochs=phase.epochs, steps=steps_per_epoch(self.dataset, cfg, phase))
        teacher.eval()
        first = self._restore("finetune", frozen, (opt,), sched, generator, stop)
        fault = None
        losses = StepLosses(read_interval(self.device))  # one host read per step on the CPU, per 32 on a GPU

        def consume(rows, last: int) -> Optional[str]:
            nonlocal total
            for i, (value,) in enumerate(rows):
                if not math.isfinite(value):  # on the CPU before the step spreads it; the best network so far is kept
                    return f"the fine-tune diverged at epoch {epoch} step {last - len(rows) + 1 + i} (loss {value})"
                total += value
            return None

        for epoch in range(first, phase.epochs):
            frozen.train()
            total, count = 0.0, 0
            for x, y in batches(self.dataset, cfg, phase, generator, self.device):
                out = frozen(x)
                loss = F.cross_entropy(out, y)
                if phase.distill:
                    with torch.no_grad():
                        target = teacher(x)
                    w = phase.distill_weight
                    loss = (1 - w) * loss + w * _distill_loss(out, target, phase.distill_temperature)
                fault = consume(losses.add(loss), count)
                if fault is not None:
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                count += 1
            fault = fault or consume(losses.flush(), count - 1)
            if fault is not None:
                break
            sched.step()
            val_acc, val_loss = evaluate(frozen, self.dataset, "val", cfg.data.eval_batch_size, self.device)
            self._emit("epoch", "finetune", epoch, loss=total / max(count, 1), val_acc=val_acc, val_loss=val_loss,
                       lr=opt.param_groups[0]["lr"])
            done = stop.update(epoch, val_acc, frozen)
            self._checkpoint("finetune", epoch, frozen, (opt,), sched, generator, stop,
                             {"searchable": getattr(self, "_searchable_state", None)})
            if done:
                break
        frozen.load_state_dict(stop.state)
        if fault is not None:  # not silent: the trial's result and the log say so
            kept = "the network before the fine-tune" if stop.best_epoch < 0 else f"its epoch {stop.best_epoch}"
            message = f"{fault}; kept {kept}; lower finetune.lr (now {phase.lr:g})"
            self.warnings.append(message)
            self._emit("warning", "finetune", epoch, message=message)
        self._emit("phase_end", "finetune", best_epoch=stop.best_epoch, val_acc=stop.best)
        return frozen.eval()


def cost_names(config: Config) -> List[str]:
    """The active cost models: the target first, then the second target and the reported ones."""
    names = [config.cost.target] + ([config.cost.second] if config.cost.second else []) + list(config.cost.report)
    return list(dict.fromkeys(names))


def mean_bits(stats) -> float:
    """Average weight width over the kept weights."""
    bits = weights = 0.0
    for s in stats:
        w = s.weights_at_bits()
        weights += float(w.sum())
        bits += float((w * constant(s.weight_bits, w.dtype, w.device)).sum())
    return bits / weights if weights else 0.0


def trial_result(described: dict, **fields) -> TrialResult:
    """A trial's result from :func:`describe_frozen`'s description and the trial's own ``fields``
    (``trial``, ``params``, ``val_acc``, ``test_acc``, ``time_s``, ``search``, ...)."""
    return TrialResult(**{**described, "allocation": tuple(described["allocation"])}, **fields)


def describe_frozen(frozen: nn.Module, net: Optional[SearchableNetwork], cost_models: Dict, target: str) -> dict:
    """Costs of the frozen network under every active model, and its allocation (the keys of a
    :class:`~jointopt.results.TrialResult` that describe the network)."""
    from ..graph import frozen_layer_stats

    stats = frozen_layer_stats(frozen)
    costs = {k: float(m.network_cost(stats)) for k, m in cost_models.items()}
    hist: Dict[int, int] = {}
    allocation = []
    for s in stats:
        counts = {int(b): int(n) for b, n in zip(s.weight_bits, s.out_at_bits.tolist()) if n}
        for b, n in counts.items():
            hist[b] = hist.get(b, 0) + n
        allocation.append({"layer": s.name, "kept": s.out_channels, "bits": counts,
                           "act_bits": int(s.act_bits[int(s.act_probs.argmax())])})
    result = {"target": target, "costs": costs, "cost_display": {k: m.format(costs[k]) for k, m in cost_models.items()},
              "bits_histogram": hist, "allocation": allocation, "mean_bits": mean_bits(stats)}
    if net is not None:
        totals = {r["layer"]: r["total"] for r in net.summary()}
        for row in allocation:
            row["total"] = totals.get(row["layer"], row["kept"])
        result["kept_fraction"] = sum(r["kept"] for r in allocation) / max(1, sum(r["total"] for r in allocation))
        result["reference"] = {k: float(net.reference_cost(m)) for k, m in cost_models.items()}
    return result
