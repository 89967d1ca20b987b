"""lut: measured tables — exact at the rows, monotone piecewise-linear between, clear errors outside."""
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jointopt.cost_models.lut import LutCost
from jointopt.cost import get_cost_model
from jointopt.errors import ConfigError

CSV = """\
# name: toy_mcu
# unit: cycle
# description: a toy device for the tests
kind,kernel,stride,out_size,in_channels,out_channels,weight_bits,act_bits,cycles
conv2d,3x3,1,8x8,16,8,8,8,20000
conv2d,3x3,1,8x8,16,16,8,8,36000
conv2d,3x3,1,8x8,16,32,8,8,70000
conv2d,3x3,1,8x8,32,16,8,8,71000
conv2d,3x3,1,8x8,16,32,4,8,50000
conv2d,3x3,1,8x8,16,16,4,8,26000
conv2d,3x3,1,8x8,16,16,2,8,22000
conv2d,3x3,1,8x8,16,32,2,8,41000
conv2d,3x3,1,4x4,16,32,8,8,19000
linear,,,,64,10,8,8,900
dwconv2d,3x3,1,8x8,32,32,8,8,5000
"""


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text(CSV)
    return path


def cost_of(model, layer) -> float:
    return float(model.layer_cost(layer).detach())


def conv(stats, cin, cout_at_bits, out=(8, 8), bits=(2, 4, 8), **kwargs):
    return stats(cin=cin, cout=64, kernel=(3, 3), out=out, weight_bits=bits, counts=cout_at_bits, **kwargs)


def test_reads_metadata_and_routes_by_path(table_path):
    model = get_cost_model(str(table_path))
    assert isinstance(model, LutCost)
    assert (model.name, model.unit, model.display_unit) == ("toy_mcu", "cycle", "M cycles")
    assert model.description == "a toy device for the tests"


def test_exact_at_every_row(stats, table_path):
    model = LutCost.from_file(table_path)
    for row in model.table.rows:
        bits = (row.weight_bits,)
        if row.kind == "linear":
            layer = stats("linear", cin=row.in_channels, cout=row.out_channels, weight_bits=bits,
                          counts=[row.out_channels])
        elif row.kind == "dwconv2d":
            layer = stats(cin=row.in_channels, cout=row.out_channels, groups=row.in_channels, out=row.out_size,
                          weight_bits=bits, counts=[row.out_channels])
        else:
            layer = stats(cin=row.in_channels, cout=row.out_channels, out=row.out_size, weight_bits=bits,
                          counts=[row.out_channels])
        assert cost_of(model, layer) == row.value, row


def test_same_macs_different_shapes_each_exact(stats, table_path):
    model = LutCost.from_file(table_path)
    # 16→32 and 32→16 have the same MACs: 70,000 and 71,000 measured
    assert cost_of(model, conv(stats, 16, [0, 0, 32])) == 70_000
    assert cost_of(model, conv(stats, 32, [0, 0, 16])) == 71_000
    # a soft query just below that MACs value interpolates towards their mean (70,500)
    between = cost_of(model, conv(stats, 16, [0, 0, 31.9]))
    assert 36_000 < between < 70_500


def test_interpolates_linearly_in_macs(stats, table_path):
    model = LutCost.from_file(table_path)
    # 16 inputs, 12 outputs at 8 bit: halfway between the 8- and 16-channel rows
    assert cost_of(model, conv(stats, 16, [0, 0, 12])) == pytest.approx(28_000)
    # 8 inputs, 16 outputs = the MACs of 16→8: that row's value
    assert cost_of(model, conv(stats, 8, [0, 0, 16])) == pytest.approx(20_000)
    # below the smallest row the curve runs to (0 MACs, 0)
    assert cost_of(model, conv(stats, 16, [0, 0, 4])) == pytest.approx(10_000)


def test_mixed_widths_sum_their_jobs(stats, table_path):
    model = LutCost.from_file(table_path)
    assert cost_of(model, conv(stats, 16, [16, 16, 16])) == 22_000 + 26_000 + 36_000


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 32), min_size=3, max_size=3), st.integers(0, 2), st.floats(0.01, 4))
def test_monotone_in_channels(counts, which, extra):
    from cost_fixtures import make_stats

    # Of rows of the same kind and widths whose MACs tie, only the first is kept: the table is
    # exact at each such shape and uses their mean between them, so a curve over MACs cannot be
    # monotone right next to them (README, LUT section). Everywhere else it must be.
    model = LutCost.from_rows(_rows_without_tied_macs(), name="toy", unit="cycle")
    low = make_stats(cin=16, cout=64, out=(8, 8), weight_bits=(2, 4, 8), counts=counts)
    more = list(counts)
    more[which] = min(32.0, more[which] + extra)
    high = make_stats(cin=16, cout=64, out=(8, 8), weight_bits=(2, 4, 8), counts=more)
    assert cost_of(model, high) >= cost_of(model, low) - 1e-6
    fewer_inputs = make_stats(cin=16, cout=64, out=(8, 8), weight_bits=(2, 4, 8), counts=counts, kept_in=16 - extra)
    assert cost_of(model, fewer_inputs) <= cost_of(model, low) + 1e-6


def _rows_without_tied_macs():
    from jointopt.cost_models._lut_table import parse_row

    rows = _rows()
    parsed = [parse_row(r, f"row {i}") for i, r in enumerate(rows)]
    seen, kept = set(), []
    for row, p in zip(rows, parsed):  # keep the first row of each group of tied MACs
        if (p.key, p.macs) not in seen:
            seen.add((p.key, p.macs))
            kept.append(row)
    assert len(kept) < len(rows)  # the toy table does have ties
    return kept


def _rows():
    lines = [line for line in CSV.splitlines() if line and not line.startswith("#")]
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def test_gradient_is_the_segment_slope(stats, table_path):
    model = LutCost.from_file(table_path)
    layer = conv(stats, 16, [0.0, 0.0, 12.0], requires_grad=True)
    (grad,) = torch.autograd.grad(model.layer_cost(layer), [layer.out_at_bits])
    assert float(grad[2]) == pytest.approx((36_000 - 20_000) / 8)


def test_output_size_without_rows_uses_all_sizes(stats, table_path):
    model = LutCost.from_file(table_path)
    # no 16×16 rows: the 8×8 and 4×4 rows are pooled and interpolated in MACs
    value = cost_of(model, conv(stats, 16, [0, 0, 8], out=(16, 16)))
    assert value == pytest.approx(70_500)  # same MACs as the 16→32 and 32→16 rows at 8×8
    # 16→8 at 8×8 (20,000) and 16→32 at 4×4 (19,000) share MACs too: pooled, their mean
    assert cost_of(model, conv(stats, 16, [0, 0, 2], out=(16, 16))) == pytest.approx(19_500)


def test_outside_the_table_is_a_clear_error(stats, table_path):
    model = LutCost.from_file(table_path)
    with pytest.raises(ConfigError, match=r"no rows for conv2d 5x5 stride 1x1 w8a8.*it has: "):
        model.layer_cost(stats(cin=16, cout=16, kernel=(5, 5), out=(8, 8), weight_bits=(8,), counts=[16]))
    with pytest.raises(ConfigError, match="w3a8"):
        model.layer_cost(conv(stats, 16, [16], bits=(3,)))
    with pytest.raises(ConfigError, match="conv2d 3x3 stride 2x2"):
        model.layer_cost(conv(stats, 16, [0, 0, 16], stride=(2, 2)))
    with pytest.raises(ConfigError, match="largest measurement"):
        model.layer_cost(conv(stats, 64, [0, 0, 64]))
    grown = LutCost.from_file(table_path, extrapolate=True)
    assert cost_of(grown, conv(stats, 32, [0, 0, 64])) == pytest.approx(70_500 * 4)


def test_unused_widths_are_skipped(stats, table_path):
    model = LutCost.from_file(table_path)
    # a frozen layer lists every candidate width; only the chosen ones need rows
    layer = stats(cin=16, cout=16, out=(8, 8), weight_bits=(3, 8), counts=[0, 16], act_bits=(2, 8), act_probs=[0, 1])
    assert cost_of(model, layer) == 36_000


def test_json_matches_csv(stats, tmp_path, table_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"unit": "cycle", "rows": _rows()}))
    from_json, from_csv = get_cost_model(str(path)), LutCost.from_file(table_path)
    layer = conv(stats, 16, [3.0, 7.5, 10.0])
    assert cost_of(from_json, layer) == cost_of(from_csv, layer)
    assert from_json.name == "lut:toy.json"


@pytest.mark.parametrize("text, message", [
    ("kind,in_channels,out_channels,weight_bits,act_bits,cycles\nconv2d,16,16,8,8,100\n", "out_size"),
    ("kind,kernel,out_size,in_channels,out_channels,weight_bits,act_bits,cycles\nconv3d,3,8,16,16,8,8,1\n", "kind="),
    ("kind,kernel,out_size,in_channels,out_channels,weight_bits,act_bits,cycles\nconv2d,3,8,x,16,8,8,1\n", "line 2"),
    ("kind,kernel,out_size,in_channels,out_channels,weight_bits,act_bits,latency\nconv2d,3,8,16,16,8,8,1\n", "unit"),
    ("kind,kernel,out_size,in_channels,out_channels,weight_bits,act_bits\nconv2d,3,8,16,16,8,8\n", "no value"),
    ("kind,kernel,out_size,in_channels,out_channels,weight_bits,act_bits,cycles\nconv2d,3,8,16,16,8,8,-5\n", ">= 0"),
    ("kind,kernel,out_size,in_channels,out_channels,weight_bits,act_bits,cycles\n", "no rows"),
])
def test_malformed_tables(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        LutCost.from_file(path)


def test_name_alone_asks_for_a_table(tmp_path):
    with pytest.raises(ConfigError, match="needs a measured table"):
        get_cost_model("lut")
    with pytest.raises(ConfigError, match="does not exist"):
        get_cost_model(str(tmp_path / "missing.csv"))
