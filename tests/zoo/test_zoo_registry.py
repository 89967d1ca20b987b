"""register_model, create_model by name / module:factory / file.py:factory / instance, errors."""
from __future__ import annotations

import sys
import textwrap

import pytest
from torch import nn

from jointopt.errors import ConfigError, UnknownNameError
from jointopt.zoo import create_model, list_models, model_info, register_model


def test_register_model_as_bare_decorator_reads_defaults():
    @register_model
    def zoo_test_mlp(num_classes: int = 3, input_shape=(1, 4, 4)):
        """A two-layer perceptron."""
        return nn.Sequential(nn.Flatten(), nn.Linear(16, num_classes))

    info = model_info("zoo_test_mlp")
    assert info.input_shape == (1, 4, 4) and info.num_classes == 3 and info.description == "A two-layer perceptron."
    assert "zoo_test_mlp" in list_models("zoo_test_*")
    assert create_model("zoo_test_mlp", num_classes=5)[1].out_features == 5


def test_register_model_with_options_and_as_a_call():
    @register_model(name="zoo_test_named", input_shape=(3, 2, 2), num_classes=7, dataset="cifar10")
    def build():
        return nn.Linear(12, 7)

    register_model("zoo_test_called", lambda: nn.ReLU())
    assert model_info("zoo_test_named").dataset == "cifar10" and model_info("zoo_test_named").num_classes == 7
    assert isinstance(create_model("zoo_test_called"), nn.ReLU)
    with pytest.raises(ValueError, match="already registered"):
        register_model("zoo_test_called", lambda: nn.ReLU())


def test_create_model_imports_module_factory(tmp_path, monkeypatch):
    (tmp_path / "zoo_user_models.py").write_text(textwrap.dedent("""
        from torch import nn
        def build(width=4):
            return nn.Conv2d(1, width, 3)
        NOT_A_FACTORY = 3
        def wrong():
            return "no module"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert create_model("zoo_user_models:build", width=6).out_channels == 6
    assert create_model(f"{tmp_path / 'zoo_user_models.py'}:build").out_channels == 4
    with pytest.raises(ConfigError, match="no callable 'missing'"):
        create_model("zoo_user_models:missing")
    with pytest.raises(ConfigError, match="no callable 'NOT_A_FACTORY'"):
        create_model("zoo_user_models:NOT_A_FACTORY")
    with pytest.raises(ConfigError, match="returned str"):
        create_model("zoo_user_models:wrong")
    with pytest.raises(ConfigError, match="cannot import module 'zoo_no_such_module'"):
        create_model("zoo_no_such_module:build")
    sys.modules.pop("zoo_user_models", None)


def test_unknown_names_and_arguments_are_helpful():
    with pytest.raises(UnknownNameError, match="'resnet8'"):
        create_model("resnet9")
    with pytest.raises(ConfigError, match="no argument.*depth.*accepts num_classes, input_shape, in_channels"):
        create_model("resnet8", depth=20)


def test_an_instance_is_accepted_where_a_name_is():
    model = nn.Linear(2, 2)
    assert create_model(model) is model
    with pytest.raises(ConfigError):
        create_model(model, num_classes=3)
