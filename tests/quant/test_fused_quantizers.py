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

from jointopt.quant import act_levels, init_step, mix_weights, quantize_activation, quantize_weight

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


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), bits=st.sampled_from(WIDTHS), signed=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.float64]), clip_scale=st.sampled_from([1.0, 1e-9, -1.0]))
def test_device_scalars_give_the_host_path_bit_for_bit(seed, bits, signed, dtype, clip_scale):
    """On an accelerator the clip's scalars stay 0-d tensors (no host read per layer); run here on the
    CPU, that path gives exactly the outputs and gradients of the host-float path, tiny and negative
    clips included."""
    from jointopt.quant._acts import _ActQuant

    x0, clip0 = _inputs(seed, signed, dtype)
    clip0 = clip0 * clip_scale
    g = torch.Generator().manual_seed(seed + 2)
    probs0 = torch.softmax(torch.randn(len(bits), generator=g, dtype=torch.float64), 0).to(dtype)
    upstream = torch.randn(x0.shape, generator=g, dtype=torch.float64).to(dtype)
    results = []
    for on_device in (False, True):
        x, clip = x0.clone().requires_grad_(), clip0.clone().requires_grad_()
        probs = probs0.clone().requires_grad_()
        y = _ActQuant.apply(x, clip, probs, bits, signed, on_device)
        y.backward(upstream)
        results.append((y.detach(), x.grad, clip.grad, probs.grad if len(bits) > 1 else None))
    for host, device in zip(*results):
        assert (host is None and device is None) or torch.equal(host, device)



def test_the_device_path_makes_no_tensor_from_host_data_once_warm():
    """On a GPU a tensor made from a Python list or number is a host-to-device copy that waits for the
    stream; the quantizer's constants (each width's largest code) are made once per device, so a
    forward and backward after the first make none (run here on the CPU through the same path)."""
    from torch.overrides import TorchFunctionMode

    from jointopt.quant._acts import _ActQuant

    made = []

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in ("tensor", "as_tensor") and args and \
                    not isinstance(args[0], torch.Tensor):
                made.append(args[0])
            return func(*args, **(kwargs or {}))

    x, clip = torch.randn(2, 3, 4, 4, requires_grad=True), torch.tensor(1.5, requires_grad=True)
    probs = torch.tensor([0.2, 0.3, 0.5], requires_grad=True)
    _ActQuant.apply(x, clip, probs, (2, 4, 8), True, True).sum().backward()  # warm: the constants are made
    with Watch():
        for _ in range(3):
            _ActQuant.apply(x, clip, probs, (2, 4, 8), True, True).sum().backward()
    assert made == []


def test_under_compile_the_clip_stays_a_tensor_on_the_cpu(monkeypatch):
    """torch.compile cannot trace ``float(clip)`` without breaking the graph: while compiling, the CPU
    takes the tensor-scalar path (bit for bit the same numbers, by the test above)."""
    from jointopt.quant import _acts

    seen = []
    real = _acts._ActQuant.apply
    monkeypatch.setattr(_acts._ActQuant, "apply", lambda *a: seen.append(a[-1]) or real(*a))
    x, clip = torch.randn(2, 3, 4, 4), torch.tensor(1.5)
    eager = quantize_activation(x, clip, (2, 4, 8), torch.tensor([0.2, 0.3, 0.5]))
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    compiling = quantize_activation(x, clip, (2, 4, 8), torch.tensor([0.2, 0.3, 0.5]))
    assert seen == [False, True] and torch.equal(eager, compiling)

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
def _lsq_reference(weight, log_step, bits):
    """One width of LSQ written with autograd primitives: grid [-2^(b-1), 2^(b-1) - 1] times a learned step.

    The step gets its gradient through ``round(v) - v`` (detached round) inside the grid and through the
    clamped code outside it, scaled by 1/sqrt(n · Q_P) as in the paper; the weight passes straight
    through inside the grid and gets nothing where it is clipped.
    """
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    n = weight[0].numel()
    shape = (-1,) + (1,) * (weight.dim() - 1)
    g = 1.0 / (n * hi) ** 0.5
    step = log_step.exp()
    step = (step * g + (step - step * g).detach()).reshape(shape)  # value s, gradient scaled by g
    v = weight / step
    inside = ((v >= lo) & (v <= hi)).to(weight.dtype)
    code = _round_ste(v) * inside + v.detach().clamp(lo, hi).round() * (1 - inside)
    return code * step


def reference_mix(weight, theta, bits, keep, log_step):
    """Σ_b theta_b · keep · Q_b(W) through autograd."""
    shape = (-1,) + (1,) * (weight.dim() - 1)
    mixed = theta if keep is None else theta * keep[:, None]
    return sum(mixed[:, i].reshape(shape) * _lsq_reference(weight, log_step[:, i], b) for i, b in enumerate(bits))


@pytest.mark.parametrize("shape", [(6, 4, 3, 3), (5, 1, 3, 3), (7, 9), (4, 3, 5)])
@pytest.mark.parametrize("with_keep", [False, True])
def test_mix_weights_matches_unfused_reference(shape, with_keep):
    g = torch.Generator().manual_seed(sum(shape))
    w0 = torch.randn(*shape, generator=g, dtype=torch.float64)
    theta0 = torch.softmax(torch.randn(shape[0], 3, generator=g, dtype=torch.float64), 1)
    keep0 = torch.rand(shape[0], generator=g, dtype=torch.float64)
    # steps from too small (many weights clipped) to generous, so both gradient branches are exercised
    log0 = torch.stack([init_step(w0, b).log() for b in (2, 4, 8)], 1) + torch.randn(shape[0], 3, generator=g,
                                                                                   dtype=torch.float64) * 0.4
    upstream = torch.randn(*shape, generator=g, dtype=torch.float64)
    results = []
    for fn in ("fused", "reference"):
        w = w0.clone().requires_grad_()
        theta = theta0.clone().requires_grad_()
        keep = keep0.clone().requires_grad_() if with_keep else None
        log_step = log0.clone().requires_grad_()
        if fn == "fused":
            out = mix_weights(w, theta, (2, 4, 8), log_step, keep=keep)
        else:
            out = reference_mix(w, theta, (2, 4, 8), keep, log_step)
        out.backward(upstream)
        results.append((out.detach(), w.grad, theta.grad, keep.grad if keep is not None else None, log_step.grad))
    for got, ref in zip(*results):
        if ref is None:
            assert got is None
        else:
            assert torch.allclose(got, ref, rtol=1e-9, atol=1e-9)
    assert (results[0][4] != 0).all()  # every step of every width learns


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


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_single_width_quantizer_matches_reference_and_its_mixture(bits):
    """quantize_weight (frozen layers) = the LSQ reference = a one-hot mixture (hard mode), values and gradients."""
    g = torch.Generator().manual_seed(bits)
    w0 = torch.randn(5, 3, 3, 3, generator=g, dtype=torch.float64)
    log0 = init_step(w0, bits).log() + torch.randn(5, generator=g, dtype=torch.float64) * 0.3
    upstream = torch.randn(w0.shape, generator=g, dtype=torch.float64)
    grads = []
    for fn in ("frozen", "reference", "mixture"):
        w, log_step = w0.clone().requires_grad_(), log0.clone().requires_grad_()
        if fn == "frozen":
            out = quantize_weight(w, bits, log_step)
        elif fn == "reference":
            out = _lsq_reference(w, log_step, bits)
        else:
            out = mix_weights(w, torch.ones(5, 1, dtype=torch.float64), (bits,), log_step.unsqueeze(1))
        out.backward(upstream)
        grads.append((out.detach(), w.grad, log_step.grad))
    for a, b in zip(grads[0], grads[1]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)
    for a, b in zip(grads[0], grads[2]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)
