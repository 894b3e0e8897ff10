"""The dp4a W4A8 GEMV (M <= 4) against the CPU reference and a float64 dequantized matmul.

Runs under `TRITON_INTERPRET=1` without CUDA (conftest.py), where `dp4a` is emulated with
byte-lane shifts; on a GPU the same cases run the PTX `dp4a`. Outputs are NaN-poisoned first.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from fptq.kernels import reference as ref_mod  # noqa: E402
from fptq.kernels.triton_gemv import GemvConfig  # noqa: E402

from .test_triton_w4a8 import DEVICE, dequant_matmul64, make_layer, make_x, rel, run  # noqa: E402

SMALL = GemvConfig(block_n=16, chunks=2, split_k=1, num_warps=4)
SPLIT = GemvConfig(block_n=16, chunks=1, split_k=3, num_warps=4)


def _reference(x, layer, group_size, act_mode, act_scale):
    qweight, scales, zeros, bias = layer
    return ref_mod.quant_linear_reference(
        x.cpu().float(), qweight.cpu(), scales.cpu(), None if zeros is None else zeros.cpu(), bits=4,
        group_size=group_size, act_mode=act_mode, act_scale=None if act_scale is None else act_scale.cpu(),
        bias=None if bias is None else bias.cpu(),
    )


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "n,k,group_size,symmetric,act_mode,bias,config",
    [
        (40, 256, 64, True, "dynamic", False, SMALL),  # N tail, 4 chunks of 64
        (32, 384, 128, False, "dynamic", True, SMALL),  # asymmetric, odd chunk count (masked step)
        (16, 512, 256, True, "static", False, SMALL),  # one group spans two chunks
        (24, 256, 256, False, "static", True, SPLIT),  # per-channel, split-K with bias on one slice
        (48, 640, 64, True, "dynamic", False, SPLIT),  # split-K slices of unequal work
    ],
)
def test_gemv_matches_reference(m, n, k, group_size, symmetric, act_mode, bias, config):
    layer = make_layer(n, k, group_size, symmetric, bias=bias, dtype=torch.float32)
    x = make_x(m, k, dtype=torch.float32)
    act_scale = (x.abs().max() / 127).reshape(()).float() if act_mode == "static" else None
    y = run(x, layer, group_size, act_mode, act_scale, config=config)
    ref = _reference(x, layer, group_size, act_mode, act_scale)
    assert rel(y, ref) < 1e-5  # same integers, same scales: only fp32 summation order differs
    assert rel(y, dequant_matmul64(x, layer, group_size, act_mode, act_scale)) < 1e-5


def test_gemv_falls_back_where_unsupported():
    # M > 4, W4A16 and a K that is not a whole number of steps take the tiled path instead
    for m, k, act_mode in ((5, 256, "dynamic"), (2, 256, "none"), (2, 200, "dynamic")):
        layer = make_layer(16, k, 64 if k % 64 == 0 else k, True, dtype=torch.float32)
        gs = 64 if k % 64 == 0 else k
        x = make_x(m, k, dtype=torch.float32)
        y = run(x, layer, gs, act_mode, None, config=SMALL)
        assert rel(y, _reference(x, layer, gs, act_mode, None)) < 1e-4


@pytest.mark.skipif(DEVICE != "cuda", reason="fp16 output path at real sizes needs a GPU")
@pytest.mark.gpu
def test_gemv_fp16_large():
    layer = make_layer(4096, 4096, 128, True)
    x = make_x(1, 4096)
    y = run(x, layer, 128, "dynamic", None, config=GemvConfig())
    assert rel(y, dequant_matmul64(x, layer, 128, "dynamic", None)) < 2e-3
