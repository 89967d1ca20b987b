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
    """A run stopped after two rows leaves them in gpu.partial.* and no complete table is replaced; a
    complete run writes gpu.* and removes the partial files."""
    monkeypatch.setattr(gpu, "RESULTS", tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Fake GPU")
    (tmp_path / "gpu.md").write_text("a complete table from an earlier run\n")
    rates = iter([200.0, 150.0])  # float AMP off, float AMP on; then the machine is taken back

    def measured(model, mode, amp, args, device):
        rate = next(rates, None)
        if rate is None:
            raise KeyboardInterrupt
        return rate

    monkeypatch.setattr(gpu, "steps_per_second", measured)
    with pytest.raises(KeyboardInterrupt):
        gpu.main(["--models", "resnet8", "--workers", "1"])
    partial = (tmp_path / "gpu.partial.md").read_text()
    assert "stopped before its last rows" in partial and "| resnet8 | float | bf16 | 1 | 150.00 | 1.00x |" in partial
    assert (tmp_path / "gpu.md").read_text() == "a complete table from an earlier run\n"
    rates = iter([200.0, 150.0, 40.0, 45.0])
    assert gpu.main(["--models", "resnet8", "--workers", "1"]) == 0
    table = (tmp_path / "gpu.md").read_text()
    assert "| resnet8 | search | off | 1 | 40.00 | 0.20x |" in table and "| resnet8 | search | bf16 | 1 | 45.00 | 0.30x |" in table
    assert "stopped" not in table and not list(tmp_path.glob("gpu.partial.*"))
