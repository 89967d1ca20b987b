"""Discovery and resolution: entry points of other packages, module:Class, file.py:Class, the CLI."""
import sys
import textwrap

import pytest

import jointopt
from jointopt.cli.main import main
from jointopt.cost import get_cost_model, list_cost_models, refresh, register_cost_model
from jointopt.errors import ConfigError, UnknownNameError

PLUGIN = textwrap.dedent('''
    """A third-party cost model, shipped by the package foo-cost."""
    from jointopt.cost import CostModel


    class FooCost(CostModel):
        name = "foo"
        unit = "pJ"
        description = "energy of the Foo chip: 3 pJ per MAC"

        def layer_cost(self, layer):
            return 3.0 * layer.macs_at_bits().sum()
''')

MINE = textwrap.dedent('''
    from jointopt.cost import CostModel


    class MyCost(CostModel):
        name = "mine"
        unit = "MAC"
        description = "MACs, written by a user in ten lines"
        display_unit = "MMAC"
        display_scale = 1e-6

        def layer_cost(self, layer):
            return layer.macs_at_bits().sum()


    class Wrong(MyCost):
        def layer_cost(self, layer):
            return layer.kept_out * layer.in_channels  # static inputs: wrong once frozen
''')


@pytest.fixture
def plugin_on_path(tmp_path):
    """An installed distribution 'foo-cost' with an entry point, as pip would leave it."""
    (tmp_path / "foo_cost.py").write_text(PLUGIN)
    info = tmp_path / "foo_cost-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: foo-cost\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[jointopt.cost_models]\nfoo = foo_cost:FooCost\n")
    sys.path.insert(0, str(tmp_path))
    refresh()
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("foo_cost", None)
    refresh()


def test_entry_point_of_another_package_is_discovered(plugin_on_path, capsys):
    assert "foo" in list_cost_models()
    model = get_cost_model("foo")
    assert type(model).__name__ == "FooCost" and model.unit == "pJ"
    assert main(["cost-models"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.lstrip().startswith("foo "))
    assert "foo-cost 0.1 (foo_cost:FooCost)" in line and "energy of the Foo chip" in line
    assert "jointopt 0.1.0 (jointopt.cost_models.ne16:Ne16Cost)" in out


def test_refresh_forgets_uninstalled_plugins_and_keeps_runtime_registrations(plugin_on_path):
    class Runtime(jointopt.CostModel):
        name, unit, description = "runtime", "MAC", "registered in code"

        def layer_cost(self, layer):
            return layer.macs_at_bits().sum()

    register_cost_model("runtime_test_model", Runtime, overwrite=True)
    sys.path.remove(str(plugin_on_path))
    refresh()
    names = list_cost_models()
    sys.path.insert(0, str(plugin_on_path))  # the fixture removes it again
    assert "foo" not in names and "runtime_test_model" in names and "ne16" in names


def test_every_builtin_is_registered_through_entry_points():
    from jointopt import cost_models

    assert set(cost_models.BUILTINS) <= set(list_cost_models())
    for name in cost_models.BUILTINS:
        if name != "lut":
            assert get_cost_model(name).name == name


def test_module_class_and_instance_specs():
    assert type(get_cost_model("jointopt.cost_models.mpic:MpicCost")).__name__ == "MpicCost"
    instance = get_cost_model("ne16")
    assert get_cost_model(instance) is instance
    with pytest.raises(ConfigError, match="has no attribute 'Nope'"):
        get_cost_model("jointopt.cost_models.mpic:Nope")


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown cost model 'nee16'; did you mean 'ne16'"):
        get_cost_model("nee16")
    with pytest.raises(UnknownNameError, match="'memory'"):
        get_cost_model("memroy")


def test_file_class_from_the_cli(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text(MINE)
    assert main(["cost-models", "--check", f"{path}:MyCost", "--models", "resnet8,dscnn"]) == 0
    out = capsys.readouterr().out
    assert "checking 'mine'" in out and "All checks passed" in out
    resnet8 = next(line for line in out.splitlines() if line.startswith("resnet8 "))
    assert resnet8.split()[1:3] == ["12.5", "MMAC"]  # reference 12,501,632 MACs in the model's display unit


def test_cli_reports_a_failing_check(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text(MINE)
    assert main(["cost-models", "--check", f"{path}:Wrong", "--models", "resnet8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("jointopt: check failed: cost model 'mine' on resnet8") and "frozen" in err


def test_cli_errors_are_one_line(capsys):
    assert main(["cost-models", "--check", "nee16"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "did you mean 'ne16'" in err
    assert main(["cost-models", "--check", "/nonexistent/x.py:Cls"]) == 1
    assert "does not exist" in capsys.readouterr().err
