"""What ``pip install .`` installs: every jointopt package, the built-in cost models as
``jointopt.cost_models`` (no top-level ``cost_models`` in site-packages), entry points that load."""
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import jointopt

ROOT = Path(__file__).resolve().parents[1]


def _setuptools():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_is_listed_and_cost_models_installs_inside_jointopt():
    config = _setuptools()["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "jointopt").rglob("__init__.py")
               if "__pycache__" not in p.parts}
    assert set(config["packages"]) == folders | {"jointopt.cost_models"}
    assert all(name == "jointopt" or name.startswith("jointopt.") for name in config["packages"])
    assert config["package-dir"] == {"jointopt.cost_models": "cost_models"}


def test_entry_points_name_the_installed_classes():
    declared = _setuptools()["project"]["entry-points"]["jointopt.cost_models"]
    from jointopt import cost_models

    assert {k: v for k, v in cost_models.BUILTINS.items()} == declared  # the source-tree fallback agrees
    for name, target in declared.items():
        assert target.startswith("jointopt.cost_models.")
        cls = EntryPoint(name, target, "jointopt.cost_models").load()
        assert cls.__module__ == target.split(":")[0]
        if name == "lut":  # needs a measured table: built from a file, not from its name
            continue
        assert type(jointopt.get_cost_model(name)) is cls  # one class, whichever way it was reached
