"""Stopping a trial whose outcome is already clear, halfway through its search.

After every search epoch a trial's hard allocation is evaluated anyway (validation accuracy, cost
under every model). From ``tuner.early_stop_after`` of the search epochs on, :class:`StopRule` stops
a trial when one of these held after the epoch just run and after the one before (mid-search the
argmax of a relaxation still at some temperature can dip for an epoch and recover):

* it has **collapsed**: validation accuracy at chance while the warm-up network is far above it;
* it is **still the widest network**: its hard cost is the unpruned, widest network's, so it can only
  reproduce the widest uniform baseline the study already trained;
* it is **dominated**: a completed trial of the study, at the same search epoch, had a cost no
  higher and a validation accuracy higher by more than the margin. Comparing at the same epoch
  compares like with like: both networks are as far from their fine-tune.

The margin is ``max(1, 2·σ)`` accuracy points, σ the binomial standard deviation of a validation
accuracy at that level on this validation split: an accuracy gap under it could be the split's
noise. A stopped trial skips the rest of its search and its fine-tune; it is still a complete trial
(its frozen network, its costs and accuracy as they were when it stopped, the reason in
``result.json`` → ``stopped_early``), the λ plan learns from it, and it is never a front point.

Optuna's pruners do not support multi-objective studies, hence this rule in the study. Each
complete trial keeps its per-epoch ``(val_acc, hard cost)`` in its user attribute ``trajectory``, so
workers on other machines judge against the same trials.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

TRAJECTORY = "trajectory"  # a complete trial's user attribute: [[val_acc, hard target cost] or null, ...] per search epoch
Trajectory = Tuple[Optional[Tuple[float, float]], ...]


def accuracy_margin(val_acc: float, val_samples: int) -> float:
    """Accuracy points two validation accuracies must differ by to be told apart on this split."""
    p = min(max(val_acc / 100.0, 0.0), 1.0)
    sigma = 100.0 * math.sqrt(p * (1.0 - p) / max(1, val_samples))
    return max(1.0, 2.0 * sigma)


@dataclass(frozen=True)
class StopRule:
    """When a trial's search stops early; ``verdict`` is called after every search epoch.

    Attributes:
        after: share of the search epochs that run before any verdict (0 < after <= 1).
        chance: chance accuracy in % (100 / classes).
        warmup_acc: the warm-up network's validation accuracy in % (None: no collapse verdict).
        val_samples: size of the validation split.
        others: per completed trial (its number, its per-epoch ``(val_acc, hard cost)``).
    """

    after: float
    chance: float
    warmup_acc: Optional[float]
    val_samples: int
    others: Tuple[Tuple[int, Trajectory], ...] = ()

    def verdict(self, epochs: int, trajectory: Trajectory, widest_cost: float) -> Optional[str]:
        """Why the trial stops now, or None.

        Args:
            epochs: the search's epochs.
            trajectory: this trial's ``(val_acc, hard target cost)`` after each search epoch so far
                (None for an epoch run before an interruption); the last is the epoch just run.
            widest_cost: the target cost of the unpruned network at the widest widths.
        """
        epoch = len(trajectory) - 1
        if epoch < 1 or epoch + 1 < math.ceil(self.after * epochs) or epoch + 1 >= epochs:
            return None  # too early to judge, or the search is over anyway
        if trajectory[-2] is None:
            return None
        where = f"stopped early after search epoch {epoch + 1} of {epochs}"
        # each condition must hold at this epoch and the one before: mid-search, the hard choice of a
        # relaxation still at some temperature can dip for one epoch and recover
        reasons = [self._reason(e, *trajectory[e], widest_cost) for e in (epoch - 1, epoch)]
        if reasons[0] is None or reasons[1] is None or reasons[0][0] != reasons[1][0]:
            return None
        return f"{where}: {reasons[1][1]} (and after the epoch before)"

    def _reason(self, epoch: int, val_acc: float, cost: float, widest_cost: float) -> Optional[Tuple[str, str]]:
        """(kind, why) when the trial's hard allocation after ``epoch`` looks hopeless, else None."""
        floor = self.chance + max(2.0, 100.0 / max(1, self.val_samples))
        if self.warmup_acc is not None and self.warmup_acc > floor + 2.0 and val_acc <= floor:
            return "collapsed", (f"collapsed, validation accuracy {val_acc:.4g} % at chance ({self.chance:.4g} %) "
                                 f"while the warm-up network reaches {self.warmup_acc:.4g} %")
        if cost >= widest_cost * (1 - 1e-9):
            return "widest", ("nothing pruned and every channel at the widest width, so it can only reproduce the "
                              "widest uniform baseline")
        margin = accuracy_margin(val_acc, self.val_samples)
        for number, trajectory in self.others:
            if epoch < len(trajectory) and trajectory[epoch] is not None:
                their_acc, their_cost = trajectory[epoch]
                if their_cost <= cost and their_acc > val_acc + margin:
                    return "dominated", (f"dominated by trial {number} at the same epoch (validation {their_acc:.4g} % "
                                         f"vs {val_acc:.4g} %, margin {margin:.2g} points; cost {their_cost:.6g} <= "
                                         f"{cost:.6g})")
        return None


def completed_trajectories(trials) -> Tuple[Tuple[int, Trajectory], ...]:
    """(number, trajectory) of every complete Optuna trial that recorded one (an epoch it did not
    see, before an interruption it was resumed from, is None)."""
    out: List[Tuple[int, Trajectory]] = []
    for t in trials:
        rows = t.user_attrs.get(TRAJECTORY)
        if t.state.name == "COMPLETE" and isinstance(rows, Sequence) and rows:
            out.append((t.number, tuple(None if row is None else (float(row[0]), float(row[1])) for row in rows)))
    return tuple(out)
