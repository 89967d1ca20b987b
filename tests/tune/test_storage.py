"""Shared storages: the URL users write, and a worker with another config refused (no server needed)."""
import importlib.util

import optuna
import pytest

from jointopt.errors import ConfigError
from jointopt.tune import Study
from jointopt.tune.storage import check_study_config, config_differences, database_url


def test_postgresql_url_gets_an_installed_driver(monkeypatch):
    installed = {"psycopg2"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in installed else None)
    assert database_url("postgresql://u:p@db:5432/j") == "postgresql+psycopg2://u:p@db:5432/j"
    assert database_url("postgres://u@db/j") == "postgresql+psycopg2://u@db/j"
    installed.add("psycopg")  # psycopg 3 first
    assert database_url("postgresql://u@db/j") == "postgresql+psycopg://u@db/j"
    assert database_url("postgresql+psycopg2://u@db/j") == "postgresql+psycopg2://u@db/j"  # as written
    assert database_url("mysql://u@db/j") == "mysql://u@db/j"
    installed.clear()
    with pytest.raises(ConfigError, match=r"jointopt\[postgresql\].*") as err:
        database_url("postgresql://u:secret@db/j")
    assert "secret" not in str(err.value)


def test_config_differences_name_dotted_keys(tiny_config):
    other = tiny_config.override(["search.epochs=1", "device=cuda", "threads=4", "tuner.trials=9"])
    assert config_differences(tiny_config.to_dict(), other.to_dict()) == ["search.epochs"]


def test_worker_with_another_config_is_refused_before_writing(tiny_config, tmp_path):
    journal = tmp_path / "journal.log"
    storage = optuna.storages.journal.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.create_study(study_name=tiny_config.tuner.study_name, storage=storage,
                                directions=["maximize", "minimize"])
    check_study_config(study, tiny_config)  # the first worker records its config
    check_study_config(study, tiny_config.override(["threads=2", "tuner.trials=7"]))  # per-worker keys may differ
    other = tiny_config.override(["search.epochs=1", "finetune.lr=0.5"])
    with pytest.raises(ConfigError, match=r"finetune\.lr: study .*search\.epochs: study 2, this worker 1"):
        check_study_config(study, other)
    # through the study: refused before its run directory is made
    with pytest.raises(ConfigError, match=r"search\.epochs"):
        Study(other, tmp_path / "machine-b", storage=f"journal:{journal}", resume=True)
    assert not (tmp_path / "machine-b").exists()
    # the same config joins from a new run directory with --resume (another machine)
    Study(tiny_config, tmp_path / "machine-c", storage=f"journal:{journal}", resume=True)


def test_unreachable_database_is_one_line_before_writing(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match=r"postgresql://u:\*\*\*@127\.0\.0\.1:1/x") as err:
        Study(tiny_config, tmp_path / "run", storage="postgresql://u:secret@127.0.0.1:1/x")  # nothing listens on port 1
    assert "\n" not in str(err.value) and "secret" not in str(err.value)
    assert not (tmp_path / "run").exists()
