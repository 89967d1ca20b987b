"""The study: warm-up once, many trials tuned by Optuna, the Pareto front of frozen networks."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..config import Config
from ..errors import ConfigError, DivergedError
from ..train import EventBus, TrialRunner, evaluate, load_checkpoint, save_checkpoint, train_float
from ..train.phases import cost_names, describe_frozen
from .._files import atomic_write_text, file_lock
from ..space import SearchSpace
from . import rundir
from .failures import (collapse_reason, every_trial_failed, failed_trials, interrupted_trials, quiet_optuna_failures,
                       readable_checkpoint, record_failure)
from .front import front_csv, front_table, pareto_front


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but CUDA is not available here; use --device cpu")
    return torch.device(name)


def load_dataset(config: Config):
    from ..data import get_dataset

    return get_dataset(config.data.name, config.data.root, val_fraction=config.data.val_fraction, seed=config.seed,
                       limit_train=config.data.limit_train)


def build_model(config: Config, input_shape=None, num_classes=None) -> torch.nn.Module:
    """The configured model, sized for the data set when its factory takes ``input_shape``/``num_classes``."""
    import inspect

    from ..zoo import create_model
    from ..zoo._registry import _REGISTRY, _import_factory

    kwargs = dict(config.model.kwargs)
    name = config.model.name
    factory = _REGISTRY.get(name).factory if name in _REGISTRY else _import_factory(name) if ":" in name else None
    try:
        params = inspect.signature(factory).parameters if factory is not None else {}
    except (TypeError, ValueError):
        params = {}
    if input_shape is not None and "input_shape" in params:
        kwargs.setdefault("input_shape", tuple(input_shape))
    if num_classes is not None and "num_classes" in params:
        kwargs.setdefault("num_classes", int(num_classes))
    return create_model(name, **kwargs)


def warmup_key(config: Config) -> str:
    """What determines the warm-up network: model, data, warm-up schedule, seed."""
    data = {k: v for k, v in config.to_dict()["data"].items() if k != "eval_batch_size"}
    blob = json.dumps({"model": config.to_dict()["model"], "data": data, "warmup": config.to_dict()["warmup"],
                       "seed": config.seed, "version": config.version,
                       **({"amp": True} if config.amp else {})}, sort_keys=True)  # keys without amp unchanged
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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
        self.bus = EventBus([rundir.MetricsWriter(self.run_dir), rundir.LogWriter(self.run_dir), *listeners])
        self.cost_names = cost_names(config)

    # -- run directory ----------------------------------------------------------------------------
    def _prepare_dir(self) -> None:
        config_path = self.run_dir / rundir.CONFIG
        exists = config_path.exists()
        if exists and not self.resume:
            raise ConfigError(f"run directory {str(self.run_dir)!r} already holds a study; pass --resume to continue it "
                              "or --out NEW_DIR to start another")
        if self.resume and not exists and not self.shared:  # a shared storage's study is joined from a new folder
            raise ConfigError(f"--resume: {str(self.run_dir)!r} holds no study (no {rundir.CONFIG}); start one with --out")
        if self.shared:  # before anything is written: the database is reachable and its study has our config
            from .storage import refuse_mismatch

            refuse_mismatch(self.storage_url, self.config.tuner.study_name, self.config)
        self._preflight()  # before the folder: a wrong model, data set or cost model leaves nothing to block a rerun
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if exists:
            saved = Config.from_yaml(config_path)
            if saved.to_dict() != self.config.to_dict():
                changed = [k for k, v in self.config.to_dict().items() if saved.to_dict().get(k) != v]
                only_trials = set(changed) <= {"tuner", "device", "threads"} and \
                    {k for k, v in self.config.tuner.__dict__.items() if getattr(saved.tuner, k) != v} <= {"trials"}
                if not only_trials:
                    raise ConfigError(f"--resume: the configuration differs from the one in {str(config_path)!r} "
                                      f"(sections: {', '.join(changed)}); resume without --config/overrides, "
                                      "or start a new run directory")
        atomic_write_text(config_path, self.config.to_yaml())
        env = rundir.environment(self.config, self.argv)
        env_path = self.run_dir / rundir.ENVIRONMENT
        if env_path.exists():
            previous = json.loads(env_path.read_text())
            env["resumed"] = previous.get("resumed", []) + [env["started"]]
            env["started"] = previous.get("started", env["started"])
        rundir.write_json(env_path, env)

    def _preflight(self) -> None:
        """The data set loads, the model converts and every cost model passes its conformance checks on
        the study's own network (:mod:`jointopt.tune.preflight`): seconds, before any training."""
        from .preflight import preflight

        self._dataset = load_dataset(self.config)
        preflight(self.config, self._dataset)

    # -- optuna -----------------------------------------------------------------------------------
    def _storage(self):
        from .storage import connect

        return connect(self.storage_url)  # postgresql:// gets the installed driver

    def _sampler(self):
        import optuna

        seed, kind = self.config.seed, self.config.tuner.sampler
        if kind == "auto":
            kind = "adaptive" if self.config.tuner.lambda_min is None else "spread"
        if kind == "adaptive":
            from .sampler import FrontSampler

            return FrontSampler(seed)
        if kind == "spread":
            from .sampler import SpreadSampler

            return SpreadSampler(seed)
        if kind == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, self.config.tuner.trials // 2)))
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)

    def _study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if getattr(self, "sampler", None) is None:
            self.sampler = self._sampler()
        study = optuna.create_study(study_name=self.config.tuner.study_name, storage=self._storage(),
                                    sampler=self.sampler, directions=["maximize", "minimize"], load_if_exists=True)
        names = ["val_acc", f"cost_{self.config.cost.target}"]  # what the Optuna dashboard and `optuna trials` show
        if study.metric_names != names:
            import warnings

            with warnings.catch_warnings():  # set_metric_names is marked experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(names)
        return study

    def _recover_stale(self, study) -> None:
        """Trials left RUNNING by a killed worker on this host: mark failed and queue their parameters again.
        Trials that failed without diverging (interrupted) and were never retried: queue them again too."""
        from optuna.trial import TrialState

        host = socket.gethostname()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.user_attrs.get("host") != host or _alive(t.user_attrs.get("pid")):
                continue
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
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

    def baselines(self, dataset, warm) -> Dict[str, dict]:
        path = self.run_dir / rundir.BASELINES
        with file_lock(self.run_dir / "baselines.lock"):
            if path.exists():
                return json.loads(path.read_text())
            out: Dict[str, dict] = {}
            cfg = self.config
            acc_val, _ = evaluate(warm, dataset, "val", cfg.data.eval_batch_size, self.device)
            acc_test, _ = evaluate(warm, dataset, "test", cfg.data.eval_batch_size, self.device)
            out["float"] = {"val_acc": acc_val, "test_acc": acc_test, "costs": {}}
            self.bus.emit("baseline", name="float", **out["float"])
            for bits in cfg.tuner.baselines:
                out[f"w{bits}"] = self._uniform(dataset, warm, bits)
                self.bus.emit("baseline", name=f"w{bits}", **out[f"w{bits}"])
            rundir.write_json(path, out)
            return out

    def _uniform(self, dataset, warm, bits: int) -> dict:
        """A uniform-width network trained with the same budget as a trial (search + fine-tune epochs)."""
        from ..graph import convert

        cfg = self.config
        budget = cfg.override([f"finetune.epochs={cfg.search.epochs + cfg.finetune.epochs}",
                               f"finetune.max_steps={cfg.finetune.max_steps if cfg.finetune.max_steps is not None else 'null'}"])
        from ..train.amp import runner_class

        runner = runner_class(cfg)(budget, dataset, self.bus, self.device, trial=-bits, trial_dir=None)
        space = SearchSpace(weight_bits=(bits,), act_bits=(max(cfg.space.act_bits),))
        net = convert(copy.deepcopy(warm).eval(), runner.example_batch(), space).eval().set_mode("hard")
        runner.bind_costs(net)
        frozen = runner.finetune(net.freeze(), warm, cfg.seed)
        val_acc, _ = evaluate(frozen, dataset, "val", cfg.data.eval_batch_size, self.device)
        test_acc, _ = evaluate(frozen, dataset, "test", cfg.data.eval_batch_size, self.device)
        described = describe_frozen(frozen, net, runner.cost_models, cfg.cost.target)
        return {"val_acc": val_acc, "test_acc": test_acc, "costs": described["costs"], "bits": bits}

    # -- the study --------------------------------------------------------------------------------
    def run(self) -> dict:
        from optuna.study import MaxTrialsCallback
        from optuna.trial import TrialState

        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        dataset = self._dataset if self._dataset is not None else load_dataset(cfg)
        self._dataset = None  # the study holds it from here on
        from ..train.cuda import prepare

        dataset = prepare(dataset, self.device)  # on CUDA: resident on the GPU once, cuDNN autotuned
        self.input_shape = tuple(dataset.input_shape)
        rundir.write_json(self.run_dir / "dataset.json", {"name": dataset.name, "input_shape": list(dataset.input_shape),
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
            study.optimize(self._objective(dataset, warm), n_trials=target_trials, catch=(DivergedError,),
                           callbacks=[MaxTrialsCallback(target_trials, states=(TrialState.COMPLETE,))])
        summary = self.finish(study, baselines)
        if not summary["results"] and summary["failed"]:
            raise every_trial_failed(summary["failed"])
        return summary

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

    def _objective(self, dataset, warm):
        cfg = self.config

        def objective(trial) -> tuple:
            params = self.method.suggest(trial, self)  # the joint search: λ (and λ2, T decay) from the sampler
            reason = getattr(self.sampler, "reasons", {}).get(trial.number)
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            tdir = rundir.trial_dir(self.run_dir, trial.number)
            tdir.mkdir(parents=True, exist_ok=True)
            metrics = tdir / "metrics.jsonl"
            if metrics.exists():
                metrics.unlink()
            self.bus.emit("trial_start", trial.number, params=dict(trial.params), reason=reason)
            from ..train.amp import runner_class

            runner = runner_class(cfg)(cfg, dataset, self.bus, self.device, trial.number, tdir)  # amp: bf16 autocast
            retry_of = trial.user_attrs.get("retry_of")
            previous = rundir.trial_dir(self.run_dir, retry_of) / "checkpoint.pt" if retry_of is not None else None
            if previous is not None and previous.exists():  # continue the killed trial from its last epoch
                runner.resume_state = readable_checkpoint(previous, self.bus, trial.number)
            if runner.resume_state is not None:
                trial.set_user_attr("resumed_from", {"trial": retry_of, "phase": runner.resume_state["phase"],
                                                     "epoch": runner.resume_state["epoch"]})
            try:
                result = self.method.run(runner, warm, params)
            except DivergedError as exc:  # failed with its reason (Optuna, failure.json); the study goes on
                record_failure(self.bus, trial, tdir, exc)
                raise
            result["method"] = self.method.name
            if runner.warnings:
                result["warnings"] = list(runner.warnings)
            collapsed = collapse_reason(result["val_acc"], getattr(self, "warmup_acc", None), dataset.num_classes,
                                        len(dataset.val))
            if collapsed:  # complete (the λ plan learns from it) but not a front point
                result["collapsed"] = collapsed
            save_checkpoint(tdir / "searchable.pt", runner.searchable.state_dict())
            save_checkpoint(tdir / "frozen.pt", runner.frozen.state_dict())
            result["input_shape"] = list(self.input_shape)
            rundir.write_json(tdir / "result.json", result)
            (tdir / "checkpoint.pt").unlink(missing_ok=True)  # the trial is complete: the final state is kept
            if previous is not None:  # and the interrupted trial it retried is done with too
                previous.unlink(missing_ok=True)
            trial.set_user_attr("result", self.result_summary(result))  # the full record is result.json
            self.bus.emit("trial_end", trial.number, result=result)
            return result["val_acc"], result["costs"][cfg.cost.target]

        return objective

    def results(self, study=None) -> List[dict]:
        """Every completed trial's result: its ``trials/<n>/result.json`` where this run directory has it
        (the full record), else the summary the trial stored in the study (a worker on another machine,
        or a study database copied without its run directory)."""
        from optuna.trial import TrialState

        study = study or self._study()
        out = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            path = rundir.trial_dir(self.run_dir, t.number) / "result.json"
            try:
                full = json.loads(path.read_text()) if path.is_file() else None
            except (OSError, ValueError):
                full = None
            if isinstance(full, dict) and full.get("trial") == t.number:
                out.append(full)
            elif "result" in t.user_attrs:
                out.append(t.user_attrs["result"])
        return out

    SUMMARY_KEYS = ("trial", "target", "params", "val_acc", "test_acc", "costs", "cost_display", "kept_fraction",
                    "mean_bits", "bits_histogram", "time_s", "method", "collapsed")

    @classmethod
    def result_summary(cls, result: dict) -> dict:
        """What a trial stores in the study (a few hundred bytes): enough for the front and its table.
        The per-layer allocation and the rest stay in ``result.json``."""
        return json.loads(json.dumps({k: result[k] for k in cls.SUMMARY_KEYS if k in result}, default=str))

    def gather(self) -> dict:
        """The front of every trial the storage holds, written to this run directory, without running any:
        what a launcher does once its workers are done (``jointopt search --workers``)."""
        path = self.run_dir / rundir.BASELINES
        baselines = json.loads(path.read_text()) if path.is_file() else {}
        return self.finish(self._study(), baselines)

    def finish(self, study, baselines) -> dict:
        target = self.config.cost.target
        results = sorted(self.results(study), key=lambda r: r["trial"])
        front = pareto_front([r for r in results if not r.get("collapsed")], target)
        atomic_write_text(self.run_dir / rundir.PARETO_CSV, front_csv(front, target))
        summary = {"target": target, "front": front, "results": results, "baselines": baselines,
                   "failed": failed_trials(study)}
        rundir.write_json(self.run_dir / rundir.FRONT_JSON, summary)
        self.table = front_table(front, target, baselines)
        self.bus.emit("study_end", front=front, results=results, baselines=baselines, target=target)
        self.bus.close()
        return summary


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def search(config: Config | dict | str | Path | None = None, out: Optional[str | Path] = None, *,
           progress: bool = True, **kwargs) -> dict:
    """Run a whole study, as ``jointopt search`` does.

    Args:
        config: a :class:`Config`, a dict in the layout of the YAML files (see
            :meth:`Config.from_dict`), the path of a YAML file, or None for the built-in quickstart.
        out: the run directory (default ``runs/<date>-<time>``).
        progress: print the study's progress on stderr like the command line (a live line on a
            terminal, a line per finished trial); ``False`` for silence.
        kwargs: passed to :class:`Study` (``storage``, ``resume``, ``listeners``, ``fixed_lambda``).

    Returns:
        The summary: ``front`` (Pareto-optimal trial results), ``results`` (all), ``baselines``.

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
        config = config.override(["tuner.trials=1"])  # one trial, and the progress says so
    if progress:
        from ..report import progress_listener  # the display of `jointopt search`; it only listens to events

        kwargs["listeners"] = [progress_listener(), *kwargs.get("listeners", ())]
    run = Path(out) if out is not None else rundir.default_run_dir()
    return Study(config, run, **kwargs).run()


def quickstart_config() -> Config:
    path = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
    return Config.from_yaml(path) if path.exists() else Config()
