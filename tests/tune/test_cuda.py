"""On a GPU: a study runs every phase on CUDA, and what it writes reloads, scores and exports on the CPU.

Skipped where no CUDA device is (CI); run on a GPU machine with
``python -m pytest -q tests/tune/test_cuda.py``.
"""
import json

import pytest
import torch

from jointopt.cli.main import main
from jointopt.train.loop import evaluate
from jointopt.tune import load_trial
from jointopt.tune.setup import load_dataset
from jointopt.tune.study import Study

from tests.tiny import tiny_config

DEVICE = "cuda"
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    config = tiny_config(device=DEVICE, tuner={"trials": 2, "lambda_min": 0.1, "lambda_max": 20.0,
                                                "baselines": [8], "early_stop": False})
    run = tmp_path_factory.mktemp("cuda") / "run"
    summary = Study(config, run).run()
    return config, run, summary


def test_every_trial_of_a_cuda_study_completes(cuda_run):
    config, run, summary = cuda_run
    assert not summary.failed
    assert len(summary.results) == 2
    env = json.loads((run / "environment.json").read_text())
    assert env["device"].startswith(DEVICE)


def test_frozen_networks_score_on_the_cpu_what_the_gpu_recorded(cuda_run):
    config, run, summary = cuda_run
    data = load_dataset(config)
    for result in summary.results:
        _, frozen, recorded = load_trial(run, result.trial, device="cpu")
        assert next(frozen.parameters()).device.type == "cpu"
        acc, _ = evaluate(frozen, data, "test", 64, torch.device("cpu"))
        # GPU and CPU convolutions differ in the last bits; at most one test image may flip
        assert abs(acc - recorded.test_acc) <= 100.0 / len(data.test.y) + 1e-9, (result.trial, acc, recorded.test_acc)


def test_a_cuda_trial_exports_and_verifies_in_every_format(cuda_run, tmp_path):
    _, run, summary = cuda_run
    out = tmp_path / "export"
    assert main(["export", str(run), "--trial", str(summary.results[0].trial), "--format", "all",
                 "--out", str(out)]) == 0
    verify = json.loads((out / "verify.json").read_text())
    assert verify["ok"] is True
    assert all(verify[f]["ok"] is True for f in ("torch", "onnx", "npz", "c", "onnx_int8")), verify


def test_a_search_step_does_not_wait_for_the_gpu():
    """No operation of a soft search step (forward, memory cost, backward, optimizer steps) makes the
    host wait for the GPU (``torch.cuda.set_sync_debug_mode`` warns on every synchronising call): the
    quantizers' and cost models' constants are made once per device, the clip stays a 0-d tensor."""
    import sys
    import warnings
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.gpu import make_step

    step = make_step("resnet8", "search", False, 8, "cuda")
    step()  # the first step makes the constants and autotunes the convolutions
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message).lower()]
    assert syncs == [], syncs[:5]
