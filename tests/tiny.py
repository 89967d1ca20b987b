"""The tiny study configuration the tune, export and report tests share (seconds per study)."""
import copy

from jointopt.config import Config

# 320 digits, a few steps per phase, memory target with bitops reported
TINY = {
    "seed": 3,
    "data": {"name": "digits", "batch_size": 32, "limit_train": 320},
    "warmup": {"epochs": 2, "max_steps": 6},
    "search": {"epochs": 2, "max_steps": 6, "selector_lr": 0.1},
    "finetune": {"epochs": 1, "max_steps": 4},
    "cost": {"target": "memory", "report": ["bitops"]},
    # every trial runs whole here: early stopping has its own tests (tests/tune/test_early_stop.py)
    "tuner": {"trials": 3, "lambda_min": 0.1, "lambda_max": 20.0, "baselines": [8], "early_stop": False},
}


def tiny_config(**sections) -> Config:
    """TINY with whole keys of sections replaced, e.g. ``tiny_config(tuner={"trials": 2})``."""
    data = copy.deepcopy(TINY)
    for section, values in sections.items():
        data.setdefault(section, {}).update(values) if isinstance(values, dict) else data.update({section: values})
    return Config.from_dict(data)
