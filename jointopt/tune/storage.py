"""Optuna storages as users write them, and the check that every worker of a shared study runs its config.

Several workers (processes, machines) share one study through its storage: a journal file on one
machine or a shared file system, or a database (PostgreSQL, MySQL) for a cluster. The first worker
records the study's configuration in the storage; every later worker compares its own with it and
is refused, with the differing keys named, when they differ in anything but the per-worker keys
(device, threads, where the data lie, the trial budget).
"""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any, Dict, List

from ..errors import ConfigError

CONFIG_ATTR = "jointopt_config"  # the study's user attribute holding the config the study was created with
PER_WORKER = ("device", "threads", "data.root", "tuner.trials")  # may differ between workers
POSTGRES_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))  # (module, SQLAlchemy dialect suffix)
INSTALL_HINT = "pip install 'jointopt[postgresql]' (installs psycopg 3)"


def database_url(url: str) -> str:
    """The SQLAlchemy URL for ``url``: ``postgresql://`` (and ``postgres://``) names an installed driver.

    SQLAlchemy maps a bare ``postgresql://`` to psycopg2 (2.0) or psycopg 3 (2.1), whichever its
    version prefers, installed or not; this picks the one that is installed (psycopg 3 first) so the
    URL users write works with either. A URL that names its driver (``postgresql+psycopg2://``) is
    kept as written.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url
    for module, dialect in POSTGRES_DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{dialect}://{rest}"
    raise ConfigError(f"--storage {_hide_password(url)!r} needs a PostgreSQL driver and none is installed; "
                      f"{INSTALL_HINT}, or name an installed one as postgresql+DRIVER://...")


def open_storage(url: str):
    """An Optuna storage for ``url``: ``journal:PATH`` (journal file), ``sqlite:///...``, or a database URL."""
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url[len("journal:"):]))
    if url.startswith("sqlite"):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.RDBStorage(database_url(url))


def flatten(data: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"search": {"epochs": 4}}`` → ``{"search.epochs": 4}`` (lists are values)."""
    out: Dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_differences(ours: Dict[str, Any], theirs: Dict[str, Any], ignore=PER_WORKER) -> List[str]:
    """The dotted keys whose values differ between two config dicts, per-worker keys left out."""
    a, b = flatten(_plain(ours)), flatten(_plain(theirs))
    return sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k, _MISSING) != b.get(k, _MISSING))


def check_study_config(study, config) -> None:
    """Record ``config`` in a new study, or refuse to join a study created with another one.

    Raises:
        ConfigError: naming each differing key with the study's value and this worker's.
    """
    ours = _plain(config.to_dict())
    theirs = study.user_attrs.get(CONFIG_ATTR)
    if theirs is None:
        study.set_user_attr(CONFIG_ATTR, ours)
        theirs = study.user_attrs.get(CONFIG_ATTR, ours)  # a worker that raced us may have written first
    differ = config_differences(ours, theirs)
    if differ:
        a, b = flatten(theirs), flatten(ours)
        shown = "; ".join(f"{k}: study {a.get(k, '(unset)')!r}, this worker {b.get(k, '(unset)')!r}" for k in differ[:8])
        more = f" and {len(differ) - 8} more" if len(differ) > 8 else ""
        raise ConfigError(f"this worker's configuration differs from the one study {study.study_name!r} was created "
                          f"with ({shown}{more}); run every worker with the same --config and --set options "
                          f"(only {', '.join(PER_WORKER)} may differ), or use another --storage or tuner.study_name")


def open_study(storage, config, sampler):
    """The study ``tuner.study_name`` in ``storage`` (created if new): accuracy maximised, cost minimised."""
    import optuna

    study = optuna.create_study(study_name=config.tuner.study_name, storage=storage,
                                sampler=sampler, directions=["maximize", "minimize"], load_if_exists=True)
    names = ["val_acc", f"cost_{config.cost.target}"]  # what the Optuna dashboard and `optuna trials` show
    if study.metric_names != names:
        import warnings

        with warnings.catch_warnings():  # set_metric_names is marked experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return study


def refuse_mismatch(url: str, study_name: str, config) -> None:
    """Before a worker writes anything: refuse it if the study in ``url`` was created with another config.

    Also turns a storage that cannot be reached into one line.
    """
    if url.startswith("journal:") and not Path(url[len("journal:"):]).is_file():
        return  # no journal yet: no study to join
    storage = connect(url)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return  # no such study yet: this worker creates it
    theirs = storage.get_study_user_attrs(study_id).get(CONFIG_ATTR)
    if theirs is not None and config_differences(_plain(config.to_dict()), theirs):
        import optuna

        check_study_config(optuna.load_study(study_name=study_name, storage=storage), config)


def connect(url: str, attempts: int = 5):
    """:func:`open_storage`, with a database that cannot be reached reported in one line.

    Workers started together on an empty database race to create its tables; the losers see a
    unique-key violation and try again.
    """
    for attempt in range(attempts):
        try:
            return open_storage(url)
        except ConfigError:
            raise
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in ("sqlalchemy", "psycopg", "psycopg2", "pymysql"):
                raise
            if attempt + 1 < attempts and type(exc).__name__ in ("IntegrityError", "ProgrammingError"):
                time.sleep(0.5 * (attempt + 1))
                continue
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot open the study storage {_hide_password(url)!r}: {reason}") from None


class _Missing:
    def __repr__(self) -> str:
        return "(unset)"


_MISSING = _Missing()


def _plain(data):
    """The JSON form (tuples become lists) so that a config compares equal to its stored copy."""
    return json.loads(json.dumps(data, default=str))


def _hide_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest or ":" not in rest.split("@", 1)[0]:
        return url
    user = rest.split("@", 1)[0].split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{rest.split('@', 1)[1]}"
