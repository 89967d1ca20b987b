"""The command line as a user meets it: help, inspect, and one-line errors."""
import pytest

from jointopt.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in ("search", "export", "report", "inspect", "cost-models", "data"):
        assert name in text


def test_search_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = capsys.readouterr().out
    for flag in ("--target", "--cost-model", "--trials", "--out", "--storage", "--resume", "--device", "--lambda",
                 "--set", "examples:"):
        assert flag in text


def test_inspect_resnet8_shows_groups_and_reference_costs(capsys):
    code, out, _ = run(capsys, "inspect", "resnet8")
    assert code == 0
    assert "residual add" in out and "reaches the network output" in out
    assert "77.36 kB" in out  # MLPerf Tiny ResNet-8: 77,360 weights at 8 bit
    assert "12.5 MMAC" in out or "12.50 MMAC" in out


def test_inspect_grouped_conv_is_reported(capsys, tmp_path):
    (tmp_path / "mynet.py").write_text(
        "import torch.nn as nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=2), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))\n")
    code, out, _ = run(capsys, "inspect", f"{tmp_path / 'mynet.py'}:build", "--input-shape", "3,16,16")
    assert code == 0
    assert "grouped convolution" in out and "bit-width search only" in out


def test_errors_are_one_line_with_exit_code_1(capsys, tmp_path):
    def error(*argv):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "", (code, out)
        assert err.startswith("jointopt: error: ") and err.endswith("\n") and err.count("\n") == 1, err
        assert "Traceback" not in err
        return err

    assert "unknown model 'resnet9'; did you mean 'resnet8'" in error("inspect", "resnet9")
    missing = tmp_path / "nope.yaml"
    assert f"config file '{missing}' does not exist" in error("search", "--config", str(missing),
                                                              "--out", str(tmp_path / "r"))
    err = error("search", "--set", "serch.epochs=3", "--out", str(tmp_path / "r"))
    assert "'serch' is not a config section (did you mean 'search'?)" in err and "serch.epochs=3" in err
    assert "unknown cost model 'memroy'; did you mean 'memory'" in error("search", "--target", "memroy",
                                                                           "--out", str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()  # nothing is created when the input is bad
