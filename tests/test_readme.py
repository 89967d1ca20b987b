"""The README's Python API example runs as written, and its two set-up commands are the CI's."""
import re
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
