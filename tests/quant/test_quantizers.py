"""Quantizers: properties over random inputs (Hypothesis)."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jointopt.quant import init_step, mix_weights, quantize_activation, quantize_weight, weight_codes, weight_range

bits_st = st.sampled_from([2, 3, 4, 8])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), bits=bits_st, channels=st.integers(1, 6), spread=st.floats(0.2, 3.0))
def test_weight_codes_use_the_full_grid_and_equal_the_fake_quantized_weights(seed, bits, channels, spread):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(channels, 3, 2, 2, generator=g) * spread
    log_step = init_step(w, bits).log() + torch.randn(channels, generator=g) * 0.3
    bits_t = torch.full((channels,), bits)
    q = quantize_weight(w, bits_t, log_step)
    codes, step = weight_codes(w, bits_t, log_step)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert weight_range(bits) == (lo, hi)
    assert codes.dtype == torch.int32 and int(codes.min()) >= lo and int(codes.max()) <= hi
    assert torch.equal(codes.float() * step.reshape(-1, 1, 1, 1), q)  # to the bit: what export stores
    inside = ((w / step.reshape(-1, 1, 1, 1)) >= lo - 0.5) & ((w / step.reshape(-1, 1, 1, 1)) <= hi + 0.5)
    assert ((q - w).abs()[inside] <= step.reshape(-1, 1, 1, 1).expand_as(w)[inside] / 2 + 1e-6).all()


def test_two_bit_grid_uses_four_levels_and_beats_the_ternary_grid():
    """Error-minimising steps on a four-level grid: on Gaussian weights far below the max-scaled ternary error."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(32, 16, 3, 3, generator=g)
    log_step = init_step(w, 2).log()
    codes, _ = weight_codes(w, torch.full((32,), 2), log_step)
    assert sorted(torch.unique(codes).tolist()) == [-2, -1, 0, 1]
    rel = lambda q: float(((q - w) ** 2).sum() / (w**2).sum())
    ternary_scale = w.abs().flatten(1).amax(1).reshape(-1, 1, 1, 1)
    ternary = torch.round(w / ternary_scale).clamp(-1, 1) * ternary_scale
    learned = rel(quantize_weight(w, 2, log_step))
    assert learned < 0.5 * rel(ternary), (learned, rel(ternary))
    assert learned < 0.2  # about 0.12 for a Gaussian
    assert rel(quantize_weight(w, 4, init_step(w, 4).log())) < 0.015


def test_init_step_is_within_one_percent_of_the_best_step_on_a_fine_grid():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(4, 50, generator=g)
    for bits in (2, 4, 8):
        best = init_step(w, bits)
        err = lambda s: ((quantize_weight(w, bits, s.log()) - w) ** 2).sum(1)
        base = err(best)
        for ratio in torch.linspace(0.3, 2.0, 40):
            assert (base <= err(best * ratio) * 1.01 + 1e-9).all()  # within 1 % of the best on a fine grid


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_mixture_equals_weighted_sum_and_zero_bits_prune(seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(5, 4, generator=g)
    theta = torch.softmax(torch.randn(5, 3, generator=g), 1) * torch.rand(5, 1, generator=g)
    log_step = torch.stack([init_step(w, b).log() for b in (2, 4, 8)], 1)
    mixed = mix_weights(w, theta, (2, 4, 8), log_step)
    ref = sum(theta[:, i : i + 1] * quantize_weight(w, b, log_step[:, i]) for i, b in enumerate((2, 4, 8)))
    assert torch.allclose(mixed, ref, atol=1e-6)
    assert (quantize_weight(w, torch.tensor([0, 2, 0, 8, 4]))[[0, 2]] == 0).all()


def test_mixture_gradients():
    w = torch.randn(3, 4) * 0.1
    w.requires_grad_()
    theta = torch.full((3, 2), 0.25, requires_grad=True)
    log_step = torch.stack([init_step(w, b).log() for b in (4, 8)], 1)
    mix_weights(w, theta, (4, 8), log_step).sum().backward()
    # straight-through inside the grid, scaled by the mass of the widths whose grid holds the weight
    v4, v8 = (w.detach() / log_step[:, i : i + 1].exp() for i in (0, 1))
    expected = 0.25 * ((v4 >= -8) & (v4 <= 7)).float() + 0.25 * ((v8 >= -128) & (v8 <= 127)).float()
    assert expected.min() < 0.5  # the error-minimising steps clip some weights
    assert torch.allclose(w.grad, expected)
    assert torch.allclose(theta.grad[:, 1], quantize_weight(w.detach(), 8, log_step[:, 1]).sum(1))


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


def fake_quant(x, clip, bits, signed):
    """The activation grid written out: clamp, round to the step clip / top, scale back."""
    top = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    step = clip / top
    return torch.round(x.clamp(-clip if signed else 0.0, clip) / step) * step


@pytest.mark.parametrize("signed", [False, True])
def test_pact_clip_gradient_and_straight_through(signed):
    a = 1.5
    # inside, outside on both sides, and exactly on the clip bounds (inside: clamp leaves them alone)
    x = torch.tensor([-3.0, -1.5, -1.0, -0.2, 0.0, 0.5, 1.2, 1.5, 2.0, 3.0], requires_grad=True)
    upstream = torch.tensor([0.3, -1.1, 0.7, 2.0, -0.4, 1.3, -0.6, 0.9, 1.7, -2.5])  # distinct, so sums tell
    clip = torch.tensor(a, requires_grad=True)
    quantize_activation(x, clip, (8,), signed=signed).backward(upstream)
    lo = -a if signed else 0.0
    inside = (x.detach() >= lo) & (x.detach() <= a)
    # straight-through inside the clip range, zero outside
    assert torch.equal(x.grad, torch.where(inside, upstream, torch.zeros_like(upstream)))
    # PACT: the clip gets the upstream gradient of the elements clipped at +a (minus those clipped at -a)
    expected = upstream[x.detach() > a].sum() - (upstream[x.detach() < -a].sum() if signed else 0.0)
    assert clip.grad.item() == pytest.approx(expected.item(), abs=1e-6)
    # two widths mixed by probabilities: the output is the mixture and each probability gets <grad, q_b(x)>
    probs = torch.tensor([0.3, 0.7], requires_grad=True)
    y = quantize_activation(x.detach(), clip.detach(), (2, 8), probs, signed=signed)
    q2, q8 = fake_quant(x.detach(), a, 2, signed), fake_quant(x.detach(), a, 8, signed)
    assert torch.allclose(y, 0.3 * q2 + 0.7 * q8, atol=1e-6)
    y.backward(upstream)
    assert torch.allclose(probs.grad, torch.stack([(upstream * q2).sum(), (upstream * q8).sum()]), atol=1e-5)


def test_a_frozen_layers_grid_follows_its_bits():
    """FrozenLayer keeps its weight grid between steps; changing the bits (in place or a new tensor)
    or the weight's dtype rebuilds it, so the forward is always quantize_weight at the current bits."""
    from jointopt.nn._op import LayerGeometry
    from jointopt.nn.frozen import FrozenLayer

    torch.manual_seed(0)
    geometry = LayerGeometry("linear", 6, 4)
    layer = FrozenLayer(geometry, torch.randn(4, 6), None, torch.tensor([8, 8, 4, 2]), 8, True, 4.0, (2, 4, 8))
    x = torch.randn(3, 6)
    xq = quantize_activation(x, layer.act_clip.detach(), (8,), None, True)

    def expected():
        return xq @ quantize_weight(layer.weight.detach(), layer.bits, layer.log_step.detach()).t()

    def got():
        with torch.no_grad():
            return layer(x)

    assert torch.allclose(got(), expected(), rtol=0, atol=1e-6)
    grid = layer.grid()
    assert layer.grid() is grid  # kept between steps
    layer.bits[1] = 0  # in place: channel 1 pruned
    assert layer.grid() is not grid and layer.grid().live is not None
    assert torch.equal(got()[:, 1], torch.zeros(3)) and torch.allclose(got(), expected(), rtol=0, atol=1e-6)
    layer.bits = torch.tensor([2, 2, 2, 2])  # a new tensor
    assert layer.grid().live is None and torch.equal(layer.grid().hi.flatten(), torch.ones(4))
    layer.double()
    assert layer.grid().lo.dtype == torch.float64
