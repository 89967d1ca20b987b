"""The study: warm-up once, many trials tuned by Optuna, the Pareto front of frozen networks."""
from __future__ import annotations

import copy
import os
import socket
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..config import Config
from ..errors import ConfigError, DivergedError
from ..results import SUMMARY_FIELDS, BaselineResult, StudyResult, TrialResult
from ..train import EventBus, TrialRunner, evaluate, load_checkpoint, save_checkpoint, train_float
from ..train.faults import fault_point
from ..train.phases import CHECKPOINT, cost_names, describe_frozen
from .._files import atomic_write_text, file_lock
from ..space import SearchSpace
from . import rundir
from .failures import (claimed_trials, collapse_reason, every_trial_failed, failed_trials, interrupted_trials,
                       quiet_optuna_failures, readable_checkpoint, record_failure, stale_trials)
from .early_stop import TRAJECTORY, StopRule, completed_trajectories
from .front import front_csv, front_table, pareto_front
from .plan import plan_index
from .rundir import RunDir
from .setup import build_model, load_dataset, quickstart_config, resolve_device, warmup_key


class Study:
    """One run directory's study. ``run()`` does the work; several processes may share the storage.

    Args:
        config: the resolved configuration.
        run_dir: the run directory (created).
        storage: an Optuna storage URL; default SQLite in the run directory. ``journal:PATH``
            selects Optuna's journal file storage.
        resume: continue the study already in ``run_dir``.
        listeners: event listeners (progress display, TensorBoard, ...).
        fixed_lambda: run a single trial with this λ instead of tuning.
    """

    def __init__(self, config: Config, run_dir: Path, storage: Optional[str] = None, resume: bool = False,
                 listeners: Sequence[Callable] = (), fixed_lambda: Optional[float] = None,
                 argv: Optional[List[str]] = None):
        self.config, self.run_dir = config, Path(run_dir)
        self.layout = RunDir(self.run_dir)
        self.fixed_lambda = fixed_lambda
        self.storage_url = storage or f"sqlite:///{(self.run_dir / rundir.STUDY_DB).resolve()}"
        self.shared = storage is not None  # a storage several run directories (machines) may join
        self.resume = resume
        self.argv = argv
        from ..methods import get_method

        self.method = get_method(config.method)  # how each trial is chosen and run (`jointopt methods`)
        self.method.check(config, fixed_lambda)
        from .preflight import check_lambda

        check_lambda(fixed_lambda)
        self.device = resolve_device(config.device)  # before anything is written: a wrong device leaves no folder
        self._dataset = None
        self._prepare_dir()
        self.bus = EventBus([rundir.MetricsWriter(self.run_dir), rundir.AllocationWriter(self.run_dir),
                             rundir.LogWriter(self.run_dir), *listeners])
        self.cost_names = cost_names(config)

    # -- run directory ----------------------------------------------------------------------------
    def _prepare_dir(self) -> None:
        """Check the inputs, then make or join the run directory (:func:`jointopt.tune.opening.open_run_dir`)."""
        from .opening import open_run_dir

        def preflight():  # the data set loads, the model converts, every cost model passes its checks
            from .preflight import preflight as check

            self._dataset = load_dataset(self.config)
            check(self.config, self._dataset)

        opened = open_run_dir(self.layout, self.config, resume=self.resume, shared=self.shared,
                              storage_url=self.storage_url, argv=self.argv, preflight=preflight)
        self.resume, self.live = opened.resume, opened.live

    # -- optuna -----------------------------------------------------------------------------------
    def _storage(self):
        """The Optuna storage, opened once per study object (the study's trials are reached through it
        by their number: :meth:`_trial_id`)."""
        if getattr(self, "_opened_storage", None) is None:
            from .storage import connect

            self._opened_storage = connect(self.storage_url)  # postgresql:// gets the installed driver
        return self._opened_storage

    def _set_user_attr(self, study, number: int, key: str, value) -> None:
        """Set a user attribute of trial ``number`` through the storage this study opened (Optuna's
        public storage API; the trial may have been started by another process)."""
        storage = self._storage()
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(study.study_name), number)
        storage.set_trial_user_attr(trial_id, key, value)

    def _study(self):
        import optuna

        from .sampler import make_sampler
        from .storage import open_study

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if getattr(self, "sampler", None) is None:
            self.sampler = make_sampler(self.config)
        return open_study(self._storage(), self.config, self.sampler)

    def _recover_stale(self, study) -> None:
        """Trials left RUNNING by a killed worker on this host: a trial whose ``result.json`` (and frozen
        network) is complete was killed after it finished and before the study heard of it — it is told
        to the study as COMPLETE with its values, not run again; any other is marked failed and its
        parameters queued again. Trials that failed without diverging (interrupted) and were never
        retried: queue them again too."""
        from optuna.trial import TrialState

        for t in stale_trials(study):
            result = self.layout.complete_result(t.number)
            if result is not None:
                self._set_user_attr(study, t.number, "result", result.summary_json())
                study.tell(t.number, self._values(result))
                self.bus.emit("warning", t.number, message=f"trial {t.number} had finished when its worker stopped; "
                                                           "its result is recorded as it was, not run again")
                continue
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
        for number, params in interrupted_trials(study):  # Ctrl-C, a full disk, a bad checkpoint: never lost
            study.enqueue_trial(params, user_attrs={"retry_of": number})

    # -- shared pieces: warm-up and baselines -----------------------------------------------------
    def warmup(self, dataset) -> torch.nn.Module:
        key = warmup_key(self.config)
        path = self.run_dir / "warmup" / f"{key}.pt"
        with file_lock(self.run_dir / "warmup" / f"{key}.lock"):
            torch.manual_seed(self.config.seed)  # the initial weights depend on the seed only
            model = build_model(self.config, dataset.input_shape, dataset.num_classes)
            if path.exists():
                saved = load_checkpoint(path)
                model.load_state_dict(saved["state"])
                self.bus.emit("warmup_cached", data_key=key, val_acc=saved["val_acc"])
                self.warmup_acc = saved["val_acc"]
                return model.to(self.device)
            from ..train.amp import autocast_forward

            with autocast_forward(model, self.device, enabled=self.config.amp):
                model, val_acc = train_float(model, dataset, self.config, self.bus, self.device, self.config.seed)
            save_checkpoint(path, {"state": model.state_dict(), "val_acc": val_acc, "key": key})
            rundir.write_json(path.with_suffix(".json"), {"key": key, "val_acc": val_acc,
                                                          "model": self.config.model.name})
            self.warmup_acc = val_acc
            return model

    def baselines(self, dataset, warm) -> Dict[str, BaselineResult]:
        with file_lock(self.run_dir / "baselines.lock"):
            saved = self.layout.baselines()
            if saved:
                return saved
            out: Dict[str, BaselineResult] = {}
            cfg = self.config
            acc_val, _ = evaluate(warm, dataset, "val", cfg.data.eval_batch_size, self.device)
            acc_test, _ = evaluate(warm, dataset, "test", cfg.data.eval_batch_size, self.device)
            out["float"] = BaselineResult("float", acc_val, acc_test)
            self._announce_baseline(out["float"])
            for bits in cfg.tuner.baselines:
                out[f"w{bits}"] = self._uniform(dataset, warm, bits)
                self._announce_baseline(out[f"w{bits}"])
            self.layout.write_baselines(out)
            return out

    def _announce_baseline(self, baseline: BaselineResult) -> None:
        fields = {k: v for k, v in baseline.to_json().items() if k != "version"}
        self.bus.emit("baseline", name=baseline.name, result=baseline, **fields)

    def _uniform(self, dataset, warm, bits: int) -> BaselineResult:
        """A uniform-width network trained with the same budget as a trial (search + fine-tune epochs)."""
        from ..graph import convert

        cfg = self.config
        budget = cfg.override({"finetune.epochs": cfg.search.epochs + cfg.finetune.epochs})
        from ..train.amp import runner_class

        runner = runner_class(cfg)(budget, dataset, self.bus, self.device, trial=None, trial_dir=None,
                                   baseline=f"w{bits}")
        space = SearchSpace(weight_bits=(bits,), act_bits=(max(cfg.space.act_bits),))
        net = convert(copy.deepcopy(warm).eval(), runner.example_batch(), space).eval().set_mode("hard")
        runner.bind_costs(net)
        frozen = runner.finetune(net.freeze(), warm, cfg.seed)
        val_acc, _ = evaluate(frozen, dataset, "val", cfg.data.eval_batch_size, self.device)
        test_acc, _ = evaluate(frozen, dataset, "test", cfg.data.eval_batch_size, self.device)
        described = describe_frozen(frozen, net, runner.cost_models, cfg.cost.target)
        return BaselineResult(f"w{bits}", val_acc, test_acc, described["costs"], bits)

    # -- the study --------------------------------------------------------------------------------
    def run(self) -> StudyResult:
        """Run the study: the warm-up and the baselines (once per run directory), then trials until
        ``tuner.trials`` of them are complete (with other workers sharing the storage, together),
        then the front. Returns the :class:`~jointopt.results.StudyResult` that ``front.json`` holds.

        Raises:
            DivergedError: every trial of the study failed (the reason of the first is named).
        """
        try:
            return self._run()
        except BaseException:
            self.bus.close()  # interrupted or failed: the listeners still finish their files (finish() closes otherwise)
            raise
        finally:
            self.live.release()  # the study is no longer being run by this process

    def _run(self) -> StudyResult:
        from optuna.trial import TrialState

        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        dataset = self._dataset if self._dataset is not None else load_dataset(cfg)
        self._dataset = None  # the study holds it from here on
        from ..train.cuda import prepare

        dataset = prepare(dataset, self.device)  # on CUDA: resident on the GPU once, cuDNN autotuned
        self.input_shape = tuple(dataset.input_shape)
        rundir.write_json(self.run_dir / rundir.DATASET, {"name": dataset.name, "input_shape": list(dataset.input_shape),
                                                      "num_classes": dataset.num_classes,
                                                      "class_names": list(dataset.class_names),
                                                      "substitute": dataset.substitute,
                                                      # the preprocessing every export records (normalisation in raw units)
                                                      "mean": dataset.mean.tolist(), "std": dataset.std.tolist(),
                                                      "raw_dtype": str(dataset.train.x.dtype).replace("torch.", ""),
                                                      "raw_range": [float(dataset.train.x.min()), float(dataset.train.x.max())]
                                                      if len(dataset.train) else None})
        study = self._study()
        from .storage import check_study_config

        check_study_config(study, cfg)  # a worker with another config is refused, the differing keys named
        self.bus.emit("study_start", config=cfg.to_dict(), run_dir=str(self.run_dir), target=cfg.cost.target,
                      trials=cfg.tuner.trials, storage=self.storage_url)
        if self.resume:
            self._recover_stale(study)
        warm = self.warmup(dataset)
        baselines = self.baselines(dataset, warm)
        self._plan_targets(dataset, warm, baselines)
        if self.fixed_lambda is not None and not study.trials:
            study.enqueue_trial({"lambda": self.fixed_lambda})
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        target_trials = 1 if self.fixed_lambda is not None else cfg.tuner.trials
        if done < target_trials:
            quiet_optuna_failures()
            self._optimize(study, dataset, warm, target_trials)
        summary = self.finish(study, baselines)
        if not summary.results and summary.failed:
            raise every_trial_failed(summary.failed)
        return summary

    def _optimize(self, study, dataset, warm, target: int) -> None:
        """Ask, run and tell trials until ``target`` of the study's trials are complete (at most
        ``target`` trials in this process, as ``study.optimize(n_trials=target)`` would).

        A trial's result is committed to the study (COMPLETE, with its values) before anything
        announces it, so a worker killed after its ``trial N done`` line never leaves a finished trial
        RUNNING. A trial that diverged is told FAIL (its reason is recorded) and the study goes on;
        any other exception (Ctrl-C, a full disk) tells it FAIL and propagates — ``--resume`` retries it.
        """
        from optuna.trial import TrialState

        for _ in range(target):
            with file_lock(self.run_dir / rundir.ASK_LOCK):  # workers of this run directory ask one at a time
                if claimed_trials(study) >= target:
                    return
                trial = study.ask()
            try:
                result = self._run_trial(study, trial, dataset, warm)
            except DivergedError:
                study.tell(trial, state=TrialState.FAIL)
                continue
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            study.tell(trial, self._values(result))
            fault_point("result_committed", trial.number)
            self.bus.emit("trial_end", trial.number, result=result)

    def _values(self, result: TrialResult) -> Tuple[float, float]:
        """The objectives Optuna records: validation accuracy (maximised), target cost (minimised)."""
        return result.val_acc, result.cost(self.config.cost.target)

    def _plan_targets(self, dataset, warm, baselines) -> None:
        """Tell an adaptive sampler what the uniform networks reach and what the cost is relative to."""
        from .plan import Targets

        if not hasattr(self.sampler, "set_targets"):
            return
        from ..graph import convert

        runner = TrialRunner(self.config, dataset, self.bus, self.device, trial=0, trial_dir=None)
        space = self.config.space.build()
        net = convert(copy.deepcopy(warm).eval(), runner.example_batch(), space)
        reference = float(net.reference_cost(runner.cost_models[self.config.cost.target]))
        best = max(b["val_acc"] for b in baselines.values())
        one_sample = 100.0 / max(1, len(dataset.val))
        worst = min((b["val_acc"] for name, b in baselines.items() if name != "float"), default=None)  # uniform nets
        self.sampler.set_targets(reference, Targets(best, 100.0 / dataset.num_classes, max(0.25, 1.01 * one_sample),
                                                    worst_uniform_acc=worst))

    def _run_trial(self, study, trial, dataset, warm) -> TrialResult:
        """Run Optuna ``trial`` (asked, RUNNING) to its result, written to ``trials/<n>/``."""
        cfg = self.config
        params = self.method.suggest(trial, self)  # the joint search: λ (and λ2, T decay) from the sampler
        reason = getattr(self.sampler, "reasons", {}).get(trial.number)
        index = plan_index(study.get_trials(deepcopy=False), trial.number)  # a retry keeps its place in the plan: λ and seed
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("plan_index", index)
        tdir = self.layout.trial_dir(trial.number)
        tdir.mkdir(parents=True, exist_ok=True)
        self.layout.trial_file(trial.number, rundir.METRICS).unlink(missing_ok=True)
        self.bus.emit("trial_start", trial.number, params=dict(trial.params), reason=reason)
        from ..train.amp import runner_class

        runner = runner_class(cfg)(cfg, dataset, self.bus, self.device, trial.number, tdir,  # amp: bf16 autocast
                                   seed_index=index)
        trial.set_user_attr("seed", runner.seed)
        retry_of = trial.user_attrs.get("retry_of")
        previous = self.layout.trial_file(retry_of, CHECKPOINT) if retry_of is not None else None
        if previous is not None and previous.exists():  # continue the killed trial from its last epoch
            runner.resume_state = readable_checkpoint(previous, self.bus, trial.number)
        if self.method.stops_early and cfg.tuner.early_stop and self.fixed_lambda is None:
            runner.stop_rule = self._stop_rule(study, dataset)
        if runner.resume_state is not None:
            trial.set_user_attr("resumed_from", {"trial": retry_of, "phase": runner.resume_state["phase"],
                                                 "epoch": runner.resume_state["epoch"]})
        try:
            result = self.method.run(runner, warm, params)
        except DivergedError as exc:  # failed with its reason (Optuna, failure.json); the study goes on
            record_failure(self.bus, trial, tdir, exc)
            raise
        collapsed = collapse_reason(result.val_acc, getattr(self, "warmup_acc", None), dataset.num_classes,
                                    len(dataset.val))
        result = result.replace(method=self.method.name, warnings=tuple(runner.warnings),
                                collapsed=collapsed,  # complete (the λ plan learns from it) but not a front point
                                stopped_early=runner.stopped,  # the same
                                input_shape=tuple(self.input_shape))
        save_checkpoint(self.layout.trial_file(trial.number, rundir.SEARCHABLE), runner.searchable.state_dict())
        save_checkpoint(self.layout.trial_file(trial.number, rundir.FROZEN), runner.frozen.state_dict())
        self.layout.write_result(result)
        fault_point("result_written", trial.number)
        self.layout.trial_file(trial.number, CHECKPOINT).unlink(missing_ok=True)  # the final state is kept
        if previous is not None:  # and the interrupted trial it retried is done with too
            previous.unlink(missing_ok=True)
        trial.set_user_attr("result", result.summary_json())  # the full record is result.json
        if runner.trajectory:  # what later trials are judged against (early stop), on every machine
            trial.set_user_attr(TRAJECTORY, [None if row is None else list(row) for row in runner.trajectory])
        return result

    def _stop_rule(self, study, dataset) -> StopRule:
        """The early-stop rule of the next trial: against every trial completed so far."""
        return StopRule(after=self.config.tuner.early_stop_after, chance=100.0 / max(1, dataset.num_classes),
                        warmup_acc=getattr(self, "warmup_acc", None), val_samples=len(dataset.val),
                        others=completed_trajectories(study.get_trials(deepcopy=False)))

    def results(self, study=None) -> List[TrialResult]:
        """Every completed trial's result: its ``trials/<n>/result.json`` where this run directory has it
        (the full record), else the summary the trial stored in the study (a worker on another machine,
        or a study database copied without its run directory)."""
        from optuna.trial import TrialState

        from ..results import ResultError

        study = study or self._study()
        out = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            try:
                out.append(self.layout.result(t.number))
                continue
            except rundir.RunDirError:
                pass
            if "result" in t.user_attrs:
                try:
                    out.append(TrialResult.from_json(t.user_attrs["result"]))
                except ResultError:
                    continue
        return out

    SUMMARY_KEYS = SUMMARY_FIELDS + ("version",)  # what a trial stores in the study (user attribute ``result``)

    @classmethod
    def result_summary(cls, result) -> dict:
        """What a trial stores in the study (a few hundred bytes): enough for the front and its table.
        The per-layer allocation and the rest stay in ``result.json``."""
        result = result if isinstance(result, TrialResult) else TrialResult.from_json(result)
        return result.summary_json()

    def gather(self) -> StudyResult:
        """The front of every trial the storage holds, written to this run directory, without running any:
        what a launcher does once its workers are done (``jointopt search --workers``)."""
        return self.finish(self._study(), self.layout.baselines())

    def finish(self, study, baselines) -> StudyResult:
        target = self.config.cost.target
        results = sorted(self.results(study), key=lambda r: r.trial)
        front = pareto_front([r for r in results if r.on_front], target)
        atomic_write_text(self.run_dir / rundir.PARETO_CSV, front_csv(front, target))
        failing = self.bus.failed_listeners()
        errors = tuple(f"{name} failed on {count} event(s)" for name, count in failing.items())
        if errors:  # a listener that failed is never silent: the log and front.json say so
            self.bus.emit("warning", message="event listeners failed: " + "; ".join(errors) +
                          f" (first: {self.bus.errors[0]})")
        baselines = {name: b if isinstance(b, BaselineResult) else BaselineResult.from_json(name, b)
                     for name, b in (baselines or {}).items()}
        summary = StudyResult(target, tuple(front), tuple(results), baselines, tuple(failed_trials(study)), errors)
        self.layout.write_front(summary)
        self.table = front_table(front, target, baselines)
        self.bus.emit("study_end", front=list(front), results=list(results), baselines=baselines, target=target)
        self.bus.close()
        return summary


def search(config: Config | dict | str | Path | None = None, out: Optional[str | Path] = None, *,
           progress: bool = True, **kwargs) -> StudyResult:
    """Run a whole study, as ``jointopt search`` does.

    Args:
        config: a :class:`Config`, a dict in the layout of the YAML files (see
            :meth:`Config.from_dict`), the path of a YAML file, or None for the built-in quickstart.
        out: the run directory (default ``runs/<date>-<time>``).
        progress: print the study's progress on stderr like the command line (a live line on a
            terminal, a line per finished trial); ``False`` for silence.
        kwargs: passed to :class:`Study` (``storage``, ``resume``, ``listeners``, ``fixed_lambda``).

    Returns:
        The :class:`~jointopt.results.StudyResult`: ``front`` (Pareto-optimal trial results),
        ``results`` (all), ``baselines``, ``failed`` (attributes; ``summary["front"]`` works too).

    Example::

        jointopt.search({"tuner": {"trials": 4}, "search": {"epochs": 10}}, out="runs/small")
    """
    if config is None:
        config = quickstart_config()
    elif isinstance(config, dict):
        config = Config.from_dict(config)
    elif isinstance(config, (str, os.PathLike)):
        config = Config.from_yaml(config)
    elif not isinstance(config, Config):
        raise ConfigError(f"jointopt.search takes a Config, a dict or the path of a YAML file, got "
                          f"{type(config).__name__}; e.g. jointopt.search({{'tuner': {{'trials': 4}}}})")
    if kwargs.get("fixed_lambda") is not None and config.tuner.trials != 1:
        config = config.override({"tuner.trials": 1})  # one trial, and the progress says so
    if progress:
        from ..report import progress_listener  # the display of `jointopt search`; it only listens to events

        kwargs["listeners"] = [progress_listener(), *kwargs.get("listeners", ())]
    run = Path(out) if out is not None else rundir.default_run_dir()
    return Study(config, run, **kwargs).run()
