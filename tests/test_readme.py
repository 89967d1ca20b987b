"""The README against the tool: its Python API example and its walk-through of every command run as
written, its two set-up commands are the CI's, and the facts it states are what the code does."""
import argparse
import json
import re
import shlex
import shutil
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_python_api_example_runs_and_freezes_to_the_hard_cost():
    section = README[README.index("## Python API"):README.index("### What convert handles")]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    torch.manual_seed(0)
    loader = [(torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,)))]
    scope = {"loader": loader}
    exec(compile(code, "README.md", "exec"), scope)
    import jointopt

    frozen, searchable = scope["frozen"], scope["searchable"]
    assert jointopt.graph.frozen_cost(frozen, "memory") == searchable.cost("memory", hard=True)


def test_the_test_command_is_what_ci_runs():
    commands = re.findall(r"```bash\n(.*?)```", README[README.index("## Set-up"):README.index("## Commands")], re.S)
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci
    assert commands[0].strip().endswith("jointopt search")


# -- the walk-through of every command ---------------------------------------------------------------
# added to every `jointopt search` line: one warm-up, two search and one fine-tune epoch of two steps
# on 96 digits, no uniform baselines, one thread (seconds instead of a minute per study)
TINY_BUDGET = ["--threads", "1", "--set", "data.limit_train=96", "--set", "warmup.epochs=1",
               "--set", "warmup.max_steps=2", "--set", "search.epochs=2", "--set", "search.max_steps=2",
               "--set", "finetune.epochs=1", "--set", "finetune.max_steps=1", "--set", "tuner.baselines=[]"]


def walk_through():
    section = README[README.index("## Every command in one walk-through"):README.index("## The run directory")]
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[0]
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_the_walk_through_covers_every_command():
    from jointopt.cli.main import build_parser

    used = {argv[1] for argv in walk_through()}
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert used == set(commands)
    data = {argv[2] for argv in walk_through() if argv[1] == "data"}
    assert data == {"list", "prepare", "synth-kws"}


def test_the_walk_through_runs_as_written(tmp_path, monkeypatch, capsys):
    from jointopt.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOINTOPT_DATA_DIR", str(tmp_path / "data"))
    outputs, errors = {}, {}
    for argv in walk_through():
        assert argv[0] == "jointopt"
        if argv[1:3] == ["data", "synth-kws"] and shutil.which("espeak-ng") is None:
            continue
        args = argv[1:] + (TINY_BUDGET if argv[1] == "search" else [])
        code = main(args)
        out = capsys.readouterr()
        assert code == 0, f"{' '.join(argv)} failed: {out.err[-500:]}"
        outputs[" ".join(argv[1:])], errors[" ".join(argv[1:])] = out.out, out.err
    assert json.loads(outputs["inspect digits_cnn --exclude fc,conv1.conv --format json"])["excluded"] == \
        {"fc": "excluded by the user", "conv1.conv": "excluded by the user"}
    assert "All checks passed" in outputs["cost-models --check memory --models digits_cnn"]
    assert "Pareto front (" in outputs["search --out runs/tour --trials 3 --resume"]
    assert len(list((tmp_path / "runs/tour/trials").glob("*/result.json"))) == 3
    assert len(list((tmp_path / "runs/one/trials").glob("*/result.json"))) == 1
    assert "2 trials, target memory" in errors["search --out runs/tour --trials 2 --cost-model macs,ne16"]
    resumed = errors["search --out runs/tour --trials 3 --resume"]
    assert "3 trials, 2 already done" in resumed and "done (3/3)" in resumed
    assert "— 1 trial, target memory" in errors["search --out runs/one --lambda 2.0"]
    report = json.loads(outputs["report runs/tour --target ne16 --format json"])
    assert report["target"] == "ne16" and report["trials"] == 3
    verify = json.loads((tmp_path / "runs/tour/trials/0/export/verify.json").read_text())
    assert {"torch", "npz", "onnx"} <= set(verify) and verify["ok"]


# -- documentation that states what the tool does -------------------------------------------------------
def test_quickstart_tensorboard_line_is_what_the_search_prints():
    from jointopt.report import tensorboard_command
    from jointopt.tune import quickstart_config

    line = next(line for line in README.splitlines() if line.strip().startswith("tensorboard: tensorboard"))
    run = line.split("--logdir ")[1].split()[0]
    assert line.split("tensorboard: ", 1)[1] == tensorboard_command(run, quickstart_config().to_dict())


def test_digits_splits_in_the_readme_are_the_loaders():
    import jointopt

    ds = jointopt.get_dataset("digits")
    sizes = f"{len(ds.train):,} / {len(ds.val):,} / {len(ds.test):,}"
    row = next(line for line in README.splitlines() if line.startswith("| `digits` |"))
    assert f"| {sizes} |" in row
    assert f"# {ds.summary().split(';')[0]};" in README
    assert f"validation split has {len(ds.val)} images" in README


def test_onnxruntime_version_in_the_readme_is_the_installed_one():
    import onnxruntime

    installed = ".".join(onnxruntime.__version__.split(".")[:2])
    mentioned = set(re.findall(r"onnxruntime (\d+\.\d+)", README))
    assert mentioned == {installed}


def test_the_cost_model_guide_names_what_the_check_requires(tmp_path, capsys):
    """The guide's first sentence lists the attributes; --check fails, in one line, without any of them."""
    from jointopt.cli.main import main

    section = README[README.index("### Write a cost model"):]
    guide = section.split("\n\n", 2)[1]
    for attr in ("name", "unit", "description", "layer_cost"):
        assert f"`{attr}" in guide, attr
    (tmp_path / "bare.py").write_text(
        "from jointopt import CostModel\n"
        "class Bare(CostModel):\n"
        "    name, unit = 'bare', 'MAC'\n"
        "    def layer_cost(self, layer):\n"
        "        return layer.macs_at_bits().sum()\n")
    assert main(["cost-models", "--check", f"{tmp_path / 'bare.py'}:Bare", "--models", "digits_cnn"]) == 1
    err = capsys.readouterr().err
    assert "'description' to a non-empty string" in err and err.count("\n") == 1
