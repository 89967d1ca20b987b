"""Option conventions: lists take commas and repetition everywhere, help shows defaults and plain
metavars, modules in the working folder import, JSON output of inspect."""
import argparse
import json
import re
import sys

import pytest

from jointopt.cli._options import ListAction
from jointopt.cli.main import build_parser, main
from jointopt.cli.search import resolve_config
from jointopt.errors import ConfigError


def parse(*argv):
    return build_parser().parse_args(list(argv))


def subparsers(parser=None, prefix=()):
    """Every (command path, parser) of the CLI, nested actions included."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from subparsers(sub, (*prefix, name))


def test_every_multi_value_option_follows_one_convention():
    """An option collecting several values is a ListAction (commas and repetition); only --set is
    repeated-only, since its values may contain commas. (export --format splits its commas itself:
    see test_commas_and_repetition_mix.)"""
    seen = 0
    for path, sub in subparsers():
        for action in sub._actions:
            if isinstance(action, argparse._AppendAction) or action.nargs in ("+", "*") and action.option_strings:
                assert isinstance(action, ListAction) or action.dest == "set" or path == ("export",), \
                    f"{' '.join(path)} {action.option_strings}"
            seen += isinstance(action, ListAction)
    assert seen >= 8


def test_commas_and_repetition_mix(capsys):
    args = parse("inspect", "resnet8", "--exclude", "fc,stem.conv", "--exclude", "stages.2.shortcut",
                 "--weight-bits", "0,4", "--weight-bits", "8", "--cost-model", "mpic,ne16")
    assert args.exclude == ["fc", "stem.conv", "stages.2.shortcut"]
    assert args.weight_bits == [0, 4, 8] and args.act_bits == [8]  # the default stays when not given
    assert args.cost_model == ["mpic", "ne16"]
    assert parse("cost-models", "--models", "resnet8,dscnn", "--models", "digits_cnn").models == \
        ["resnet8", "dscnn", "digits_cnn"]
    assert parse("report", "r", "--compare", "a", "b", "--compare", "c,d", "--label", "x,y", "--label", "z").compare \
        == ["a", "b", "c", "d"]
    assert parse("search", "--cost-model", "bitops,macs", "--cost-model", "ne16").cost_model == ["bitops", "macs", "ne16"]
    from jointopt.export._api import parse_formats

    assert parse_formats(parse("export", "r", "--format", "onnx,c", "--format", "npz").formats) == ("onnx", "npz", "c")
    with pytest.raises(SystemExit):
        parse("inspect", "resnet8", "--weight-bits", "0,four")
    assert "'four' is not a valid int" in capsys.readouterr().err


def test_exclude_with_commas_reaches_the_search_space(capsys):
    assert main(["inspect", "digits_cnn", "--exclude", "fc,conv1.conv"]) == 0
    out = capsys.readouterr().out
    excluded = out.split("excluded layers:")[1].split("\n\n")[0]
    assert "fc: excluded by the user" in excluded and "conv1.conv: excluded by the user" in excluded


def test_inspect_json_holds_what_the_text_shows(capsys):
    assert main(["inspect", "digits_cnn", "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in info["layers"]] == ["conv1.conv", "conv2.conv", "conv3.conv", "fc"]
    assert info["input_shape"] == [1, 8, 8] and info["weight_bits"] == [0, 2, 4, 8]
    assert info["reference_cost"]["memory"]["value"] == 14288 * 8  # digits_cnn: 14,288 weights at 8 bits
    assert info["reference_cost"]["lut"]["value"] is None and "table" in info["reference_cost"]["lut"]["error"]
    fc = next(g for g in info["groups"] if g["name"] == "fc")
    assert fc["prunable"] is False and fc["fixed"]


def test_a_module_in_the_working_folder_imports_like_python_m(tmp_path, monkeypatch, capsys):
    (tmp_path / "mynet_cwd.py").write_text(
        "import torch.nn as nn\n"
        "def build_net():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "mynet_cwd", raising=False)
    assert main(["inspect", "mynet_cwd:build_net", "--input-shape", "3,8,8"]) == 0
    assert "searchable layers (2)" in capsys.readouterr().out


HELP_DEFAULTS = {
    ("data", "synth-kws"): ["--speakers N  synthetic speakers, each says every word once (default 100)",
                            "(default 2)", "--seed N"],
    ("inspect",): ["default: 0,2,4,8", "default: 8"],
    ("search",): ["--threads N", "--lambda X", "--trials N"],
}


def help_text(path):
    with pytest.raises(SystemExit):
        main([*path, "--help"])


@pytest.mark.parametrize("path", [p for p, _ in subparsers()], ids=" ".join)
def test_help_has_no_internal_metavars_and_shows_defaults(path, capsys):
    help_text(path)
    text = capsys.readouterr().out
    parser = dict(subparsers())[path]
    for action in parser._actions:  # argparse shows DEST.upper() when no metavar is given: FIXED_LAMBDA
        if action.option_strings and action.nargs != 0 and action.metavar is None and action.choices is None:
            assert "_" not in action.dest, f"{action.option_strings[0]} shows the metavar {action.dest.upper()}"
    assert "FIXED_LAMBDA" not in text and "OUTPUT_FORMAT" not in text
    for expected in HELP_DEFAULTS.get(path, []):
        assert expected in " ".join(text.split()) or expected in text, expected
    if path in (("data", "list"), ("data", "prepare"), ("data", "synth-kws")):
        assert "examples:" in text and f"jointopt data {path[1]}" in text.split("examples:")[1]
    if path == ("data", "synth-kws"):
        assert re.search(r"--seed N\s+seed of the speakers", text)
    if path == ("search",):
        assert "default from the config: 1 for the quickstart" in " ".join(text.split())


def test_lambda_runs_one_trial_and_says_so():
    base = parse("search", "--lambda", "2.0")
    assert resolve_config(base).tuner.trials == 1
    with pytest.raises(ConfigError, match="--lambda runs one trial.*--trials 5"):
        resolve_config(parse("search", "--lambda", "2.0", "--trials", "5"))
    config = resolve_config(parse("search", "--cost-model", "ne16,mpic"))
    assert config.cost.report[-2:] == ["ne16", "mpic"]
