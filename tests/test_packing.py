import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fptq.packing import pack_int4, unpack_int4


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 9), half_k=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_pack_unpack_roundtrip_is_exact(n, half_k, seed):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 16, (n, 2 * half_k), generator=g, dtype=torch.uint8)
    packed = pack_int4(codes)
    assert packed.shape == (n, half_k) and packed.dtype == torch.uint8
    assert torch.equal(unpack_int4(packed), codes)


def test_bit_order_low_nibble_is_even_column():
    codes = torch.tensor([[1, 2, 15, 0]], dtype=torch.uint8)
    assert pack_int4(codes).tolist() == [[0x21, 0x0F]]


def test_rejects_odd_k_and_out_of_range():
    with pytest.raises(ValueError):
        pack_int4(torch.zeros(2, 3, dtype=torch.uint8))
    with pytest.raises(ValueError):
        pack_int4(torch.full((1, 2), 16, dtype=torch.int32))
