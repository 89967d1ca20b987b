import pytest

from tiny import tiny_config


@pytest.fixture
def tiny_config_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(tiny_config().to_yaml())
    return path


@pytest.fixture(name="tiny_config")
def tiny_config_fixture():
    return tiny_config()
