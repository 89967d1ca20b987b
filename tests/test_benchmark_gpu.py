"""benchmarks/gpu.py runs anywhere: without CUDA it measures nothing and says so; its step loop runs on CPU."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import gpu  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the benchmark would measure for real")
def test_without_cuda_nothing_is_measured_or_written(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(gpu, "RESULTS", tmp_path)
    assert gpu.main([]) == 0
    assert "no CUDA device here: nothing measured" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_step_loop_smoke_on_cpu(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(gpu, "RESULTS", tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["--allow-cpu", "--models", "resnet8", "--batch", "2", "--steps", "1", "--warmup", "0", "--workers", "1"]
    assert gpu.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("steps/s") == 4  # float and search, AMP off and on
    assert "results files not written" in out and not list(tmp_path.iterdir())


def test_each_row_is_written_as_it_is_measured(monkeypatch, tmp_path):
    monkeypatch.setattr(gpu, "RESULTS", tmp_path)
    rows = [{"model": "resnet8", "mode": "float", "amp": False, "workers": 1, "steps_per_s": 200.0},
            {"model": "resnet8", "mode": "search", "amp": False, "workers": 1, "steps_per_s": 40.0},
            {"model": "resnet8", "mode": "search", "amp": True, "workers": 1, "steps_per_s": 30.0}]
    record = {"command": "python -m benchmarks gpu", "gpus": ["X"], "torch": "t", "cuda": "c", "host": "h",
              "date": "d", "batch": 128, "steps": 20, "warmup": 5, "rows": rows, "complete": False}
    gpu.write(record)
    md = (tmp_path / "gpu.md").read_text()
    assert "stopped before its last rows" in md
    assert "| resnet8 | search | off | 1 | 40.00 | 0.20x |" in md
    assert "| resnet8 | search | bf16 | 1 | 30.00 | — |" in md  # no float row with AMP was measured
    gpu.write(dict(record, complete=True))
    assert "stopped" not in (tmp_path / "gpu.md").read_text()
