"""One tiny real study with the TensorBoard listener attached, shared by the report tests (~15 s)."""
import shutil

import pytest

from tiny import tiny_config

# 2 trials of 3 search epochs on 256 digits; a uniform w8 baseline; memory target, bitops reported
TINY_REPORT = dict(data={"limit_train": 256}, warmup={"epochs": 1, "max_steps": 4},
                   search={"epochs": 3, "max_steps": 3, "selector_lr": 0.5}, finetune={"epochs": 1, "max_steps": 2},
                   tuner={"trials": 2, "lambda_min": 0.5, "sampler": "spread"})


@pytest.fixture(scope="session")
def live_run(tmp_path_factory):
    """A run directory written by a real study with ``tensorboard_listener`` attached (do not modify)."""
    import jointopt
    from jointopt.report import tensorboard_listener

    run = tmp_path_factory.mktemp("report") / "run"
    summary = jointopt.search(tiny_config(**TINY_REPORT), run, listeners=[tensorboard_listener(run)])
    assert len(summary["results"]) == 2
    return run


@pytest.fixture
def run_copy(live_run, tmp_path):
    """A private copy of the live run, for tests that write into it."""
    copy = tmp_path / "run"
    shutil.copytree(live_run, copy)
    return copy
