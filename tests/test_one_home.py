"""One home per concept (issue 17, item 7): names stay in their house, and each of the shared
concepts — loading a ``module:NAME`` / ``file.py:NAME`` spec, filtering a factory's keywords,
"depthwise", formatting a number, the Pareto front — has one definition that every user calls."""
from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import jointopt
from jointopt.errors import ConfigError, UnknownNameError
from jointopt.registry import accepted_kwargs, load_object

PACKAGE = Path(jointopt.__file__).parent

# Imports of a private name from another subpackage that other work in progress removes; the
# list may only shrink.
PENDING_PRIVATE_IMPORTS: set = set()


def _house(parts) -> str:
    """The subpackage (``cli``, ``cost``, ...) a module path inside jointopt belongs to; the
    modules directly in ``jointopt/`` share one house, ``""``."""
    return parts[0] if parts and (PACKAGE / parts[0]).is_dir() else ""


def _private_imports_across_subpackages():
    """(file, module, name) of every ``from ..x import _name`` that leaves the file's house."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        package = ["jointopt", *parts[:-1]]  # what a one-dot import is relative to
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            source = package[:len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and _house(source[1:]) != _house(parts):
                    found.add(("/".join(parts) + ".py", ".".join(source[1:]), alias.name))
    return found


def test_no_private_name_is_imported_from_another_subpackage():
    found = _private_imports_across_subpackages()
    assert found <= PENDING_PRIVATE_IMPORTS, sorted(found - PENDING_PRIVATE_IMPORTS)


def test_the_scan_sees_a_private_import(tmp_path, monkeypatch):
    """The scan above is not vacuous: it reports the import that the listing used to make."""
    fake = tmp_path / "jointopt"
    (fake / "cli").mkdir(parents=True)
    (fake / "cost").mkdir()
    (fake / "cli" / "_listing.py").write_text("from ..cost import _REGISTRY\nfrom ._options import _fine\n"
                                              "from ..config import _build\nfrom .. import _files\n")
    (fake / "config.py").write_text("from ._sections import _named\nfrom .cost import _base\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert _private_imports_across_subpackages() == {("cli/_listing.py", "cost", "_REGISTRY"),
                                                     ("cli/_listing.py", "config", "_build"),
                                                     ("cli/_listing.py", "", "_files"),
                                                     ("config.py", "cost", "_base")}


def test_registries_are_reached_through_public_functions():
    from jointopt.cost import cost_model_factory
    from jointopt.cost_models.memory import MemoryCost
    from jointopt.zoo import model_factory

    assert model_factory("resnet8") is jointopt.zoo.model_info("resnet8").factory
    assert model_factory("jointopt.zoo._resnet:resnet8") is model_factory("resnet8")
    assert cost_model_factory("memory") is MemoryCost
    with pytest.raises(UnknownNameError, match="'resnet8'"):
        model_factory("resnet9")
    with pytest.raises(UnknownNameError, match="'ne16'"):
        cost_model_factory("nee16")


# -- one loader ------------------------------------------------------------------------------------
USER_FILE = '''
import torch
from torch import nn
from jointopt.cost import CostModel
from jointopt.data import Dataset

RUNS = []
RUNS.append(1)

def build(width=4):
    return nn.Conv2d(1, width, 3)

def blobs(seed=0):
    x = torch.zeros(20, 1, 2, 2, dtype=torch.uint8)
    y = torch.arange(20) % 2
    return Dataset.from_tensors("blobs_one_home", (x, y), (x[:4], y[:4]), seed=seed)

class Count(CostModel):
    name = "count"
    def layer_cost(self, layer):
        return layer.weights_at_bits().sum()

NOT_CALLABLE = 3
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "one_home_user.py"
    path.write_text(USER_FILE)
    return path


def _model(spec):
    return jointopt.create_model(spec)


def _data(spec):
    return jointopt.get_dataset(spec)


def _cost(spec):
    return jointopt.get_cost_model(spec)


CALLERS = {"model": (_model, "build", "no callable"),
           "data set": (_data, "blobs", "no factory function"),
           "cost model": (_cost, "Count", "no attribute")}


@pytest.mark.parametrize("what", sorted(CALLERS))
def test_every_registry_loads_a_file_spec_and_fails_the_same_way(what, user_file, tmp_path):
    call, attr, missing_attr = CALLERS[what]
    assert call(f"{user_file}:{attr}") is not None
    quoted = f"{what} '{tmp_path / 'absent.py'}:{attr}': file '{tmp_path / 'absent.py'}' does not exist"
    with pytest.raises(ConfigError) as error:
        call(f"{tmp_path / 'absent.py'}:{attr}")
    assert str(error.value) == quoted
    with pytest.raises(ConfigError, match=rf"^{what} 'no_such_module_xyz:{attr}': cannot import module "
                                          r"'no_such_module_xyz' .*run from the folder that holds it"):
        call(f"no_such_module_xyz:{attr}")
    with pytest.raises(ConfigError, match=f"^{what} .*{missing_attr} 'nope'"):
        call(f"{user_file}:nope")
    with pytest.raises(ConfigError, match=f"^{what} 'jointopt:': write path/to/file.py:"):
        call("jointopt:")


def test_a_file_is_imported_once_per_process_whoever_names_it(user_file):
    build = load_object(f"{user_file}:build", "model", need_callable=True)
    blobs = load_object(f"{user_file}:blobs", "data set")
    assert sys.modules[build.__module__] is sys.modules[blobs.__module__]
    assert sys.modules[build.__module__].RUNS == [1]  # executed once, not once per caller


def test_a_module_whose_own_import_fails_is_not_blamed_on_the_search_path(tmp_path, monkeypatch):
    (tmp_path / "one_home_broken.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as error:
        load_object("one_home_broken:build", "model")
    assert "No module named 'no_such_dependency_xyz'" in str(error.value)
    assert "run from the folder" not in str(error.value)


def test_a_user_file_that_raises_is_run_again_on_the_next_try(tmp_path):
    path = tmp_path / "one_home_flaky.py"
    path.write_text("raise RuntimeError('first try')\n")
    with pytest.raises(RuntimeError, match="first try"):
        load_object(f"{path}:x", "model")
    path.write_text("x = 5\n")
    assert load_object(f"{path}:x", "model") == 5


def test_the_loader_error_names_close_attributes_and_a_default_attribute(user_file, tmp_path):
    with pytest.raises(ConfigError, match=r"no callable 'NOT_CALLABLE' \(it is a int\)"):
        load_object(f"{user_file}:NOT_CALLABLE", "model", need_callable=True)
    with pytest.raises(ConfigError, match=r"has no attribute 'buidl'; did you mean 'build'\?"):
        load_object(f"{user_file}:buidl", "model")
    plain = tmp_path / "one_home_default.py"
    plain.write_text("class CostModel:\n    pass\n")
    assert load_object(str(plain), "cost model", default_attr="CostModel").__name__ == "CostModel"


# -- one kwargs filter -----------------------------------------------------------------------------
def test_accepted_kwargs():
    def named(a, b=1):
        return a

    def open_ended(a, **rest):
        return a

    def positional(a, /, b):
        return a

    offered = {"a": 1, "b": 2, "c": 3}
    assert accepted_kwargs(named, offered) == {"a": 1, "b": 2}
    assert accepted_kwargs(open_ended, offered) == offered
    assert accepted_kwargs(open_ended, offered, named_only=True) == {"a": 1}
    assert accepted_kwargs(positional, offered) == {"b": 2}  # a positional-only name is no keyword
    assert accepted_kwargs(Opaque(), offered) == offered  # no readable signature: let the call decide
    assert accepted_kwargs(Opaque(), offered, named_only=True) == {}


class Opaque:
    """A callable whose signature cannot be read (as for some builtins)."""

    @property
    def __signature__(self):
        raise ValueError("no signature")

    def __call__(self, **kwargs):
        return kwargs


def test_create_model_and_get_dataset_filter_through_it(user_file):
    with pytest.raises(ConfigError, match=r"no argument\(s\) depth; it accepts width"):
        jointopt.create_model(f"{user_file}:build", depth=3)
    assert jointopt.get_dataset(f"{user_file}:blobs", val_fraction=0.25).name == "blobs_one_home"  # no val_fraction param


# -- one "depthwise" -------------------------------------------------------------------------------
CONVS = {  # (in, out, groups) -> depthwise?
    (8, 8, 8): True,
    (8, 16, 8): False,  # channel multiplier 2: every output reads one input, but input i feeds two outputs
    (8, 8, 4): False,
    (8, 8, 1): False,
    (1, 1, 1): False,
}


@pytest.mark.parametrize("shape", sorted(CONVS))
def test_depthwise_means_the_same_to_geometry_statistics_and_analysis(shape):
    from jointopt.cost import is_depthwise
    from jointopt.nn import LayerGeometry

    in_c, out_c, groups = shape
    expected = CONVS[shape]
    conv = nn.Conv2d(in_c, out_c, 3, padding=1, groups=groups)
    assert is_depthwise(in_c, out_c, groups) is expected
    assert LayerGeometry.of(conv).depthwise is expected
    model = nn.Sequential(nn.Conv2d(2, in_c, 1), nn.ReLU(), conv, nn.ReLU(), nn.Flatten(), nn.Linear(out_c * 16, 3))
    net = jointopt.convert(model.eval(), torch.randn(2, 2, 4, 4))
    stats = {s.name: s for s in net.layer_stats(hard=True)}
    assert stats["2"].depthwise is expected
    assert net.analysis.layers["2"].note.startswith("depthwise") is expected
    x = torch.randn(2, 2, 4, 4)
    hard = net.eval().set_mode("hard")(x)
    frozen_net = net.freeze().eval()
    frozen = {s.name: s for s in jointopt.graph.frozen_layer_stats(frozen_net)}
    assert frozen["2"].depthwise is expected
    assert (frozen["2"].in_channels, frozen["2"].groups) == (in_c, groups)  # nothing pruned: same shape
    assert torch.allclose(frozen_net(x), hard, atol=1e-5)


# -- one number formatter --------------------------------------------------------------------------
@pytest.mark.parametrize("value, digits, text", [
    (0.38123, 4, "0.3812"), (14.2857, 4, "14.29"), (2.21, 4, "2.21"), (1250, 4, "1,250"), (77360, 4, "77,360"),
    (1234567.8, 4, "1,234,568"), (0, 4, "0"), (-0.0, 4, "0"), (-14.2857, 4, "-14.29"), (0.25, 3, "0.25"),
    (123.456, 3, "123"), (999.96, 4, "1,000"), (999.6, 3, "1,000"), (9999.6, 4, "10,000"), (1.5e-5, 4, "0.000015"),
    (float("nan"), 4, "nan"), (float("inf"), 4, "inf"), (float("-inf"), 3, "-inf"),
])
def test_format_number(value, digits, text):
    from jointopt._format import format_number

    assert format_number(value, digits) == text


def test_no_magnitude_prints_in_scientific_notation():
    from jointopt._format import format_number

    for exponent in range(-8, 13):
        for mantissa in (1.0, 9.9996, 5.0):
            for digits in (3, 4):
                text = format_number(mantissa * 10.0 ** exponent, digits)
                assert "e" not in text and float(text.replace(",", "")) == pytest.approx(
                    mantissa * 10.0 ** exponent, rel=10.0 ** (1 - digits)), text


def test_cost_models_and_the_report_format_through_the_same_function(monkeypatch):
    import jointopt._format
    from jointopt.cost_models.memory import MemoryCost
    from jointopt.report import CostUnit

    calls = []
    real = jointopt._format.format_number

    def spy(value, digits=4):
        calls.append(value)
        return real(value, digits)

    monkeypatch.setattr("jointopt.cost._base.format_number", spy)
    monkeypatch.setattr("jointopt.report._units.format_number", spy)
    assert MemoryCost().format(8 * 1250) == "1.25 kB" and CostUnit("memory", "kB", 1e-3 / 8).format(8e3) == "1 kB"
    assert calls == pytest.approx([1.25, 1.0])
    assert MemoryCost().format(float("nan")) == "nan kB"


# -- one Pareto front ------------------------------------------------------------------------------
def _r(trial, acc, cost, test=None):
    return {"trial": trial, "val_acc": acc, "test_acc": acc if test is None else test, "costs": {"memory": cost}}


def test_the_tuner_and_the_report_use_one_front():
    from jointopt._pareto import pareto_front
    from jointopt.report import _pareto as report_figures

    assert jointopt.tune.pareto_front is pareto_front
    assert report_figures.pareto_front is pareto_front


def test_the_report_exports_the_same_front():
    from jointopt._pareto import pareto_front

    assert jointopt.report.pareto_front is pareto_front


def test_the_front_by_hand():
    from jointopt._pareto import pareto_front

    results = [_r(0, 90.0, 100.0), _r(1, 80.0, 50.0), _r(2, 85.0, 120.0),  # 2: dearer and worse than 0
               _r(3, 90.0, 100.0),  # same point as 0: 0 stands for both
               _r(4, 80.0, 60.0),  # as accurate as 1, dearer
               _r(5, 95.0, 300.0, test=70.0), {"trial": 6, "val_acc": 99.0, "test_acc": 99.0, "costs": {"bitops": 1}}]
    assert [r["trial"] for r in pareto_front(results, "memory")] == [1, 0, 5]
    assert [r["trial"] for r in pareto_front(results, "memory", "test_acc")] == [1, 0]  # 5 is worse on test
    assert [r["trial"] for r in pareto_front(results, "bitops")] == [6]  # the others have no bitops cost
    assert pareto_front([], "memory") == []
    assert math.isnan(pareto_front([_r(7, float("nan"), 1.0)], "memory")[0]["val_acc"])  # never raises
