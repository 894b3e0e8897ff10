import pytest
import torch

from fptq.primitives import dequantize_weight, per_token_scale, quantize_activation, quantize_weight, static_scale


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits,group_size", [(4, 32), (4, 64), (4, -1), (8, 64)])
def test_weight_error_within_half_a_step(symmetric, bits, group_size):
    torch.manual_seed(0)
    w = torch.randn(48, 128) * torch.rand(48, 1) * 3
    qw = quantize_weight(w, bits, group_size, symmetric)
    g = qw.group_size
    assert qw.codes.dtype == torch.uint8 and int(qw.codes.max()) <= 2**bits - 1
    assert qw.scales.dtype == torch.float16 and qw.scales.shape == (48, 128 // g)
    err = (w - dequantize_weight(qw)).abs().reshape(48, -1, g)
    step = qw.scales.float()[..., None]
    # round-to-nearest: half a step, plus the fp16 rounding of the scale over the code range
    bound = step * (0.5 + 2**bits * 2**-10)
    assert (err <= bound).all()


def test_symmetric_int4_uses_zero_8_and_max_over_7():
    w = torch.tensor([[-7.0, 0.0, 3.5, 7.0]])
    qw = quantize_weight(w, 4, 4, True)
    assert qw.zeros is None and qw.zero_point == 8
    assert float(qw.scales) == 1.0
    assert qw.codes.tolist() == [[1, 8, 12, 15]]  # 3.5 rounds half to even -> 4


def test_activation_quantization_static_and_per_token():
    x = torch.tensor([[0.0, 1.27, -2.54], [0.5, -0.25, 0.0]])
    s = static_scale(2.54)
    assert torch.equal(quantize_activation(x, s), torch.tensor([[0.0, 64.0, -127.0], [25.0, -12.0, 0.0]]))
    st = per_token_scale(x)
    q = quantize_activation(x, st)
    assert q.abs().amax(dim=-1).tolist() == [127.0, 127.0]
    assert per_token_scale(torch.zeros(1, 4)).item() == 1.0
