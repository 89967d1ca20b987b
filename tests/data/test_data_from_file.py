"""Data sets defined in a user's file or module are usable by ``file.py:NAME`` and ``module:NAME``
wherever a data-set name is accepted: ``get_dataset``, ``data.name`` in a config, ``jointopt data prepare``."""
import sys

import pytest

from jointopt.cli.main import main
from jointopt.config import Config
from jointopt.data import get_dataset, list_datasets
from jointopt.errors import ConfigError
from jointopt.tune.setup import load_dataset

OWN_DATA = '''
import torch
from jointopt.data import Dataset, register_dataset


@register_dataset("blobs", description="four Gaussian blobs")
def make_blobs(seed=0, val_fraction=0.1):
    g = torch.Generator().manual_seed(1)
    y = torch.arange(80) % 4
    x = (torch.randn(80, 1, 4, 4, generator=g) + y.view(-1, 1, 1, 1)).mul(40).clamp(0, 255).to(torch.uint8)
    return Dataset.from_tensors("blobs", (x[:60], y[:60]), (x[60:], y[60:]), seed=seed, val_fraction=val_fraction)


def stripes(seed=0):
    """Unregistered: named by its function."""
    x = torch.zeros(40, 1, 2, 2, dtype=torch.uint8)
    y = torch.arange(40) % 2
    return Dataset.from_tensors("stripes", (x[:30], y[:30]), (x[30:], y[30:]), seed=seed)
'''


@pytest.fixture
def own_data(tmp_path):
    path = tmp_path / "own_data.py"
    path.write_text(OWN_DATA)
    return path


def test_a_file_names_its_registered_data_set_or_a_factory(own_data):
    blobs = get_dataset(f"{own_data}:blobs")  # the name the file registers (its function is make_blobs)
    assert blobs.name == "blobs" and len(blobs.train) + len(blobs.val) == 60 and len(blobs.test) == 20
    assert "blobs" in list_datasets()  # importing the file registered it
    assert get_dataset(f"{own_data}:make_blobs").name == "blobs"
    assert get_dataset(f"{own_data}:stripes").name == "stripes"  # a factory the file does not register
    assert get_dataset(f"{own_data}:blobs").name == "blobs"  # a second use does not register it twice


def test_a_module_on_the_path_works_too(own_data, monkeypatch):
    monkeypatch.syspath_prepend(str(own_data.parent))
    monkeypatch.delitem(sys.modules, "own_data", raising=False)
    assert get_dataset("own_data:stripes").name == "stripes"


def test_a_config_and_the_command_line_accept_it(own_data, capsys):
    config = Config.from_dict({"data": {"name": f"{own_data}:blobs"}})
    assert load_dataset(config).name == "blobs"
    assert main(["data", "prepare", f"{own_data}:blobs"]) == 0
    assert "blobs: train" in capsys.readouterr().out


def test_mistakes_say_what_to_fix(own_data, capsys):
    with pytest.raises(ConfigError, match="has no factory function 'nope' and registers no data set"):
        get_dataset(f"{own_data}:nope")
    with pytest.raises(ConfigError, match="file 'missing.py' does not exist"):
        get_dataset("missing.py:blobs")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module_xyz'.*run from the folder"):
        get_dataset("no_such_module_xyz:blobs")
    assert main(["data", "prepare", f"{own_data}:nope"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
