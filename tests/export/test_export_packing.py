"""Bit packing: the documented layout, exact sizes, and agreement with ONNX's sub-byte integers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from jointopt.quant.packing import channel_bit_offsets, pack_codes, packed_bits, packed_bytes, unpack_codes


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), channels=st.integers(1, 9), n=st.integers(1, 40),
       widths=st.lists(st.sampled_from([1, 2, 3, 4, 5, 8, 16]), min_size=1, max_size=3))
def test_unpack_inverts_pack_and_size_is_exact(seed, channels, n, widths):
    rng = np.random.default_rng(seed)
    bits = rng.choice(widths, size=channels)
    codes = np.stack([rng.integers(-(1 << (b - 1)), 1 << (b - 1), n) for b in bits])
    packed = pack_codes(codes, bits)
    assert packed.dtype == np.uint8
    assert packed_bits(bits, n) == int(bits.sum()) * n
    assert packed.size == packed_bytes(bits, n) == -(-int(bits.sum()) * n // 8)
    assert np.array_equal(unpack_codes(packed, bits, n), codes)
    assert np.array_equal(channel_bit_offsets(bits, n), np.concatenate([[0], np.cumsum(bits * n)[:-1]]))


def test_documented_layout():
    # 4 bit: first code in the low nibble; two's complement
    assert pack_codes([[1, -1, 7, -8]], [4]).tolist() == [0xF1, 0x87]
    # 2 bit: -1 -> 0b11, 0 -> 0b00, 1 -> 0b01, first code in the lowest bits
    assert pack_codes([[-1, 0, 1, 1]], [2]).tolist() == [0b01_01_00_11]
    # mixed widths are contiguous (no padding between channels), the layer is padded to a byte:
    # channel 0 (2 bit) 1, -1 -> bits 1,0, 1,1 ; channel 1 (4 bit) 5, -2 -> bits 1,0,1,0, 0,1,1,1
    assert pack_codes([[1, -1], [5, -2]], [2, 4]).tolist() == [0b0101_1101, 0b0000_1110]
    assert channel_bit_offsets([2, 4], 2).tolist() == [0, 4]
    assert pack_codes([[-128, 127]], [8]).tolist() == [0x80, 0x7F]


def test_out_of_range_codes_and_short_data_are_errors():
    with pytest.raises(ValueError, match="must lie in"):
        pack_codes([[2]], [2])
    with pytest.raises(ValueError, match="must lie in"):
        pack_codes([[-8, 8]], [4])
    with pytest.raises(ValueError, match="bytes"):
        unpack_codes(np.zeros(1, np.uint8), [4, 4], 2)


@pytest.mark.parametrize("dtype, width", [(TensorProto.INT4, 4), (TensorProto.INT2, 2)])
def test_uniform_streams_are_onnx_sub_byte_tensors(dtype, width):
    rng = np.random.default_rng(0)
    codes = rng.integers(-(1 << (width - 1)), 1 << (width - 1), (3, 7))
    tensor = helper.make_tensor("w", dtype, list(codes.shape), vals=pack_codes(codes.reshape(1, -1), [width]).tobytes(),
                                raw=True)
    assert np.array_equal(numpy_helper.to_array(tensor).astype(np.int64), codes)
    reference = helper.make_tensor("w", dtype, list(codes.shape), vals=codes.reshape(-1).tolist())
    assert np.array_equal(numpy_helper.to_array(reference).astype(np.int64), codes)
