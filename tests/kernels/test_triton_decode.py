"""The single-launch decode kernel (`fptq.kernels.triton_decode`) against the CPU reference.

Runs under TRITON_INTERPRET=1 on the CPU (see conftest.py); on a GPU it runs the real kernel.
Split-K cases exercise the in-kernel reduction (arrival counter, last program reduces).
"""

from __future__ import annotations

import pytest
import torch

from fptq.kernels import reference as ref_mod
from fptq.kernels import triton_w4a8 as tw
from fptq.packing import pack_int4
from fptq.primitives import quantize_weight

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CONFIGS = [
    tw.DecodeConfig(16, 1, 4, tw.DOT_INT8, True),  # K 256 -> 2 slices: in-kernel split-K reduction
    tw.DecodeConfig(32, 2, 4, tw.DOT_INT8, False),  # pre-quantized activations
    tw.DecodeConfig(16, 2, 4, tw.DOT_FMA, True, 1),  # M = 1 GEMV
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["i8dot-fused-split", "i8dot-prequant", "fma"])
@pytest.mark.parametrize("m,n,k,g,sym", [(1, 48, 256, 128, True), (3, 40, 256, 64, False), (2, 24, 200, -1, True)])
@pytest.mark.parametrize("act_mode", ["static", "dynamic"])
def test_decode_matches_reference(cfg, m, n, k, g, sym, act_mode):
    if cfg.block_m < m:
        pytest.skip("FMA config is for M = 1")
    torch.manual_seed(m * 7 + k)
    gs = k if g == -1 else g
    qw = quantize_weight(torch.randn(n, k) * 0.02, 4, gs, sym)
    qweight, scales = pack_int4(qw.codes).to(DEVICE), qw.scales.to(DEVICE)
    zeros = None if qw.zeros is None else qw.zeros.to(DEVICE)
    bias = (torch.randn(n) * 0.1).half().to(DEVICE) if m != 2 else None
    x = (torch.randn(m, k) * 2).half().to(DEVICE)
    act_scale = (x.float().abs().amax() / 127 * 0.7).reshape(()) if act_mode == "static" else None
    out = torch.full((m, n), float("nan"), dtype=torch.float16, device=DEVICE)
    y = tw.w4a8_linear(x, qweight, scales, zeros, group_size=gs, act_mode=act_mode, act_scale=act_scale, bias=bias, config=cfg, out=out)
    assert y.data_ptr() == out.data_ptr() and torch.isfinite(y).all()
    ref = ref_mod.quant_linear_reference(
        x.cpu(),
        qweight.cpu(),
        scales.cpu(),
        None if zeros is None else zeros.cpu(),
        group_size=gs,
        act_mode=act_mode,
        act_scale=None if act_scale is None else act_scale.cpu(),
        bias=None if bias is None else bias.cpu(),
    )
    err = ((y.double().cpu() - ref.double()).norm() / ref.double().norm()).item()
    assert err < 1e-3
