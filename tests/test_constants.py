"""jointopt._constants: small constants made once per device and shared."""
import torch

from jointopt._constants import constant


def test_made_once_and_shared():
    a = constant((2, 4, 8), torch.float32, "cpu")
    assert constant([2, 4, 8], torch.float32, torch.device("cpu")) is a
    assert constant((2, 4, 8), torch.float64, "cpu") is not a and a.tolist() == [2.0, 4.0, 8.0]


def test_first_made_under_inference_mode_it_still_serves_training():
    """An evaluation under torch.inference_mode may ask first; the search's backward must still be able
    to save the shared constant (an inference tensor could not be)."""
    with torch.inference_mode():
        widths = constant((3.0, 5.0, 7.0), torch.float32, "cpu")
    assert not widths.is_inference()
    x = torch.ones(3, requires_grad=True)
    (x * constant((3.0, 5.0, 7.0), torch.float32, "cpu")).sum().backward()
    assert x.grad.tolist() == [3.0, 5.0, 7.0]
