"""Quantizers: properties over random inputs (Hypothesis)."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jointopt.quant import mix_weights, quantize_activation, quantize_weight

bits_st = st.sampled_from([2, 3, 4, 8])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), bits=bits_st, channels=st.integers(1, 6))
def test_weight_codes_are_in_range_and_error_bounded(seed, bits, channels):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(channels, 3, 2, 2, generator=g)
    q = quantize_weight(w, bits)
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().flatten(1).amax(1) / qmax
    codes = q / scale.reshape(-1, 1, 1, 1)
    assert torch.allclose(codes, codes.round(), atol=1e-4)
    assert codes.abs().max() <= qmax + 1e-4
    assert ((q - w).abs() <= scale.reshape(-1, 1, 1, 1) / 2 + 1e-6).all()
    assert len(torch.unique(codes.round())) <= 2 * qmax + 1


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_mixture_equals_weighted_sum_and_zero_bits_prune(seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(5, 4, generator=g)
    theta = torch.softmax(torch.randn(5, 3, generator=g), 1) * torch.rand(5, 1, generator=g)
    mixed = mix_weights(w, theta, (2, 4, 8))
    ref = sum(theta[:, i : i + 1] * quantize_weight(w, b) for i, b in enumerate((2, 4, 8)))
    assert torch.allclose(mixed, ref, atol=1e-6)
    assert (quantize_weight(w, torch.tensor([0, 2, 0, 8, 4]))[[0, 2]] == 0).all()


def test_mixture_gradients():
    w = torch.randn(3, 4, requires_grad=True)
    theta = torch.full((3, 2), 0.25, requires_grad=True)
    mix_weights(w, theta, (4, 8)).sum().backward()
    assert torch.allclose(w.grad, torch.full_like(w, 0.5))  # straight-through, scaled by keep mass
    assert torch.allclose(theta.grad[:, 1], quantize_weight(w.detach(), 8).sum(1))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), bits=bits_st, signed=st.booleans(), clip=st.floats(0.1, 5.0))
def test_activation_levels(seed, bits, signed, clip):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, generator=g) * 3
    q = quantize_activation(x, torch.tensor(clip), (bits,), signed=signed)
    levels = (2 ** (bits - 1) - 1) if signed else 2**bits - 1
    scale = clip / levels
    codes = q / scale
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    lo = -levels if signed else 0
    assert codes.min() >= lo - 1e-3 and codes.max() <= levels + 1e-3
    assert quantize_activation(torch.zeros(3), torch.tensor(clip), (bits,), signed=signed).abs().max() == 0


def test_pact_clip_gradient_and_straight_through():
    x = torch.tensor([-1.0, 0.5, 2.0, 3.0], requires_grad=True)
    clip = torch.tensor(1.5, requires_grad=True)
    quantize_activation(x, clip, (8,), signed=False).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert clip.grad.item() == 2.0  # two elements above the clip
    probs = torch.tensor([0.5, 0.5], requires_grad=True)
    quantize_activation(x.detach(), clip.detach(), (2, 8), probs).sum().backward()
    assert probs.grad is not None and probs.grad.shape == (2,)
