"""The TensorBoard listener: turns search and tuner events into event files under ``RUN/tb``.

Runs (folders under ``RUN/tb``; ``tensorboard --logdir RUN`` shows them all):

* ``trial_<n>`` — per epoch, tags ``search/…`` and ``finetune/…``: ``task_loss``, ``reg``, ``loss``,
  ``val_acc`` (%), ``soft_cost/<cost>_<unit>`` and ``hard_cost/<cost>_<unit>`` for every active
  cost model (display units, e.g. ``memory_kB``), ``temperature``, ``kept_pct`` (% of output
  channels kept), ``mean_bits``, ``lr``; the allocation figure after search epochs (image
  ``allocation/search``, step = epoch); at the end the hparams of the trial (λ and the other
  tuned strengths) with its final metrics ``final/val_acc``, ``final/test_acc``,
  ``final/cost/<cost>_<unit>``, ``final/kept_pct``, ``final/mean_bits`` (HParams dashboard), the
  final allocation (``allocation/final``), its evolution (``allocation/evolution``) and a table
  (text ``allocation/table``).
* ``warmup`` — the float network's epochs and ``final/…`` accuracy; ``baseline_w<b>`` — the uniform
  baselines' fine-tune epochs and final metrics.
* ``study`` — the Pareto figure (image ``pareto/front``) and the front as a table (text
  ``pareto/table``), step = number of completed trials, refreshed whenever a trial ends; the
  configuration (text ``study/config``) and a custom-scalars layout (soft vs hard cost).

Several worker processes may share one run directory: a trial is written by the one process that
runs it; each refresh of the study run reads the result files of every worker and adds one complete
event file under an inter-process lock (see ``_tbfiles``).
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional

from ._rundata import load_run
from ._tbfiles import StudyEvents, image_summary
from ._units import cost_unit, safe_tag

TB_DIR = "tb"
EPOCH_IMAGES = 40  # allocation images per trial during the search, at most
TENSORBOARD_SAMPLES = 10  # images TensorBoard shows per tag unless told otherwise


def images_per_tag(search_epochs: int, trials: int, epoch_images: int = EPOCH_IMAGES) -> int:
    """The most images one tag of the run gets: a trial's ``allocation/search`` or the study's ``pareto/front``."""
    epochs = max(1, int(search_epochs))
    stride = math.ceil(epochs / max(1, int(epoch_images)))
    return max(math.ceil(epochs / stride), int(trials), 1)


def tensorboard_command(run_dir, config: Optional[dict] = None, trials: Optional[int] = None) -> str:
    """``tensorboard --logdir RUN``, with ``--samples_per_plugin images=N`` when a tag holds more images
    than TensorBoard shows by default (10), so that every search epoch's allocation is on the slider.

    Args:
        run_dir: the run directory.
        config: its configuration (default: read from ``RUN/config.yaml``).
        trials: trials in the study, when more than the configuration says (a resumed study).
    """
    if config is None:
        import yaml

        from ..tune.rundir import CONFIG

        path = Path(run_dir) / CONFIG
        config = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    epochs = (config.get("search") or {}).get("epochs") or 1
    count = max(int((config.get("tuner") or {}).get("trials") or 1), int(trials or 0))
    images = images_per_tag(epochs, count)
    extra = f" --samples_per_plugin images={images}" if images > TENSORBOARD_SAMPLES else ""
    return f"tensorboard --logdir {run_dir}{extra}"


def run_name(trial: Optional[int], phase: Optional[str] = None, baseline: Optional[str] = None) -> Optional[str]:
    """The TensorBoard run of an event: ``trial_3``, ``baseline_w8``, ``warmup``; None for study-level events."""
    if baseline is not None:
        return "warmup" if baseline == "float" else f"baseline_{baseline}"
    if trial is None:
        return "warmup" if phase == "warmup" else None
    return f"trial_{trial}" if trial >= 0 else f"baseline_w{-trial}"


def scalar_tags(phase: str, data: dict) -> Dict[str, float]:
    """Epoch scalars → TensorBoard tags in human units."""
    out = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            continue
        if key.startswith(("soft_cost/", "hard_cost/")):
            kind, name = key.split("/", 1)
            unit = cost_unit(name)
            out[f"{phase}/{kind}/{unit.tag}"] = unit(value)
        elif key == "kept_fraction":
            out[f"{phase}/kept_pct"] = 100.0 * value
        else:
            out[f"{phase}/{safe_tag(key)}"] = float(value)
    return out


def final_metrics(result: dict) -> Dict[str, float]:
    """The metrics a trial (or baseline) is judged by, as HParams metric tags."""
    out = {"final/val_acc": float(result["val_acc"]), "final/test_acc": float(result["test_acc"])}
    for name, value in result.get("costs", {}).items():
        unit = cost_unit(name)
        out[f"final/cost/{unit.tag}"] = unit(value)
    if "kept_fraction" in result:
        out["final/kept_pct"] = 100.0 * float(result["kept_fraction"])
    if "mean_bits" in result:
        out["final/mean_bits"] = float(result["mean_bits"])
    for key, value in (result.get("search") or {}).items():  # the relaxation at freeze time (soft-hard gap, entropy)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"final/search/{safe_tag(key)}"] = float(value)
    return out


class TensorBoardListener:
    """An event listener writing TensorBoard runs under ``run_dir/tb`` (see the module docstring).

    Args:
        run_dir: the study's run directory.
        log_cost: draw the Pareto figure with a log-scale cost axis.
        epoch_images: at most this many allocation images per trial during the search.
        record_allocation: also append each search epoch's allocation to ``trials/<n>/allocation.jsonl``
            (off by default: every study writes that file itself, with or without TensorBoard).
        study: refresh the study-level run when trials end.
        weight_bits: the search space's widths, so that every allocation figure has the same legend
            (default: taken from the ``study_start`` event's configuration).
    """

    def __init__(self, run_dir, log_cost: bool = False, epoch_images: int = EPOCH_IMAGES,
                 record_allocation: bool = False, study: bool = True, weight_bits=()):
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / TB_DIR
        self.log_cost, self.epoch_images = log_cost, max(1, int(epoch_images))
        self.record_allocation, self.study = record_allocation, study
        self.target: Optional[str] = None
        self.weight_bits = tuple(weight_bits)
        self._writers: Dict[str, object] = {}
        self._search_epochs: Dict[int, int] = {}
        self._history: Dict[int, List[dict]] = {}
        self._metrics: Dict[int, List[dict]] = {}
        self._kept: Dict[int, int] = {}
        self._failed: set = set()

    def _allocation_file(self, trial: int) -> Path:
        from ..tune.rundir import ALLOCATION, RunDir

        return RunDir(self.run_dir).trial_file(trial, ALLOCATION)

    # -- dispatch ---------------------------------------------------------------------------------
    def __call__(self, event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_study_start(self, e) -> None:
        self.target = e.data.get("target")
        space = (e.data.get("config") or {}).get("space", {})
        self.weight_bits = self.weight_bits or tuple(space.get("weight_bits", ()))
        if self.study:
            self._guard("study", self.write_study_header, e.data.get("config") or {})

    def _on_trial_start(self, e) -> None:
        self._history[e.trial], self._metrics[e.trial] = [], []
        if self.record_allocation:
            self._allocation_file(e.trial).unlink(missing_ok=True)

    def _on_phase_start(self, e) -> None:
        if e.phase == "search" and e.trial is not None:
            self._search_epochs[e.trial] = int(e.data.get("epochs") or 1)

    def _on_phase_end(self, e) -> None:
        """The search keeps its best epoch, not its last: remember which, for the evolution figure."""
        if e.phase != "search" or e.trial is None or e.trial < 0 or e.data.get("best_epoch") is None:
            return
        self._kept[e.trial] = int(e.data["best_epoch"])

    def _on_epoch(self, e) -> None:
        name = run_name(e.trial, e.phase, getattr(e, "baseline", None))
        if name is None or e.epoch is None:
            return
        writer = self._writer(name)
        for tag, value in scalar_tags(e.phase or "train", e.data).items():
            writer.add_scalar(tag, value, e.epoch, walltime=getattr(e, "time", None))
        if e.trial is not None and e.trial >= 0:
            self._metrics.setdefault(e.trial, []).append({"phase": e.phase, "epoch": e.epoch, **e.data})

    def _on_allocation(self, e) -> None:
        if e.trial is None or e.trial < 0:
            return
        row = {"epoch": e.epoch, "layers": _plain(e.data.get("layers", []))}
        self._history.setdefault(e.trial, []).append(row)
        if self.record_allocation:
            path = self._allocation_file(e.trial)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
        stride = math.ceil(self._search_epochs.get(e.trial, 1) / self.epoch_images)
        if e.epoch is not None and e.epoch % stride == 0:
            self._guard("allocation", self._allocation_image, e.trial, e.epoch, row["layers"])

    def _on_baseline(self, e) -> None:
        name = run_name(None, baseline=e.data["name"])
        writer = self._writer(name)
        for tag, value in final_metrics(e.data).items():
            writer.add_scalar(tag, value, 0)
        self._close(name)  # the baseline's epochs came before it: its run is complete

    def _on_trial_end(self, e) -> None:
        result = _plain(e.data["result"])
        name = run_name(e.trial)
        writer = self._writer(name)
        self._guard("hparams", self._hparams, writer, result)
        self._guard("allocation", self._final_allocation, writer, e.trial, result)
        self._close(name)
        self._history.pop(e.trial, None)
        self._metrics.pop(e.trial, None)
        self._kept.pop(e.trial, None)
        if self.study:
            self._guard("study", self.refresh_study)

    def _on_study_end(self, e) -> None:
        if self.study:
            self._guard("study", self.refresh_study)

    def close(self) -> None:
        """Flush and close every open TensorBoard writer (the study calls it when it ends)."""
        for name in list(self._writers):
            self._close(name)

    # -- writing ----------------------------------------------------------------------------------
    def _writer(self, name: str):
        if name not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            self._writers[name] = SummaryWriter(str(self.root / name), flush_secs=10)
        return self._writers[name]

    def _close(self, name: Optional[str]) -> None:
        writer = self._writers.pop(name, None) if name else None
        if writer is not None:
            writer.close()

    def _hparams(self, writer, result: dict) -> None:
        from torch.utils.tensorboard.summary import hparams

        params = {k: float(v) if isinstance(v, (int, float)) else str(v) for k, v in result.get("params", {}).items()}
        metrics = final_metrics(result)
        for summary in hparams(params, metrics):
            writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, 0)

    def _allocation_image(self, trial: int, epoch: int, layers: List[dict]) -> None:
        from ._allocation import allocation_figure
        from ._render import to_png

        fig = allocation_figure(layers, f"trial {trial} · allocation after search epoch {epoch}", self.weight_bits)
        self._image(self._writer(run_name(trial)), "allocation/search", to_png(fig), epoch)

    def _final_allocation(self, writer, trial: int, result: dict) -> None:
        from ._allocation import ALLOCATION_HEADER, allocation_figure, allocation_rows, allocation_title, \
            evolution_figure
        from ._render import to_png
        from ._tables import markdown

        target = result.get("target") or self.target or next(iter(result.get("costs", {"memory": 0})))
        unit = cost_unit(target).fitted([result.get("costs", {}).get(target, 0)])
        rows = result.get("allocation", [])
        final = allocation_figure(rows, allocation_title(result, unit, target), self.weight_bits)
        self._image(writer, "allocation/final", to_png(final), 0)
        writer.add_text("allocation/table", markdown((ALLOCATION_HEADER, allocation_rows(rows))), 0)
        fig = evolution_figure(self._history.get(trial, []), self._metrics.get(trial, []), target,
                               title=f"trial {trial}: allocation during the search", kept_epoch=self._kept.get(trial))
        if fig is not None:
            self._image(writer, "allocation/evolution", to_png(fig), 0)

    @staticmethod
    def _image(writer, tag: str, png: bytes, step: int) -> None:
        writer.file_writer.add_summary(image_summary(tag, png), step)

    def write_study_header(self, config: dict, force: bool = False) -> None:
        """The configuration as text and a custom-scalars layout (soft vs hard cost), once per study."""
        import yaml
        from torch.utils.tensorboard.summary import custom_scalars, text

        with StudyEvents(self.root / "study") as (state, events):
            if state.get("header") and not force:
                return
            events.add(text("study/config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```"), 0)
            cost = config.get("cost", {})
            names = list(dict.fromkeys([cost.get("target") or "memory", *([cost["second"]] if cost.get("second")
                                                                          else []), *cost.get("report", [])]))
            layout = {"cost during the search (soft = expected, hard = argmax)": {
                cost_unit(n).label: ["Multiline", [f"search/(soft|hard)_cost/{cost_unit(n).tag}$"]] for n in names},
                "accuracy": {"validation accuracy (%)": ["Multiline", ["(search|finetune|warmup)/val_acc$"]]}}
            events.add(custom_scalars(layout), 0)
            state["header"] = True

    def refresh_study(self, force: bool = False) -> None:
        """Redraw the Pareto figure and the front table from every result in the run directory.

        Skipped when nothing changed since the last refresh (by any process), unless ``force``.
        """
        from torch.utils.tensorboard.summary import scalar, text

        from ._pareto import pareto_figure
        from ._render import to_png
        from ._tables import baselines_table, markdown, trials_table

        with StudyEvents(self.root / "study") as (state, events):
            run = load_run(self.run_dir)
            digest = hashlib.sha1(json.dumps([run.results, run.baselines, self.log_cost], sort_keys=True,
                                             default=str).encode()).hexdigest()
            if state.get("digest") == digest and not force:
                return
            step = len(run.results)
            front = run.front()
            events.add(image_summary("pareto/front", to_png(pareto_figure(run, log_cost=self.log_cost))), step)
            table = (f"**Pareto front** ({len(front)} of {step} trials, target {run.target}; accuracy in %)\n\n"
                     + markdown(trials_table(run, front)))
            if run.baselines:
                table += "\n\n**Baselines**\n\n" + markdown(baselines_table(run))
            events.add(text("pareto/table", table), step)
            events.add(scalar("study/completed_trials", step), step)
            events.add(scalar("study/front_size", len(front)), step)
            state["digest"] = digest

    def _guard(self, what: str, fn, *args) -> None:
        """A figure that fails must not cost the scalars (nor the trial): say so once, go on."""
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported, never silenced
            if what not in self._failed:
                self._failed.add(what)
                print(f"jointopt: TensorBoard {what} not written: {exc!r}", file=sys.stderr)


def _plain(value):
    """Dict keys as strings and numbers as Python numbers, as they will read back from JSON."""
    from ..results import to_plain  # a result record: its JSON form

    return json.loads(json.dumps(value, default=to_plain))


def tensorboard_listener(run_dir, background: bool = False, **options):
    """The listener ``jointopt search`` attaches: ``listener(event)`` for every event, then ``close()``.

    ``background=True`` runs it in a child process (:class:`jointopt.report._background.BackgroundListener`),
    so its figures are drawn while training goes on; ``jointopt search`` does so.
    """
    if background:
        from ._background import BackgroundListener

        return BackgroundListener(TensorBoardListener, run_dir, **options)
    return TensorBoardListener(run_dir, **options)
