"""``jointopt data list | prepare | synth-kws``."""
from __future__ import annotations

from jointopt.cli.main import main


def test_data_list_shows_every_data_set(tmp_path, capsys):
    assert main(["data", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "cifar10", "fashion_mnist", "gsc", "synthetic_kws", "tinyimagenet"):
        assert f"  {name} " in out
    assert str(tmp_path) in out and "bundled" in out


def test_data_prepare_loads_and_summarises(tmp_path, capsys, write_cifar):
    assert main(["data", "prepare", "digits"]) == 0
    assert "digits: train" in capsys.readouterr().out
    write_cifar(tmp_path / "cifar10")
    assert main(["data", "prepare", "cifar10", "--data-dir", str(tmp_path), "--no-download"]) == 0
    assert "cifar10: train 18, val 2, test 4" in capsys.readouterr().out
    assert main(["data", "list", "--root", str(tmp_path)]) == 0
    assert "[prepared]" in capsys.readouterr().out


def test_data_errors_are_one_line_and_exit_1(tmp_path, capsys):
    assert main(["data", "prepare", "cifar", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("jointopt: error: unknown data set 'cifar'; did you mean 'cifar10'?") and err.count("\n") == 1
    assert main(["data", "prepare", "tinyimagenet", "--root", str(tmp_path), "--no-download"]) == 1
    assert "prepare tinyimagenet" in capsys.readouterr().err
