"""Every YAML in configs/ loads into jointopt.config.Config and names existing models and data sets."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jointopt.config import Config
from jointopt.data import list_datasets
from jointopt.zoo import create_model, list_models

# input shape and classes of the built-in data sets (what their loaders produce)
DATA_SHAPES = {"digits": ((1, 8, 8), 10), "cifar10": ((3, 32, 32), 10), "fashion_mnist": ((1, 28, 28), 10),
               "gsc": ((1, 49, 10), 12), "synthetic_kws": ((1, 49, 10), 12), "tinyimagenet": ((3, 64, 64), 200)}
REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_the_expected_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert {"quickstart", "cifar10_resnet8", "gsc_dscnn", "tinyimagenet_resnet18", "fashion_mnist_resnet8",
            "synthetic_kws_dscnn"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_refers_to_registered_names(path):
    config = Config.from_yaml(path)
    assert config.model.name in list_models()
    assert config.data.name in list_datasets()
    shape, classes = DATA_SHAPES[config.data.name]
    model = create_model(config.model.name, **config.model.kwargs).eval()  # the kwargs are valid
    with torch.no_grad():
        assert model(torch.zeros(1, *shape)).shape == (1, classes)  # the model fits the data
    assert config.to_dict() == Config.from_dict(config.to_dict()).to_dict()


def test_the_packaged_quickstart_is_the_same_file():
    packaged = REPO / "jointopt" / "configs" / "quickstart.yaml"
    assert packaged.read_text() == (REPO / "configs" / "quickstart.yaml").read_text()
    config = Config.from_yaml(packaged)
    assert (config.model.name, config.data.name, config.tuner.trials) == ("digits_cnn", "digits", 8)


def test_paper_protocol_numbers():
    cifar = Config.from_yaml(REPO / "configs" / "cifar10_resnet8.yaml")
    gsc = Config.from_yaml(REPO / "configs" / "gsc_dscnn.yaml")
    tiny = Config.from_yaml(REPO / "configs" / "tinyimagenet_resnet18.yaml")
    assert (cifar.data.batch_size, cifar.warmup.epochs, cifar.search.patience) == (32, 500, 50)
    assert (gsc.data.batch_size, gsc.search.epochs) == (100, 200) and tiny.search.epochs == 50
    for config in (cifar, gsc, tiny):
        assert (config.warmup.lr, config.warmup.weight_decay, config.warmup.lr_decay) == (1e-3, 1e-4, 0.99)
        assert (config.search.selector_lr, config.search.selector_momentum) == (1e-2, 0.9)
        assert config.search.temperature_decay == 0.045 and config.space.weight_bits == [0, 2, 4, 8]
