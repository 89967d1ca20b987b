import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The export tests run small networks: one thread is fastest on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
