"""The fused quantizer functions against unfused references built from autograd primitives.

The references spell out the gradients the search relies on: straight-through rounding inside the
clip range, PACT's clip gradient (the upstream gradient of the clipped elements), ``<grad, q_b>``
for each activation-width probability, ``<grad, Q_b(W)>`` for each weight-width probability and
the keep gate's gradient through the mixture.
"""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jointopt.quant import act_levels, mix_weights, quantize_activation

WIDTHS = [(8,), (2,), (4,), (2, 4, 8), (4, 8)]


def _round_ste(x):
    """Rounding whose gradient is the identity, written independently of the library's version."""
    return x + (torch.round(x) - x).detach()


def _clip_ste(x, lo, hi):
    """clamp with PACT's gradients: x passes inside [lo, hi] (inclusive), the bounds get the rest."""
    inside = ((x >= lo) & (x <= hi)).to(x.dtype)
    return x * inside + hi * (x > hi).to(x.dtype) + lo * (x < lo).to(x.dtype)


def reference_activation(x, clip, bits, probs, signed):
    """The mixture written with autograd primitives, one width after another.

    Values come from the detached clip (as the kernel computes them); the input gets the
    straight-through gradient, the clip only PACT's, each probability ``<grad, q_b>``.
    """
    a = clip.detach().float().clamp_min(1e-8)
    lower = -clip if signed else torch.zeros_like(clip)
    clipped = _clip_ste(x, lower, clip)
    values = []
    for b in bits:
        _, top = act_levels(b, signed)
        step = (a / top).to(x.dtype)
        values.append(torch.round(clipped.detach() / step) * step)
    if len(bits) == 1:
        return clipped + (values[0] - clipped).detach()
    mixed = sum(p * v for p, v in zip(probs.detach().unbind(0), values))
    by_probs = sum((p - p.detach()) * v for p, v in zip(probs.unbind(0), values))
    return clipped + (mixed - clipped).detach() + by_probs


def _inputs(seed, signed, dtype, n=257):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g, dtype=torch.float64).to(dtype) * 2
    if not signed:
        x = x.abs()
    clip = torch.tensor(float(torch.rand((), generator=g)) * 2 + 0.2)
    x[:4] = torch.tensor([float(clip), -float(clip), 0.0, float(clip) * 2], dtype=dtype)  # the bounds themselves
    return x, clip


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), bits=st.sampled_from(WIDTHS), signed=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_activation_matches_unfused_reference(seed, bits, signed, dtype):
    x0, clip0 = _inputs(seed, signed, dtype)
    g = torch.Generator().manual_seed(seed + 1)
    probs0 = torch.softmax(torch.randn(len(bits), generator=g, dtype=torch.float64), 0).to(dtype)
    upstream = torch.randn(x0.shape, generator=g, dtype=torch.float64).to(dtype)
    results = []
    for fn in (quantize_activation, reference_activation):
        x = x0.clone().requires_grad_()
        clip = clip0.clone().requires_grad_()
        probs = probs0.clone().requires_grad_() if len(bits) > 1 else None
        y = fn(x, clip, bits, probs, signed)
        y.backward(upstream)
        results.append((y.detach(), x.grad, clip.grad, probs.grad if probs is not None else None))
    (y, gx, gc, gp), (y_ref, gx_ref, gc_ref, gp_ref) = results
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-6, atol=1e-6)
    assert torch.allclose(y, y_ref, **tol)
    assert torch.equal(gx, gx_ref)  # the straight-through mask, exactly (bounds included)
    assert torch.allclose(gc, gc_ref, **tol)
    if gp is not None:
        assert torch.allclose(gp, gp_ref, **tol)


def test_single_width_is_bitwise_the_fused_kernel():
    """With one width the codes are exactly those of PyTorch's fake-quant kernel (what freeze exports)."""
    g = torch.Generator().manual_seed(0)
    for signed in (False, True):
        for bits in (2, 4, 8):
            x = torch.randn(4096, generator=g) * 3
            clip = torch.tensor(1.7)
            lo, hi = act_levels(bits, signed)
            scale = (clip.clamp_min(1e-8) / hi).reshape(1)
            expected = torch.fake_quantize_per_tensor_affine(x, scale, torch.zeros(1, dtype=torch.int32), lo, hi)
            assert torch.equal(quantize_activation(x, clip, (bits,), signed=signed), expected)


def test_probability_gradient_passes_gradcheck():
    """The mixture is linear in the probabilities: gradcheck applies (float64)."""
    x = torch.rand(3, 5, 7, dtype=torch.float64) * 2
    clip = torch.tensor(1.3, dtype=torch.float64)
    probs = torch.softmax(torch.randn(3, dtype=torch.float64), 0).requires_grad_()
    for signed in (False, True):
        assert torch.autograd.gradcheck(lambda p: quantize_activation(x, clip, (2, 4, 8), p, signed), (probs,))


def test_probability_gradient_is_inner_product_with_each_width():
    x = torch.rand(2, 4, 6) * 3
    clip = torch.tensor(2.0)
    probs = torch.tensor([0.2, 0.3, 0.5], requires_grad=True)
    upstream = torch.randn_like(x)
    quantize_activation(x, clip, (2, 4, 8), probs).backward(upstream)
    expected = torch.stack([(upstream * quantize_activation(x, clip, (b,))).sum() for b in (2, 4, 8)])
    assert torch.allclose(probs.grad, expected, rtol=1e-5, atol=1e-5)


def test_activation_keeps_shape_and_memory_format_independence():
    x = torch.rand(2, 3, 4, 5).permute(0, 2, 3, 1)  # non-contiguous input
    clip = torch.tensor(0.8)
    for bits in ((8,), (2, 4, 8)):
        probs = torch.full((len(bits),), 1.0 / len(bits)) if len(bits) > 1 else None
        y = quantize_activation(x, clip, bits, probs)
        assert y.shape == x.shape
        assert torch.allclose(y, quantize_activation(x.contiguous(), clip, bits, probs))


# -- weights -----------------------------------------------------------------------------------------
def reference_mix(weight, theta, bits, keep=None, scale_weight=None):
    """Σ_b theta_b · keep · Q_b(W) with a straight-through round, through autograd."""
    source = (weight if scale_weight is None else scale_weight).detach()
    amax = source.abs().flatten(1).amax(1).clamp_min(1e-8)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    mixed = theta if keep is None else theta * keep[:, None]
    out = 0
    for i, b in enumerate(bits):
        qmax = 2 ** (b - 1) - 1
        scale = (amax / qmax).reshape(shape)
        codes = _round_ste(weight / scale).clamp(-qmax, qmax)
        q = weight + (codes * scale - weight).detach()  # straight-through
        out = out + mixed[:, i].reshape(shape) * q
    return out


@pytest.mark.parametrize("shape", [(6, 4, 3, 3), (5, 1, 3, 3), (7, 9), (4, 3, 5)])
@pytest.mark.parametrize("with_keep", [False, True])
@pytest.mark.parametrize("with_scale_weight", [False, True])
def test_mix_weights_matches_unfused_reference(shape, with_keep, with_scale_weight):
    g = torch.Generator().manual_seed(sum(shape))
    w0 = torch.randn(*shape, generator=g)
    theta0 = torch.softmax(torch.randn(shape[0], 3, generator=g), 1)
    keep0 = torch.rand(shape[0], generator=g)
    scale_weight = None
    if with_scale_weight:
        mask = (torch.rand(shape[1], generator=g) > 0.5).to(w0.dtype)
        scale_weight = w0 * mask.reshape((1, -1) + (1,) * (w0.dim() - 2))
    upstream = torch.randn(*shape, generator=g)
    results = []
    for fn in (mix_weights, reference_mix):
        w = w0.clone().requires_grad_()
        theta = theta0.clone().requires_grad_()
        keep = keep0.clone().requires_grad_() if with_keep else None
        if fn is mix_weights:
            out = mix_weights(w, theta, (2, 4, 8), scale_weight, keep=keep)
        else:
            out = reference_mix(w, theta, (2, 4, 8), keep, scale_weight)
        out.backward(upstream)
        results.append((out.detach(), w.grad, theta.grad, keep.grad if keep is not None else None))
    for got, ref in zip(*results):
        if ref is None:
            assert got is None
        else:
            assert torch.allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_mix_weights_gradcheck_in_theta_and_keep():
    """Linear in theta and in keep: gradcheck applies (float64)."""
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    theta = torch.softmax(torch.randn(4, 3, dtype=torch.float64), 1).requires_grad_()
    keep = torch.rand(4, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t, k: mix_weights(w, t, (2, 4, 8), keep=k), (theta, keep))


def test_keep_inside_equals_keep_outside():
    w = torch.randn(6, 5, requires_grad=True)
    theta = torch.softmax(torch.randn(6, 2), 1).requires_grad_()
    keep = torch.rand(6, requires_grad=True)
    inside = mix_weights(w, theta, (4, 8), keep=keep)
    outside = mix_weights(w, theta * keep[:, None], (4, 8))
    assert torch.equal(inside, outside)
