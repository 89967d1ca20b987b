import pytest

from jointopt.config import Config

TINY = {
    "seed": 3,
    "data": {"name": "digits", "batch_size": 32, "limit_train": 320},
    "warmup": {"epochs": 2, "max_steps": 6},
    "search": {"epochs": 2, "max_steps": 6, "selector_lr": 0.1},
    "finetune": {"epochs": 1, "max_steps": 4},
    "cost": {"target": "memory", "report": ["bitops"]},
    "tuner": {"trials": 3, "lambda_min": 0.1, "lambda_max": 20.0, "baselines": [8]},
}


@pytest.fixture
def tiny_config():
    return Config.from_dict(TINY)


@pytest.fixture
def tiny_config_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(Config.from_dict(TINY).to_yaml())
    return path
