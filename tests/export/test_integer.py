"""The integer-only network: fixed-point arithmetic, agreement with the fake-quantized frozen network,
what each operation stores, the structure the ram cost model shares, and the memory plan."""
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import jointopt
from jointopt.cost_models.ram import RamCost
from export_cases import frozen_layers, mixed_frozen
from jointopt.errors import ExportError
from jointopt.export._fixed_point import add_multipliers, quantize_multiplier, requantize, round_to_codes
from jointopt.export._memory import peak_live, plan_arena
from jointopt.export.integer import AddOp, LutOp, MaxPoolOp, QuantizeOp, build_program, run_reference
from jointopt.quant import quantize_activation
from nets import TOPOLOGIES

CASES = sorted(TOPOLOGIES) + ["digits_cnn"]


class Extras(nn.Module):
    """Operations the hard topologies do not have: max pool, padded average pool, Hardtanh, clamp,
    a constant multiple, mean with keepdim, a 2x2 adaptive pool and a Linear after a flatten."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.c3 = nn.Conv2d(6, 5, 1)
        self.fc = nn.Linear(5 * 2 * 2 + 5, 3)

    def forward(self, x):
        x = F.hardtanh(self.c1(x), -0.5, 2.0)
        x = self.pool(torch.clamp(self.c2(x), min=0.0) * 0.5)
        x = F.avg_pool2d(self.c3(x), 3, stride=1, padding=1)
        pooled = F.adaptive_avg_pool2d(x, 2).flatten(1)
        return self.fc(torch.cat([pooled, x.mean((2, 3), keepdim=True).flatten(1)], dim=1))


def extras_frozen(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(48, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    net = jointopt.convert(Extras().eval(), x[:8])
    return net.eval().set_mode("hard").freeze().eval(), x


@pytest.fixture(scope="module")
def built():
    """case → (searchable, frozen, batch, program, integer logits): each network built once."""
    before = torch.get_num_threads()  # one thread while building; the process keeps its setting
    torch.set_num_threads(1)
    try:
        out = {}
        for case in CASES:
            net, frozen, x = mixed_frozen(case)
            program = build_program(frozen, x)
            out[case] = (net, frozen, x, program, run_reference(program, x)[0])
        frozen, x = extras_frozen()
        program = build_program(frozen, x)
        out["extras"] = (None, frozen, x, program, run_reference(program, x)[0])
    finally:
        torch.set_num_threads(before)
    return out


# -- fixed point -------------------------------------------------------------------------------------
def test_requantize_rounds_to_nearest_with_ties_up_exactly():
    rng = np.random.default_rng(0)
    values = rng.integers(-2**31 + 1, 2**31 - 1, 400)
    mults = rng.integers(2**30, 2**31, 400)
    shifts = rng.integers(1, 63, 400)
    got = requantize(values, mults, shifts)
    for v, m, r, q in zip(values.tolist(), mults.tolist(), shifts.tolist(), got.tolist()):
        exact = Fraction(v * m, 2**r)
        assert q == (exact + Fraction(1, 2)).__floor__()
    assert requantize(np.array([-3, -1, 1, 3]), 1 << 30, 31).tolist() == [-1, 0, 1, 2]  # ±1.5 → -1, 2; ±0.5 → 0, 1


@pytest.mark.parametrize("factor", [1e-9, 3.7e-5, 0.0123, 0.5, 0.99999999, 1.0, 7.25, 1234.5])
def test_quantize_multiplier_keeps_31_significant_bits(factor):
    m, r = quantize_multiplier(factor)
    assert 2**30 <= m < 2**31 and 1 <= r <= 62
    assert abs(m / 2**r - factor) <= factor * 2**-30


def test_quantize_multiplier_refuses_what_it_cannot_hold():
    for bad in (0.0, -1.0, float("nan"), 2.0**31):
        with pytest.raises(ExportError):
            quantize_multiplier(bad)
    assert quantize_multiplier(1e-30) == (0, 1)  # rounds every int32 to 0


def test_add_multipliers_fit_32_bits_and_are_precise():
    rng = np.random.default_rng(1)
    for fa, fb in 10.0 ** rng.uniform(-4, 4, (200, 2)):
        ma, mb, r = add_multipliers(fa, fb)
        assert 2 * 255 * max(ma, mb) + 2**(r - 1) < 2**31
        assert abs(ma / 2**r - fa) <= max(fa * 2**-19, 2**-(r + 1))
        assert abs(mb / 2**r - fb) <= max(fb * 2**-19, 2**-(r + 1))


def test_input_codes_are_the_first_layer_fake_quantizer_codes(built):
    _, frozen, x, program, _ = built["digits_cnn"]
    layer = frozen_layers(frozen)[0][1]
    op = program.ops[0]
    assert isinstance(op, QuantizeOp)
    codes = round_to_codes(x.numpy(), op.lo_real, op.hi_real, op.inv)
    with torch.no_grad():
        fake = quantize_activation(x, layer.act_clip, (layer.act_bits,), None, layer.act_signed)
    step = np.float32(program.tensors[op.output].scale)
    assert np.array_equal(codes.astype(np.float32) * step, fake.numpy())


# -- what the program stores -----------------------------------------------------------------------
def test_weights_and_biases_are_the_layers_codes(built):
    _, frozen, _, program, _ = built["residual"]
    convs = {op.name: op for op in program.conv_ops()}
    seen_minus_two = False
    for name, layer in frozen_layers(frozen):
        op = convs[name]
        codes, steps = layer.weight_codes()
        assert np.array_equal(op.codes().reshape(codes.shape), codes.numpy())
        assert np.array_equal(op.bits, layer.bits.numpy())
        two = codes.numpy()[layer.bits.numpy() == 2]
        seen_minus_two |= bool((two == -2).any())  # the full two's-complement grid, not {-1, 0, 1}
        s_in = float(program.tensors[op.input].scale)
        if layer.bias is not None:
            want = np.rint(layer.bias.detach().double().numpy() / (s_in * steps.double().numpy()))
            assert np.array_equal(op.bias, want.astype(np.int32))
        for head in op.heads:
            factor = s_in * steps.double().numpy() / program.tensors[head.tensor].scale
            # the output's float32 reciprocal (as the fake quantizer multiplies) is within 2^-24 of 1 / scale
            assert np.allclose(head.mult / 2.0 ** head.shift.astype(np.float64), factor, rtol=2**-23, atol=0)
    assert seen_minus_two


@pytest.mark.parametrize("case", CASES + ["extras"])
def test_integer_reference_agrees_with_the_frozen_network(case, built):
    _, frozen, x, program, logits = built[case]
    with torch.no_grad():
        expected = frozen(x).numpy()
    agreement = (logits.argmax(1) == expected.argmax(1)).mean()
    assert agreement >= 0.99, f"{case}: top-1 agreement {agreement:.3f}"
    assert np.abs(logits - expected).max() <= 0.05 * np.abs(expected).max()


def test_operations_of_the_extras_network(built):
    program = built["extras"][3]
    kinds = [type(op).__name__ for op in program.ops]
    assert {"MaxPoolOp", "AvgPoolOp", "LutOp", "ConcatOp", "ConvOp", "QuantizeOp"} <= set(kinds)
    lut = next(op for op in program.ops if isinstance(op, LutOp))  # x * 0.5 is a table
    assert lut.table.dtype == np.int8 and np.all(np.diff(lut.table.astype(int)) >= 0)


def test_residual_add_rescales_both_inputs(built):
    program = built["residual"][3]
    adds = [op for op in program.ops if isinstance(op, AddOp)]
    assert len(adds) == 2
    for op in adds:
        for head in op.heads:
            out = program.tensors[head.tensor].scale
            for tensor, m in ((op.a, head.mult[0]), (op.b, head.mult_b[0])):
                assert m / 2.0 ** head.shift[0] == pytest.approx(program.tensors[tensor].scale / out, rel=2**-19)


def test_max_pool_reads_the_consumer_scale(built):
    program = built["extras"][3]
    op = next(op for op in program.ops if isinstance(op, MaxPoolOp))
    assert program.tensors[op.input].scale == program.tensors[op.output].scale


class Gate(nn.Module):
    """A product of two tensors (as in squeeze-and-excitation): not in the integer runtime."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return (self.a(x) * torch.sigmoid(self.b(x))).mean((2, 3))


def test_unsupported_operations_are_refused_by_name(tmp_path):
    x = torch.randn(4, 3, 4, 4)
    frozen = jointopt.convert(Gate().eval(), x).eval().set_mode("hard").freeze().eval()
    with pytest.raises(ExportError, match=r"'mul' .*two tensors.*not supported"):
        build_program(frozen, x)
    with pytest.raises(ExportError, match="'mul'"):
        jointopt.export.export(frozen, tmp_path / "c", x, "c")
    result = jointopt.export.export(frozen, tmp_path / "all", x, "all")  # the other formats are still written
    assert "mul" in result.verification["c"]["skipped"] and "c      skipped:" in result.report()
    assert (tmp_path / "all" / "model.onnx").exists() and not (tmp_path / "all" / "model.c").exists()


# -- structure and memory --------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["residual", "concat", "flatten_linear"])
def test_searchable_and_frozen_networks_have_the_same_structure(case, built):
    net, frozen, _, program, _ = built[case]
    a = RamCost.for_network(net).structure
    b = RamCost.for_network(frozen).structure
    assert [(op.kind, op.node.name, op.keys) for op in a.ops] == [(op.kind, op.node.name, op.keys) for op in b.ops]
    assert [(t.key, t.storage) for t in a.tensors] == [(t.key, t.storage) for t in b.tensors]
    assert len(a.ops) == len(program.ops)


@pytest.mark.parametrize("case", CASES + ["extras"])
def test_memory_plan_keeps_live_tensors_apart(case, built):
    program = built[case][3]
    lives = {}
    for i, op in enumerate(program.ops):
        written = [h.tensor for h in getattr(op, "heads", [])] + [getattr(op, k) for k in ("output", "logits", "scratch")
                                                                  if getattr(op, k, None) is not None]
        read = [getattr(op, k) for k in ("input", "a", "b") if hasattr(op, k)] + list(getattr(op, "inputs", []))
        for t in written + read:
            s = program.tensors[t].storage
            first, last = lives.get(s, (i, i))
            lives[s] = (min(first, i), max(last, i))
    storages = {t.storage: t for t in program.tensors}
    for s, t in storages.items():
        assert t.offset % 4 == 0 and t.offset + t.nbytes <= program.arena_bytes
    for s, t in storages.items():
        for s2, t2 in storages.items():
            if s < s2 and s in lives and s2 in lives and lives[s][0] <= lives[s2][1] and lives[s2][0] <= lives[s][1]:
                assert t.offset + t.nbytes <= t2.offset or t2.offset + t2.nbytes <= t.offset, (t.name, t2.name)


def test_arena_of_a_chain_is_the_peak_of_live_bytes():
    sizes = [64, 8, 512, 40, 512, 72, 1024, 16, 20, 40]
    lives = [(0, 1), (1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (3, 4), (4, 5), (5, 5), (5, 6)]
    offsets, arena = plan_arena(sizes, lives)
    assert arena == peak_live(sizes, lives) == 512 + 72 + 1024
    assert plan_arena(sizes[::-1], lives[::-1])[1] == arena  # the order of the buffers does not matter


def test_odd_spatial_sizes(tmp_path):
    """A 7x7 global pool (ResNet-8 on 28x28 inputs): window sizes that are not powers of two."""
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    searchable = jointopt.convert(jointopt.create_model("resnet8", input_shape=(1, 28, 28)).eval(), x)
    frozen = searchable.eval().set_mode("hard").freeze().eval()
    program = build_program(frozen, x)
    with torch.no_grad():
        expected = frozen(x).numpy()
    assert (run_reference(program, x)[0].argmax(1) == expected.argmax(1)).mean() >= 0.99
    assert float(searchable.cost(RamCost.for_network(searchable), hard=True)) == program.arena_bytes


def test_agreement_forgives_near_ties_only(built):
    from jointopt.export.c_export import TIE_TOLERANCE, agreement

    _, _, x, program, logits = built["chain"]
    same = agreement(program, torch.from_numpy(logits), x)
    assert same["top1_agreement"] == 1.0 and same["near_ties"] == 0 and same["max_abs_diff"] == 0.0
    flipped = torch.from_numpy(-logits)  # every decision reversed, by a wide margin
    assert agreement(program, flipped, x)["decisive_agreement"] < 0.5
    nudged = logits.copy()  # the runner-up nudged just above the winner: a near tie
    top, rows = logits.argmax(1), np.arange(len(logits))
    runner = np.argsort(logits, 1)[:, -2]
    nudged[rows, runner] = nudged[rows, top] + 1e-4 * TIE_TOLERANCE * np.abs(logits).max()
    tie = agreement(program, torch.from_numpy(nudged), x)
    assert tie["top1_agreement"] == 0.0 and tie["near_ties"] == len(x) and tie["decisive_agreement"] == 1.0
