"""Triton W4A8 kernels against the CPU reference and a float64 dequantized matmul.

Without CUDA the kernels run under `TRITON_INTERPRET=1` (set in conftest.py) at small sizes;
tests marked `gpu` run the large sizes, bf16 and the fp8 variant on a GPU only.
Outputs are poisoned with NaN before each run, so an unwritten element fails.
"""

from __future__ import annotations

import itertools

import pytest
import torch

pytest.importorskip("triton")

from fptq.kernels import LaunchPlans, gluon_fallback, gluon_swap, scratch, select_backend  # noqa: E402
from fptq.kernels import reference as ref_mod  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402
from fptq.packing import pack_int4  # noqa: E402
from fptq.primitives import per_token_scale, quantize_activation, quantize_weight  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DECODE = tw.KernelConfig(16, 32, 4, 2)
DECODE_SPLIT = tw.KernelConfig(16, 32, 4, 2, split_k=3)
DECODE_FUSED = tw.KernelConfig(16, 32, 4, 2, fused_act=True)
PREFILL = tw.KernelConfig(32, 32, 4, 2)
UNPACKED = tw.PrefillConfig(16, 32, 4, 2, group_m=2)  # unpack-then-GEMM path (default at large M)


def make_layer(n, k, group_size, symmetric, bias=False, dtype=torch.float16, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g)
    qw = quantize_weight(w, 4, group_size, symmetric)
    b = torch.randn(n, generator=g).to(dtype) if bias else None
    to = lambda t: None if t is None else t.to(DEVICE)  # noqa: E731
    return to(pack_int4(qw.codes)), to(qw.scales), to(qw.zeros), to(b)


def make_x(m, k, dtype=torch.float16, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g) * (1 + 3 * torch.rand(m, 1, generator=g))
    if m > 2:
        x[2] = 0.0  # an all-zero token: per-token scale 1
    return x.to(dtype).to(DEVICE)


def run(x, layer, group_size, act_mode, act_scale=None, config=None):
    qweight, scales, zeros, bias = layer
    out = torch.full((x.shape[0], qweight.shape[0]), float("nan"), dtype=x.dtype, device=x.device)
    y = tw.w4a8_linear(
        x,
        qweight,
        scales,
        zeros,
        group_size=group_size,
        act_mode=act_mode,
        act_scale=act_scale,
        bias=bias,
        config=config,
        out=out,
    )
    assert torch.isfinite(y).all(), "unwritten (poisoned) or non-finite outputs"
    return y


def needs_prefill_gluon():
    from fptq.kernels import triton_prefill

    if triton_prefill.gluon is None or torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("needs Gluon and a Hopper GPU")


def spy_launches(monkeypatch, kernels, note):
    """`note(args, constexprs, options)` for every launch of one of `kernels` through `fptq.kernels.launch`, which
    then launches it as usual."""
    from fptq.kernels import launch

    real_launch = launch.launch

    def spy(kernel, grid, key, args, constexprs, options, kept=()):
        if kernel in kernels:
            note(args, constexprs, options)
        real_launch(kernel, grid, key, args, constexprs, options, kept)

    monkeypatch.setattr(launch, "launch", spy)


def gluon_errors_fail(monkeypatch):
    """A Gluon compile error fails the test instead of turning the kernel off for the process (`gluon_fallback`)."""

    def raise_it(kernel, e):
        raise e

    monkeypatch.setattr(gluon_fallback, "note_failure", raise_it)


def check_int8_modes(x, layer, gs, cfg, tol, case):
    """Static and dynamic int8 activations through `cfg` against the float64 reference."""
    for act_mode in ("static", "dynamic"):
        act_scale = (x.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
        y = run(x, layer, gs, act_mode, act_scale, cfg)
        assert rel(y, dequant_matmul64(x, layer, gs, act_mode, act_scale)) < tol, (*case, act_mode)


def rel(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm()).item()


def dequant_matmul64(x, layer, group_size, act_mode, act_scale):
    """float64 `Q(x) @ dequant(W)^T`: the reference semantics with exact arithmetic."""
    qweight, scales, zeros, bias = layer
    w = ref_mod.integer_weight(qweight.cpu(), None if zeros is None else zeros.cpu(), 4, group_size).double()
    n, k = w.shape
    w = (w.reshape(n, -1, group_size) * scales.cpu().double()[..., None]).reshape(n, k)
    x = x.cpu()
    if act_mode == "none":
        xd = x.double()
    else:
        s = act_scale.cpu().reshape(1, 1) if act_mode == "static" else per_token_scale(x)
        xd = quantize_activation(x, s).double() * s.double()
    y = xd @ w.t()
    return y + bias.cpu().double() if bias is not None else y


CASES = [  # (M, N, K, group size, symmetric)
    (1, 48, 256, 128, True),
    (3, 40, 256, 64, False),
    (16, 48, 384, 128, True),
    (17, 40, 256, 256, False),
    (33, 48, 200, -1, True),  # per-channel, K tail (200 = 128 + 72)
    (5, 40, 192, 64, True),  # K = 3 groups of 64: a half step at the end
]


@pytest.mark.parametrize("act_mode", ["static", "dynamic", "none"])
@pytest.mark.parametrize("m,n,k,g,sym", CASES)
def test_matches_reference(m, n, k, g, sym, act_mode):
    gs = k if g == -1 else g
    layer = make_layer(n, k, gs, sym, bias=m % 2 == 1)
    x = make_x(m, k)
    act_scale = (x.float().abs().amax() / 127 * 0.7).reshape(()) if act_mode == "static" else None
    configs = [None, PREFILL, UNPACKED] + ([DECODE, DECODE_SPLIT, DECODE_FUSED] if m <= 16 else [])
    ref = ref_mod.quant_linear_reference(
        x.cpu(),
        *(t if t is None else t.cpu() for t in layer[:3]),
        group_size=gs,
        act_mode=act_mode,
        act_scale=None if act_scale is None else act_scale.cpu(),
        bias=None if layer[3] is None else layer[3].cpu(),
    )
    exact = dequant_matmul64(x, layer, gs, act_mode, act_scale)
    for cfg in configs:
        y = run(x, layer, gs, act_mode, act_scale, cfg)
        assert y.shape == (m, n) and y.dtype == x.dtype
        # Same integer partial sums; only fp32 accumulation order and the fp16 cast differ.
        assert rel(y, ref) < 1e-3, cfg
        assert rel(y, exact) < 2e-3, cfg


def test_unpacked_weights_are_in_the_activation_order():
    """`unpack_weights` = the integer weights `code - zero`, permuted like the activation buffer,
    zero padded beyond K, in each operand type."""
    from fptq.kernels.triton_prefill import unpack_weights

    for k, g, sym in ((256, 64, False), (200, 200, True), (384, 128, False)):
        qweight, _, zeros, _ = make_layer(40, k, g, sym)
        w = ref_mod.integer_weight(qweight.cpu(), None if zeros is None else zeros.cpu(), 4, g)
        sub = tw._sub_chunk(g)
        want = tw.activation_layout(w.float(), g)
        for dtype in (torch.int8, torch.float16, torch.float8_e4m3fn):
            got = unpack_weights(qweight, zeros, k, g, sub, dtype)
            assert got.dtype == dtype and torch.equal(got.cpu().float(), want), (k, g, dtype)


def test_unpacked_path_in_column_chunks_and_by_default_from_prefill_min_m(monkeypatch):
    """Chunks of columns (a small CHUNK_BYTES) give the same result; the default dispatch takes
    the unpacked path from PREFILL_MIN_M rows on, for int8, float and fp8 activations."""
    from fptq.kernels import triton_prefill

    layer = make_layer(80, 256, 64, False, bias=True)
    x = make_x(20, 256)
    whole = run(x, layer, 64, "dynamic", None, UNPACKED)
    assert rel(whole, dequant_matmul64(x, layer, 64, "dynamic", None)) < 2e-3
    monkeypatch.setattr(triton_prefill, "CHUNK_BYTES", 32 * 256)  # 32 columns a chunk: 3 chunks
    assert torch.equal(run(x, layer, 64, "dynamic", None, UNPACKED), whole)
    # the installed thresholds go by K: long-K layers (70B down) switch later
    first = {k: min(m for m in range(1, 4097) if tw._use_prefill(None, m, k)) for k in (4096, 16384, 28672)}
    assert first[4096] == first[16384] == tw.PREFILL_MIN_M[0][1] < first[28672] == tw.PREFILL_MIN_M[-1][1]
    # where the packed weights are taken directly (no unpack pass: the swap kernel on Hopper), from fewer rows
    direct = {k: min(m for m in range(1, 4097) if tw._use_prefill(None, m, k, True)) for k in (4096, 28672)}
    assert direct[4096] == tw.PREFILL_MIN_M[0][2] < first[4096] and direct[28672] == tw.PREFILL_MIN_M[-1][2]
    calls = []
    monkeypatch.setattr(tw, "prefill_gemm", lambda *a: calls.append(a) or triton_prefill.prefill_gemm(*a))
    monkeypatch.setattr(tw, "PREFILL_CONFIGS", [(1 << 62, UNPACKED)])
    monkeypatch.setattr(tw, "PREFILL_MIN_M", [(1 << 62, 20, 20)])
    assert torch.equal(run(x, layer, 64, "dynamic", None), whole) and len(calls) == 1
    run(x[:19], layer, 64, "dynamic", None)
    assert len(calls) == 1  # below PREFILL_MIN_M: the tiled path
    y = run(x, layer, 64, "none")
    assert len(calls) == 2 and rel(y, dequant_matmul64(x, layer, 64, "none", None)) < 2e-3
    y = tw.w4a8_fp8_linear(x, *layer[:3], group_size=64, bias=layer[3])
    # (the interpreter's float8 rounding is not the GPU's: compared with the tiled fp8 path here,
    # with the reference in test_gpu_fp8)
    tiled = tw.w4a8_fp8_linear(x, *layer[:3], group_size=64, bias=layer[3], config=PREFILL)
    assert len(calls) == 3 and torch.equal(y, tiled)
    # the int8 paths ask `triton_prefill.direct` (on the layer's operands) which row count applies (with an
    # installed swap config; on the CPU `prefill_gemm` falls back to the Triton kernel)
    monkeypatch.setattr(tw, "PREFILL_MIN_M", [(1 << 62, 21, 20)])
    monkeypatch.setattr(tw, "PREFILL_CONFIGS", [(1 << 62, tw.PrefillConfig(64, 128, 4, 8, swap=True))])
    asked = []
    monkeypatch.setattr(tw, "direct", lambda t, int8, *rest: asked.append((t.shape, int8, rest)) or int8)
    assert torch.equal(run(x, layer, 64, "dynamic", None), whole) and len(calls) == 4  # 20 rows: direct
    assert asked[-1] == ((20, 256), True, (layer[0], layer[2], 256, 64))
    run(x, layer, 64, "none")
    assert len(calls) == 4 and asked[-1][1] is False  # W4A16: the unpack-pass threshold (21 rows)
    tw.w4a8_fp8_linear(x, *layer[:3], group_size=64, bias=layer[3])
    assert len(calls) == 4  # fp8: never taken directly
    monkeypatch.setattr(tw, "PREFILL_CONFIGS", [(1 << 62, triton_prefill.WS_CONFIG)])
    run(x, layer, 64, "dynamic", None)
    assert len(calls) == 4  # the lower row count only where the installed config for M is a swap one
    assert not tw._use_prefill(None, 20, 1 << 40, True)  # a K beyond every row: the last row's counts


def test_medium_m_takes_the_swap_kernel_where_its_tiles_fill_the_gpu(monkeypatch):
    """From 64 rows (below the direct threshold) the packed weights go to the swap kernel where its 64-token tiles
    give at least half of 132 SMs one each: the winners of run 89's 18 shape / M pairs (ops, H100)."""
    monkeypatch.setattr(tw, "_sms", lambda t: 132)
    shapes = {"qkv": (4096, 4096), "gate+up": (22016, 4096), "down": (4096, 11008), "70B gate/up": (28672, 8192),
              "70B down": (8192, 28672), "13B down": (5120, 13824)}
    swap = {m: {name for name, (n, k) in shapes.items() if tw._use_prefill(None, m, k, True, n, torch.zeros(1))}
            for m in (63, 64, 128, 192, 256)}
    assert swap[63] == set() and swap[64] == {"gate+up", "70B gate/up"}
    assert swap[128] == {"gate+up", "70B gate/up", "70B down", "13B down"}
    assert swap[192] == swap[256] == set(shapes)
    # only for the packed weights (else the unpack-pass threshold), with a GPU, and with the swap config installed
    assert not tw._use_prefill(None, 128, 4096, False, 22016, torch.zeros(1))
    assert not tw._use_prefill(None, 128, 4096, True, 22016, None)
    monkeypatch.setattr(tw, "_sms", lambda t: 0)
    assert not tw._use_prefill(None, 128, 4096, True, 22016, torch.zeros(1))
    monkeypatch.setattr(tw, "_sms", lambda t: 132)
    from fptq.kernels import triton_prefill
    monkeypatch.setattr(tw, "PREFILL_CONFIGS", [(1 << 62, triton_prefill.WS_CONFIG)])
    assert not tw._use_prefill(None, 128, 4096, True, 22016, torch.zeros(1))


def test_swap_tile_takes_the_fewest_rounds_of_tiles():
    """The installed swap config's token tile by (M, N) on 132 SMs: the choices runs 81 / 87 measured best."""
    from fptq.kernels import triton_prefill
    bm = {(m, n): tw.swap_tile(m, n, 132).block_m for m in (128, 256, 512, 1024, 4096) for n in (4096, 5120, 8192, 22016, 28672)}
    assert bm[128, 4096] == bm[256, 4096] == 64  # narrow layers at few rows: 128 tiles of 64 tokens, one round
    assert bm[256, 5120] == bm[256, 8192] == bm[256, 22016] == bm[256, 28672] == 128
    assert all(b == 128 for (m, n), b in bm.items() if m >= 512)
    assert tw.swap_tile(4096, 4096, 1 << 20).block_m == 64  # one round either way: the faster tile
    # 256-row tiles only where asked for (one int32 sum per output), where their rounds take less time (run 123)
    assert all(tw.swap_tile(m, n, 132).block_n == 128 for m, n in bm)
    wide = {(m, n): tw.swap_tile(m, n, 132, wide=True).block_n for m, n in ((1024, 4096), (2048, 4096), (4096, 5120),
                                                                         (2048, 11008), (1024, 5120), (1024, 13824))}
    assert wide[1024, 4096] == wide[2048, 4096] == wide[4096, 5120] == 256
    assert wide[2048, 11008] == wide[1024, 5120] == wide[1024, 13824] == 128  # 10.4 / 1.2 / 3.3 rounds of wide tiles
    # the dispatch re-tiles the installed swap config only: not a config assigned by hand, nor without a GPU
    assert tw._prefill_config(256, 4096, 132) is tw.SWAP_TILES[0][1] and tw._prefill_config(256, 22016, 132).block_m == 128
    assert tw._prefill_config(256, 4096, 0) is tw.SWAP_TILES[-1][1]
    forced = tw.PrefillConfig(128, 128, 4, 6, swap=True)  # (equal to the installed one, but set by hand)
    with pytest.MonkeyPatch.context() as mp:
        for cfg in (forced, triton_prefill.WS_CONFIG):
            mp.setattr(tw, "PREFILL_CONFIGS", [(1 << 62, cfg)])
            assert tw._prefill_config(256, 4096, 132) is cfg


@pytest.mark.parametrize("target", [0, 1, 10, 10_000])
def test_decode_split_follows_the_program_target(monkeypatch, target):
    """`DECODE_TARGET_PROGRAMS` picks the split (1 .. the config's); results do not depend on it."""
    monkeypatch.setattr(tw, "DECODE_TARGET_PROGRAMS", target)
    layer = make_layer(96, 512, 128, True, bias=True)
    x = make_x(3, 512)
    split = tw._split_k(DECODE_SPLIT, 3, 96)
    assert split == {0: 3, 1: 1, 10: 3, 10_000: 3}[target]  # 3 column tiles of 32
    ref = dequant_matmul64(x, layer, 128, "dynamic", None)
    assert rel(run(x, layer, 128, "dynamic", None, DECODE_SPLIT), ref) < 2e-3


def test_split_k_leaves_no_slice_empty(monkeypatch):
    """Given the layer's K steps, the split is lowered to the fewest slices of the same length."""
    monkeypatch.setattr(tw, "DECODE_TARGET_PROGRAMS", 528)
    cfg = tw.KernelConfig(16, 64, 4, 3, split_k=16)
    assert tw._split_k(cfg, 1, 4096) == 9  # 64 column tiles
    assert tw._split_k(cfg, 1, 4096, steps=32) == 8  # 9 slices of 4 steps would leave one empty
    assert tw._split_k(cfg, 1, 4096, steps=86) == 9  # 9 slices of 10 steps (the last 6)
    assert tw._split_k(cfg, 1, 4096, steps=2) == 2
    for steps in range(1, 200):
        split = tw._split_k(cfg, 1, 4096, steps=steps)
        per = -(-steps // split)
        assert (split - 1) * per < steps  # the last slice has at least one step


def test_decode_split_keeps_tma_slices_within_staged_groups(monkeypatch):
    """For the TMA decode kernel with 128-column steps the split rises until a slice's group scales fit its
    staging (`TMA_MAX_GROUPS`, as `_launch` checks it), so long-K layers keep that kernel; per channel (nothing
    staged) and the other kernels keep the program target's split."""
    monkeypatch.setattr(tw, "TMA_TARGET_PROGRAMS", 264)
    monkeypatch.setattr(tw, "DECODE_TARGET_PROGRAMS", 528)
    cfg = tw.CONFIGS[0][1]
    assert cfg.tma_stages
    g128 = tw._tma_slice_steps(True, 28672, 128)
    assert tw._split_k(cfg, 1, 22016, steps=32, tma_steps=g128) == 1  # 344 tiles: unsplit
    assert tw._split_k(cfg, 1, 22016, steps=32) == 2  # the Triton kernel's target: 2 slices
    assert tw._split_k(cfg, 1, 8192, steps=224, tma_steps=g128) == 4  # 128 tiles want 3 slices: 75 groups each, past 64
    assert tw._split_k(cfg, 1, 8192, steps=224, tma_steps=tw._tma_slice_steps(True, 28672, 28672)) == 3  # per channel
    assert tw._split_k(cfg, 1, 8192, steps=448) == 5  # groups of 64 (64-column steps): no raise
    assert tw._tma_slice_steps(False, 4096, 128) == tw._tma_slice_steps(True, 4096, 64) == 0
    for group in (128, 256, 512):
        for n in (1024, 4096, 8192, 28672):
            for steps in (32, 86, 224, 512, 3000):
                k = steps * 128
                split = tw._split_k(cfg, 1, n, steps=steps, tma_steps=tw._tma_slice_steps(True, k, group))
                if split < cfg.split_k:
                    assert tw._groups_per_program(k, 128, split, group) <= tw.TMA_MAX_GROUPS, (group, n, steps, split)
                assert split >= tw._split_k(cfg, 1, n, steps=steps, tma_steps=1 << 30)  # only ever raised


def test_decode_workspace_follows_the_kernel_that_will_run(monkeypatch):
    """`w4a8_linear` sizes the split-K workspace for the decode kernel its launch will take: the TMA kernel's
    target and staging bound where that kernel can run (faked here on the CPU), the Triton kernel's otherwise."""
    seen = []
    workspace = tw._split_k_workspace

    def spy(m, n, cfg, device, steps=None, tma_steps=0):
        seen.append(tma_steps)
        return workspace(m, n, cfg, device, steps, tma_steps)

    two = []
    monkeypatch.setattr(tw, "_split_k_workspace", spy)
    monkeypatch.setattr(tw, "_tma_capable", lambda cfg, device, dot_type, m, qweight, k: dot_type == 0)
    monkeypatch.setattr(tw, "_use_tma", lambda *args: False)  # the launch itself: the Triton kernel (interpreter)
    monkeypatch.setattr(tw, "_launch_two", lambda *args: two.append(args[8]))  # (the TMA op declines: None)
    monkeypatch.setattr(tw, "FUSED_DECODE_M1", False)  # (the two launches: the one-launch op has no such workspace)
    for g, act_mode, expect in ((128, "dynamic", tw._tma_slice_steps(True, 512, 128)), (64, "dynamic", 0), (128, "none", 0)):
        layer = make_layer(96, 512, g, True)
        x = make_x(1, 512)
        ref = dequant_matmul64(x, layer, g, act_mode, None)
        assert rel(run(x, layer, g, act_mode), ref) < 2e-3
        assert seen[-1] == expect, (g, act_mode, seen)
    assert two == [128, 64]  # (the TMA op is offered the int8 calls first)


def test_fused_m1_dispatch(monkeypatch):
    """With FUSED_DECODE_M1, `w4a8_linear` hands one token of contiguous, 16-byte aligned fp16 / bf16 int8 (dynamic or
    static) activations to the one-launch kernel where the TMA kernel can run (faked here on the CPU; the spy declines, so
    the two launches run on the interpreter); nothing else, and nothing with the flag off."""
    calls = []

    def spy(x2, qweight, scales, zeros, bias, k, group_size, out_dtype, cfg, out, keep=None, pdl_ok=True, prologue=None,
            act_scale=None):
        calls.append((tuple(x2.shape), x2.dtype))
        return None  # declined: the two-launch path follows

    monkeypatch.setattr(tw, "_launch_fused_m1", spy)
    monkeypatch.setattr(tw, "_tma_capable", lambda cfg, device, dot_type, m, qweight, k: dot_type == 0)
    monkeypatch.setattr(tw, "_use_tma", lambda *args: False)
    monkeypatch.setattr(tw, "_launch_two", lambda *args: None)  # (the TMA kernel's two launches: none on the CPU)
    layer = make_layer(96, 512, 128, True, bias=True)
    unaligned = torch.empty(513, dtype=torch.float16, device=DEVICE)[1:].view(1, 512)  # 2 bytes past an aligned allocation
    unaligned.copy_(make_x(1, 512))
    cases = [(True, make_x(1, 512), "dynamic", True), (True, make_x(1, 512, torch.bfloat16), "dynamic", True),
             (True, make_x(1, 512), "static", True), (True, make_x(1, 512), "none", False),
             (True, make_x(2, 512), "dynamic", False), (True, make_x(1, 512, torch.float32), "dynamic", False),
             (True, unaligned, "dynamic", False), (True, make_x(1, 1024)[:, ::2], "dynamic", True),  # (copied)
             (False, make_x(1, 512), "dynamic", False)]
    for flag, x, act_mode, fused in cases:
        monkeypatch.setattr(tw, "FUSED_DECODE_M1", flag)
        calls.clear()
        act_scale = (x.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
        y = run(x, layer, 128, act_mode, act_scale)
        assert rel(y, dequant_matmul64(x, layer, 128, act_mode, act_scale)) < (1e-2 if x.dtype == torch.bfloat16 else 2e-3)
        assert calls == ([((1, 512), x.dtype)] if fused else []), (flag, x.dtype, act_mode, tuple(x.shape))


def prologue_offers(monkeypatch) -> tuple[list, list]:
    """Spies in place of the one-launch op and the two launches, both declining (so the Triton kernel runs on the
    interpreter), the TMA decode kernel reported available: the lists of whether each one-launch / two-launch offer
    carried a prologue."""
    offers, twos = [], []

    def spy(x2, *args, prologue=None, **kwargs):
        offers.append(prologue is not None)
        return None

    def spy_two(*args):
        twos.append(args[15] is not None)  # (`prologue`, passed positionally)
        return None

    monkeypatch.setattr(tw, "_launch_fused_m1", spy)
    monkeypatch.setattr(tw, "_tma_capable", lambda cfg, device, dot_type, m, qweight, k: dot_type == 0)
    monkeypatch.setattr(tw, "_use_tma", lambda *args: False)
    monkeypatch.setattr(tw, "_launch_two", spy_two)
    return offers, twos


def test_prologue_dispatch(monkeypatch):
    """With a prologue (`fptq.kernels.prologue`, the RMSNorm before the layer), `w4a8_linear` hands the raw rows to
    launches that normalize them only where they can: int8 activations (dynamic or static) of contiguous fp16 / bf16
    rows on the default path, groups the kernels take, a norm weight of the rows' dtype, contiguous and 16-byte
    aligned. Then one token is offered to the one-launch op and, declined, to the two launches with the norm in the
    quantization kernel, as more rows are. Every other call runs the norm's torch ops first (and may still take
    those launches, without the norm). Either way the result is the float64 reference's on the normalized rows (the
    spies decline, so the Triton kernel runs on the interpreter after the norm's torch ops)."""
    from fptq.kernels.prologue import Prologue, apply_prologue

    offers, twos = prologue_offers(monkeypatch)
    w = (1 + 0.5 * torch.randn(512, generator=torch.Generator().manual_seed(3))).half().to(DEVICE)
    misaligned = torch.empty(513, dtype=torch.float16, device=DEVICE)[1:]  # 2 bytes past an aligned allocation
    misaligned.copy_(w)
    cases = [(make_x(1, 512), "dynamic", 128, w, [True], [True]),
             (make_x(1, 512, torch.bfloat16), "dynamic", 128, w.bfloat16(), [True], [True]),
             (make_x(1, 512), "static", 128, w, [True], [True]), (make_x(2, 512), "dynamic", 128, w, [], [True]),
             (make_x(5, 512), "static", 128, w, [], [True]),
             (make_x(3, 1024)[:, ::2], "dynamic", 128, w, [], [False]),  # (strided rows: the norm first)
             (make_x(1, 512), "none", 128, w, [], []),
             (make_x(1, 512), "dynamic", 32, w, [], []),  # (groups of 32: the reference path)
             (make_x(1, 512), "dynamic", 128, misaligned, [False], [False]),
             (make_x(1, 512), "dynamic", 128, w.float(), [], [False])]  # (an fp32 weight: the normalized row fp32)
    for x, act_mode, g, weight, want_offers, want_twos in cases:
        layer = make_layer(96, 512, g, True, bias=True, dtype=x.dtype)
        prologue = Prologue("rmsnorm", weight, 1e-5)
        normed = apply_prologue(x, prologue)
        act_scale = (normed.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
        offers.clear()
        twos.clear()
        out = torch.full((x.shape[0], 96), float("nan"), dtype=x.dtype, device=x.device)
        y = tw.w4a8_linear(x, *layer[:3], group_size=g, act_mode=act_mode, act_scale=act_scale, bias=layer[3], out=out,
                           prologue=prologue)
        case = (tuple(x.shape), x.dtype, act_mode, g, weight.dtype, weight.data_ptr() % 16)
        assert offers == want_offers and twos == want_twos, (case, offers, twos)
        assert torch.isfinite(y).all() and (g == 32 or y.data_ptr() == out.data_ptr()), case  # (the reference: new)
        assert rel(y, dequant_matmul64(normed, layer, g, act_mode, act_scale)) < (
            1e-2 if x.dtype == torch.bfloat16 else 2e-3), case


def _interpreter_prologue(x: torch.Tensor, prologue) -> torch.Tensor:
    """`apply_prologue` with the fp32 -> bf16 casts truncating, as TRITON_INTERPRET casts (fp16 and the GPU: rounded
    to nearest, `apply_prologue` itself)."""
    from fptq.kernels.prologue import apply_prologue

    if x.dtype != torch.bfloat16 or DEVICE == "cuda":
        return apply_prologue(x, prologue)

    def trunc(t):
        return (t.view(torch.int32) & -65536).view(torch.float32)

    if prologue.kind == "silu_glu":
        gate, up = x.float().chunk(2, dim=-1)
        return trunc(trunc(gate / (1 + torch.exp(-gate))) * up).bfloat16()  # (exact: the values are bf16 already)
    h = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + prologue.eps)
    return trunc(prologue.weight.float() * trunc(h)).bfloat16()


@pytest.mark.parametrize("kind", ["rmsnorm", "silu_glu"])
@pytest.mark.parametrize("part_cols", [1024, 0])  # rows split over programs / one program a row
def test_quantization_kernel_normalizes_rows(monkeypatch, part_cols, kind):
    """NORM / SILU: the quantization kernel given a prologue (the RMSNorm before the layer; SiLU * up of rows of
    `[gate, up]`) writes the codes and scales of the layer's input: bit for bit what it writes for `apply_prologue`'s
    output (static and dynamic, fp16 and bf16, K a multiple of the chunk or not, rows split over programs or not, an
    epsilon that matters or not). On the interpreter bf16 is compared with its truncating fp32 -> bf16 casts
    (`_interpreter_prologue`); a GPU rounds to nearest, as torch does."""
    from fptq.kernels.prologue import Prologue, input_features

    monkeypatch.setattr(tw, "QUANT_PART_COLS", part_cols)
    gen = torch.Generator().manual_seed(5)
    parts = set()
    for (m, k, g, eps), dtype, act_mode in itertools.product(
            ((3, 512, 128, 1e-5), (2, 640, 64, 4.0), (4, 1000, 8, 1e-6), (1, 3000, 128, 0.5)),
            (torch.float16, torch.bfloat16), ("dynamic", "static")):
        weight = (1 + 0.5 * torch.randn(k, generator=gen)).to(dtype).to(DEVICE)
        prologue = Prologue("rmsnorm", weight, eps) if kind == "rmsnorm" else Prologue("silu_glu")
        x = make_x(m, input_features(prologue, k), dtype)
        normed = _interpreter_prologue(x, prologue)
        scale = (normed.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
        quant = tw._QuantLaunch(m, k, dtype, x.device, g, act_mode, tw._words(x), False, False, prologue)
        assert quant.constexprs["NORM" if kind == "rmsnorm" else "SILU"]
        parts.add(quant.constexprs["PARTS"])
        buf, sx, _ = quant.run(x, x.stride(0), scale)
        want, want_sx = tw.quantize_activation_triton(normed, g, act_mode, scale)
        case = (m, k, g, eps, dtype, act_mode)
        assert torch.equal(buf, want) and (sx is None or torch.equal(sx, want_sx)), case
    assert parts == ({1, 4} if part_cols else {1})


@pytest.mark.parametrize("part_cols", [1024, 0])  # rows split over programs / one program a row
def test_silu_rows_past_one_pass(monkeypatch, part_cols):
    """SILU on rows past SILU_MAX_K columns: two passes over the row, block by block (the absmax of `silu(gate) * up`,
    then the codes, computing it again): bit for bit the codes and scales of `apply_prologue`'s output, static and
    dynamic, fp16 and bf16, K a multiple of the block or not; and the op on such rows (the two launches) equals the
    op on that output."""
    from fptq.kernels.prologue import Prologue

    monkeypatch.setattr(tw, "QUANT_PART_COLS", part_cols)
    monkeypatch.setattr(tw, "SILU_MAX_K", 256)
    monkeypatch.setattr(tw, "PASS_BLOCK_K", 256)
    prologue, parts = Prologue("silu_glu"), set()
    for (m, k, g), dtype, act_mode in itertools.product(((3, 512, 128), (2, 1000, 8), (5, 640, 64)),
                                                        (torch.float16, torch.bfloat16), ("dynamic", "static")):
        x = make_x(m, 2 * k, dtype, seed=k)
        silu = _interpreter_prologue(x, prologue)
        scale = (silu.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
        quant = tw._QuantLaunch(m, k, dtype, x.device, g, act_mode, tw._words(x), False, False, prologue)
        assert quant.constexprs["SILU"] and not quant.constexprs["ONE_PASS"]
        parts.add(quant.constexprs["PARTS"])
        buf, sx, _ = quant.run(x, x.stride(0), scale)
        want, want_sx = tw.quantize_activation_triton(silu, g, act_mode, scale)
        case = (m, k, g, dtype, act_mode)
        assert torch.equal(buf, want) and (sx is None or torch.equal(sx, want_sx)), case
    assert (max(parts) > 1) if part_cols else parts == {1}
    layer = make_layer(96, 640, 128, True, bias=True)
    x = make_x(4, 1280)
    assert tw._prologue_fusable(x, 4, 128, "dynamic", prologue, None)
    y = tw.w4a8_linear(x, *layer[:3], group_size=128, bias=layer[3], prologue=prologue, plans=LaunchPlans())
    assert torch.equal(y, run(_interpreter_prologue(x, prologue), layer, 128, "dynamic"))


def test_a_quantization_kernel_error_is_not_a_gluon_failure(monkeypatch):
    """`_launch_two` runs the quantization kernel and the TMA decode GEMM in one try: an error of the quantization
    kernel is raised as it is, and only the GEMM's own compile error turns the Gluon decode kernel off."""
    import types

    monkeypatch.setattr(gluon_fallback, "_FAILED", set())
    fake_gemm = types.SimpleNamespace(kept=False, grid=(1,), run=None)
    monkeypatch.setattr(tw, "_DecodeTmaLaunch", lambda *args, **kwargs: fake_gemm)
    layer, x = make_layer(64, 256, 128, True), make_x(4, 256)

    def two():
        return tw._launch_two(x, *layer[:3], None, "dynamic", None, 256, 128, torch.float16, tw.CONFIGS[0][1], False,
                              None, None, True)

    def broken(*args, **kwargs):
        raise RuntimeError("PassManager::run failed")

    with monkeypatch.context() as mp:
        mp.setattr(tw._QuantLaunch, "run", broken)
        with pytest.raises(RuntimeError, match="PassManager"):
            two()
    assert not gluon_fallback.failed("decode")
    fake_gemm.run = broken
    with pytest.warns(RuntimeWarning, match="Gluon decode kernel failed"):
        assert two() is None
    assert gluon_fallback.failed("decode")


def test_a_flagged_gemm_gets_no_zeroed_counters(monkeypatch):
    """`_launch_two` on a split TMA launch: where the GEMM reduces through the kept partials (SPLIT_FLAGS) the
    quantization kernel is made without its counter zeroing and given no counters, and the plan allocates no
    workspace; where the partials cannot be had (e.g. during a capture) it zeroes the fresh counters the GEMM gets."""
    layer, x = make_layer(64, 256, 128, True), make_x(4, 256)
    cfg = tw.CONFIGS[0][1]
    assert tw._split_k(cfg, 4, 64, 2, tw._tma_slice_steps(True, 256, 128)) == 2  # (a split launch)
    quants, gemms = [], []
    real_run = tw._QuantLaunch.run

    def quant_run(self, x, row_stride, act_scale=None, counters=None, key=None):
        quants.append((self.constexprs["ZERO"], counters))
        if counters is not None:
            counters.fill_(7)  # (fresh memory holds anything: the kernel zeroes it)
        return real_run(self, x, row_stride, act_scale, counters, key)

    class FakeGemm:
        kept, grid = False, (1, 2)

        def __init__(self, flags):
            self.flags = flags

        def run(self, a, sx, out, ws, counters, fresh=False):
            gemms.append((ws, counters, out))

    monkeypatch.setattr(tw._QuantLaunch, "run", quant_run)
    for kept in (torch.zeros(tw.FLAG_PARTIALS, dtype=torch.int32), None):
        quants.clear(), gemms.clear()
        monkeypatch.setattr(tw, "_flag_partials", lambda device, split, m, n, kept=kept: kept)
        monkeypatch.setattr(tw, "_DecodeTmaLaunch", lambda *args, kept=kept, **kwargs: FakeGemm(kept))
        tw._launch_two(x, *layer[:3], None, "dynamic", None, 256, 128, torch.float16, cfg, False, None, None, True)
        (zero, counters), = quants
        (ws, gemm_counters, out), = gemms
        if kept is not None:  # (the GEMM's own `run` then takes its kept partials)
            assert not zero and counters is None and ws is out and gemm_counters is out
        else:
            assert zero and gemm_counters is counters and not counters.any() and ws is not out


def test_decode_launch_carries_the_trigger(monkeypatch):
    """`DECODE_TRIGGER` reaches the TMA decode kernel's constexprs as set (none at 0, so the untriggered kernel is the
    one compiled before the setting existed), for the 2-16-row GEMM and the one-launch M = 1 op alike."""
    from fptq.kernels import gluon_decode

    if gluon_decode.gluon is None:
        pytest.skip("this Triton has no usable Gluon")
    qweight, scales = torch.zeros(64, 128, dtype=torch.uint8), torch.ones(64, 2, dtype=torch.float16)
    cfg = tw.CONFIGS[0][1]
    for trigger in (0, 1, 2):
        monkeypatch.setattr(tw, "DECODE_TRIGGER", trigger)
        for m, a in ((4, torch.zeros(4, 256, dtype=torch.int8)), (1, None)):
            launch = tw._DecodeTmaLaunch(qweight, scales, None, None, m, 256, 128, cfg, 1, 2 if a is not None else 0,
                                         True, a)
            assert launch.constexprs.get("TRIGGER", 0) == trigger and ("TRIGGER" in launch.constexprs) == (trigger > 0)
            assert launch.fused == (a is None)


def test_flag_peer_group_reaches_only_flagged_wide_splits(monkeypatch):
    """`FLAG_PEER_GROUP` reaches the decode kernel as PEERS only on a flagged launch with more other slices than the
    group (else the all-at-once reduction, whose kernel is the one compiled before the setting existed)."""
    from fptq.kernels import gluon_decode

    if gluon_decode.gluon is None:
        pytest.skip("this Triton has no usable Gluon")
    qweight, scales = torch.zeros(64, 2048, dtype=torch.uint8), torch.ones(64, 32, dtype=torch.float16)
    a, cfg = torch.zeros(4, 4096, dtype=torch.int8), tw.CONFIGS[0][1]
    partials = torch.zeros(tw.FLAG_PARTIALS, dtype=torch.int32)
    for group, split, kept, want in ((0, 16, partials, 0), (4, 16, partials, 4), (4, 5, partials, 0),
                                     (3, 5, partials, 3), (4, 16, None, 0)):
        monkeypatch.setattr(tw, "FLAG_PEER_GROUP", group)
        launch = tw._DecodeTmaLaunch(qweight, scales, None, None, 4, 4096, 128, cfg, split, 2, True, a,
                                     partials=kept)
        assert launch.constexprs.get("PEERS", 0) == want and ("PEERS" in launch.constexprs) == (want > 0), (group,
                                                                                                        split)


def test_fused_static_rows_dispatch(monkeypatch):
    """2-4 rows take the one launch (`_fused_m1`) only with static activations, rows K apart, up to FUSED_STATIC_ROWS;
    its launch then quantizes MR (a power of two) rows, unpaired and unheld (`_DecodeTmaLaunch`)."""
    from fptq.kernels import gluon_decode

    if gluon_decode.gluon is None or gluon_decode._clamp is None:
        pytest.skip("this Triton has no usable Gluon")
    monkeypatch.setattr(tw, "_tma_capable", lambda *args: True)  # (no Hopper GPU here)
    qweight, scales = torch.zeros(64, 128, dtype=torch.uint8), torch.ones(64, 2, dtype=torch.float16)
    cfg = tw.CONFIGS[0][1]
    x = torch.zeros(4, 256, dtype=torch.float16)
    for rows in (0, 2, 4):
        monkeypatch.setattr(tw, "FUSED_STATIC_ROWS", rows)
        for m in (1, 2, 3, 4):
            want = m == 1 or m <= rows
            assert tw._fused_m1(x[:m], "static", cfg, qweight, 256) == want, (rows, m)
            assert tw._fused_m1(x[:m], "dynamic", cfg, qweight, 256) == (m == 1), (rows, m)
    monkeypatch.setattr(tw, "FUSED_STATIC_ROWS", 4)
    assert not tw._fused_m1(torch.zeros(3, 512, dtype=torch.float16)[:, :256], "static", cfg, qweight, 256)
    monkeypatch.setattr(gluon_fallback, "_FAILED", set(gluon_fallback._FAILED) | {"decode_rows"})
    assert not tw._fused_m1(x[:2], "static", cfg, qweight, 256) and tw._fused_m1(x[:1], "static", cfg, qweight, 256)
    monkeypatch.setattr(tw, "_pairs_pay", lambda *args: True)  # (one row would take pairs here)
    for m, mr in ((2, 2), (3, 4), (4, 4)):
        launch = tw._DecodeTmaLaunch(qweight, scales, None, None, m, 256, 128, cfg, 2, 1, True)
        assert launch.fused and launch.constexprs["MR"] == mr and not launch.constexprs["HOLD"]
        assert launch.constexprs["PAIR"] == 0
    one = tw._DecodeTmaLaunch(qweight, scales, None, None, 1, 256, 128, cfg, 2, 1, True)
    assert "MR" not in one.constexprs and one.constexprs["PAIR"] == tw.FUSED_PAIR > 0


def test_silu_prologue_dispatch(monkeypatch):
    """SiLU * up (rows of `[gate, up]`) is never offered to the one-launch op (it can normalize its row, not compute
    SiLU * up): from SILU_MIN_ROWS rows on the two launches take it (the quantization kernel's SILU); fewer rows run
    its torch ops and offer the op the result, without a prologue. The result is the float64 reference's either way."""
    from fptq.kernels.prologue import Prologue, apply_prologue

    offers, twos = prologue_offers(monkeypatch)
    layer, prologue = make_layer(96, 512, 128, True, bias=True), Prologue("silu_glu")
    for m, min_rows, want_offers, want_twos in ((1, 1, [], [True]), (1, 2, [False], [False]), (3, 1, [], [True]),
                                                (3, 4, [], [False])):
        monkeypatch.setattr(tw, "SILU_MIN_ROWS", min_rows)
        offers.clear()
        twos.clear()
        x = make_x(m, 1024)
        y = tw.w4a8_linear(x, *layer[:3], group_size=128, bias=layer[3], prologue=prologue)
        assert offers == want_offers and twos == want_twos, (m, min_rows, offers, twos)
        assert rel(y, dequant_matmul64(apply_prologue(x, prologue), layer, 128, "dynamic", None)) < 2e-3, (m, min_rows)
    monkeypatch.undo()
    cfg = tw.CONFIGS[0][1]
    q, scales = torch.zeros(256, 256, dtype=torch.uint8), torch.ones(256, 4, dtype=torch.float16)
    assert tw._launch_fused_m1(make_x(1, 1024).cpu(), q, scales, None, None, 512, 128, torch.float16, cfg, None,
                               prologue=prologue) is None  # (refused before anything is launched)


def test_silu_launch_settings(monkeypatch):
    """The quantization launch of SiLU * up rows: twice the warps of a plain row of the same width (a thread holds the
    gate and the up values), one pass up to SILU_MAX_K columns, past it two passes over blocks of SILU_MAX_K columns
    (rounded down to a power of two of chunks); the interpreter's division the correctly rounded one."""
    from fptq.kernels.prologue import Prologue

    def launch(k, prologue):
        return tw._QuantLaunch(16, k, torch.float16, torch.device("cpu"), 128, "dynamic", True, False, False, prologue)

    silu = Prologue("silu_glu")
    for k in (4096, 11008, 28672):
        plain, fused = launch(k, None), launch(k, silu)
        assert fused.constexprs["ONE_PASS"] and fused.constexprs["CHUNKS"] == plain.constexprs["CHUNKS"], k
        assert fused.warps == min(16, 2 * plain.warps) and fused.constexprs["SILU_DIV"] == 0, k
    monkeypatch.setattr(tw, "SILU_MAX_K", 16384)
    two = launch(28672, silu)
    assert not two.constexprs["ONE_PASS"] and two.constexprs["CHUNKS"] * 128 == 16384 and two.warps == 16
    assert launch(11008, silu).constexprs["ONE_PASS"]
    monkeypatch.setattr(tw, "SILU_MAX_K", 384)  # (three chunks: blocks of two)
    assert launch(1000, silu).constexprs["CHUNKS"] == 2


def test_an_empty_batch_gives_an_empty_output():
    """No rows (an empty batch, with or without a prologue): an empty (..., N) output, no launch failing on it."""
    from fptq.kernels.prologue import Prologue

    layer = make_layer(96, 512, 128, True, bias=True)
    weight = torch.ones(512, dtype=torch.float16, device=DEVICE)
    for shape, prologue in (((0, 512), None), ((2, 0, 512), None), ((0, 512), Prologue("rmsnorm", weight, 1e-5)),
                            ((0, 1024), Prologue("silu_glu"))):
        x = torch.empty(shape, dtype=torch.float16, device=DEVICE)
        y = tw.w4a8_linear(x, *layer[:3], group_size=128, bias=layer[3], prologue=prologue, plans=LaunchPlans())
        assert y.shape == (*shape[:-1], 96), (shape, prologue)


def test_a_kept_prologue_plan_follows_the_norm_weight():
    """A plan kept on the raw rows (the quantization kernel normalizes them) reads the norm weight at each launch: a
    `.data` swap of the weight between two calls changes the result as it would the torch norm's; another epsilon
    with the same weight is another plan."""
    from fptq.kernels.prologue import Prologue, apply_prologue

    layer = make_layer(96, 512, 128, True)
    weight = torch.full((512,), 1.0, dtype=torch.float16, device=DEVICE)
    prologue, plans, x = Prologue("rmsnorm", weight, 1e-5), LaunchPlans(), make_x(4, 512)

    def call():
        return tw.w4a8_linear(x, *layer[:3], group_size=128, plans=plans, prologue=prologue)

    call()
    weight.data = torch.linspace(-3, 3, 512, dtype=torch.float16, device=DEVICE)  # (the same object, new storage)
    assert torch.equal(call(), tw.w4a8_linear(apply_prologue(x, prologue), *layer[:3], group_size=128))
    assert len(plans) == 1
    prologue = Prologue("rmsnorm", weight, 4.0)
    assert torch.equal(call(), tw.w4a8_linear(apply_prologue(x, prologue), *layer[:3], group_size=128))
    assert len(plans) == 2


def test_prologue_on_the_paths_without_the_norm_inside(monkeypatch):
    """The paths that do not take the norm into a launch run it in torch ops where they branch off: configs that
    quantize inside the GEMM (`fused_act`), the older prefill kernels (zero points; on the CPU also symmetric weights,
    which the swap kernel does not take here), a K past one register-held pass. Each equals the op on
    `apply_prologue`'s output bit for bit."""
    import dataclasses

    from fptq.kernels.prologue import Prologue, apply_prologue

    def check(m, k, symmetric):
        layer = make_layer(64, k, 128, symmetric, bias=True)
        weight = (1 + 0.5 * torch.randn(k, generator=torch.Generator().manual_seed(3))).half().to(DEVICE)
        prologue, x = Prologue("rmsnorm", weight, 1e-5), make_x(m, k)
        y = tw.w4a8_linear(x, *layer[:3], group_size=128, bias=layer[3], prologue=prologue, plans=LaunchPlans())
        want = tw.w4a8_linear(apply_prologue(x, prologue), *layer[:3], group_size=128, bias=layer[3])
        assert torch.equal(y, want), (m, k, symmetric)

    with monkeypatch.context() as mp:
        mp.setattr(tw, "CONFIGS", [(tw.DECODE_MAX_M, dataclasses.replace(tw.CONFIGS[0][1], fused_act=True))]
                   + tw.CONFIGS[1:])
        check(4, 256, False)
        check(1, 256, True)
    with monkeypatch.context() as mp:
        mp.setattr(tw, "PREFILL_MIN_M", [(1 << 62, 20, 20)])
        check(24, 256, False)
        check(24, 256, True)
    with monkeypatch.context() as mp:
        mp.setattr(tw, "ONE_PASS_MAX_K", 256)
        layer_k = 384  # (three chunks of 128: past one pass, so the torch norm first)
        assert not tw._prologue_fusable(make_x(2, layer_k), 4, 128, "dynamic",
                                        Prologue("rmsnorm", torch.ones(layer_k, dtype=torch.float16, device=DEVICE)),
                                        None)
        check(2, layer_k, True)


@pytest.mark.parametrize("kind", ["rmsnorm", "silu_glu"])
def test_prologue_rows_through_the_two_launches(monkeypatch, kind):
    """More rows than one with a prologue (and one token of SiLU * up): the two launches (quantization kernel with
    NORM / SILU, then the GEMM; the tiled Triton kernel on the interpreter) give what the same layer gives on
    `apply_prologue`'s output — the same codes, so the same result bit for bit in fp16 — the first call and a kept
    plan's replays alike. (One token of SiLU * up below SILU_MIN_ROWS: the torch ops, then the op, with its own
    plan.)"""
    from fptq.kernels.prologue import Prologue, apply_prologue, input_features

    layer = make_layer(96, 512, 128, True, bias=True)
    weight = (1 + 0.5 * torch.randn(512, generator=torch.Generator().manual_seed(4))).half().to(DEVICE)
    prologue = Prologue("rmsnorm", weight, 1e-6) if kind == "rmsnorm" else Prologue("silu_glu")
    one = ((1, "dynamic", 1), (1, "static", 2)) if kind != "rmsnorm" else ()
    for m, act_mode, min_rows in ((2, "dynamic", 1), (5, "static", 2), (16, "dynamic", 2)) + one:
        monkeypatch.setattr(tw, "SILU_MIN_ROWS", min_rows)
        x = make_x(m, input_features(prologue, 512))
        normed = apply_prologue(x, prologue)
        act_scale = (normed.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
        want = run(normed, layer, 128, act_mode, act_scale)
        plans = LaunchPlans()
        for call in range(3):  # (the first decides and keeps the plan on the raw rows, the others replay it)
            y = tw.w4a8_linear(x, *layer[:3], group_size=128, act_mode=act_mode, act_scale=act_scale, bias=layer[3],
                               plans=plans, prologue=prologue)
            assert torch.equal(y, want), (m, act_mode, call)
        # (kept under the prologue's signature; SiLU * up below SILU_MIN_ROWS: under the call on the torch ops' output)
        assert len(plans) == 1 and (next(iter(plans))[-1] is not None) == (m >= min_rows or kind == "rmsnorm")


def test_fused_m1_declines_what_it_cannot_hold(monkeypatch):
    """`_launch_fused_m1` returns None (the two launches) before launching anything where a program's K steps pass
    FUSED_MAX_STEPS, its group scales TMA_MAX_GROUPS, or the tiles the shared split-K counters."""
    cfg = tw.CONFIGS[0][1]
    q, scales = torch.zeros(256, 2048, dtype=torch.uint8), torch.ones(256, 32, dtype=torch.float16)
    x = torch.zeros(1, 4096, dtype=torch.float16)

    gluon_errors_fail(monkeypatch)  # (a decline returns before any launch)

    def launch():
        return tw._launch_fused_m1(x, q, scales, None, None, 4096, 128, torch.float16, cfg, None)

    assert tw._split_k(cfg, 1, 256, 32, tw._tma_slice_steps(True, 4096, 128)) == 16  # 2 steps a slice, 4 tiles
    with monkeypatch.context() as mp:
        mp.setattr(tw, "FUSED_MAX_STEPS", 1)
        assert launch() is None
    with monkeypatch.context() as mp:
        mp.setattr(tw, "TMA_MAX_GROUPS", 1)
        assert launch() is None
    with monkeypatch.context() as mp:
        mp.setattr(tw, "FUSED_COUNTERS", 3)
        assert tw._fused_counters(x.device, 4) is None and launch() is None


def test_split_k_is_deterministic_and_its_counters_are_zeroed_by_the_quantization():
    layer = make_layer(96, 768, 64, False, bias=True)
    x = make_x(5, 768)
    cfg = tw.KernelConfig(16, 32, 4, 2, split_k=4)
    first = run(x, layer, 64, "dynamic", None, cfg)
    assert rel(first, dequant_matmul64(x, layer, 64, "dynamic", None)) < 2e-3
    for _ in range(2):  # the last slice of each tile sums the partials in a fixed order
        assert torch.equal(run(x, layer, 64, "dynamic", None, cfg), first)
    split, partials, counters = tw._split_k_workspace(5, 96, cfg, x.device)
    assert split == 4 and partials.shape == (4 * 5 * 96,) and counters.numel() == 3
    counters.fill_(7)  # fresh workspaces hold garbage until the quantization kernel zeroes them
    tw.quantize_activation_triton(x, 64, "dynamic", counters=counters)
    assert not counters.any()


def test_fp32_and_3d_inputs():
    layer = make_layer(32, 256, 128, True)
    x = make_x(6, 256, torch.float32).reshape(2, 3, 256)
    y = tw.w4a8_linear(x, *layer[:3], group_size=128, act_mode="dynamic")
    ref = ref_mod.quant_linear_reference(x.cpu(), *(t.cpu() for t in layer[:2]), None, group_size=128)
    assert y.shape == (2, 3, 32)
    assert rel(y, ref) < 1e-5


def _strided_x(m, k, dtype, how):
    """(m, k) activations as a view read element by element, not as int32 words of two: 'odd' row stride
    (k + 1), 'offset' by one element (rows not 4-byte aligned), 'odd k' (an even stride, an odd row length),
    'odd storage' (4-byte aligned rows at an odd storage offset: a storage starting at 2 mod 4, CPU only)."""
    if how == "odd":
        return make_x(m, k + 1, dtype)[:, :k]
    if how == "odd k":
        return make_x(m, k + 2, dtype)[:, : k + 1]
    if how == "odd storage":
        buf = bytearray(2 * (m * k + 8))
        shift = (2 - torch.frombuffer(buf, dtype=torch.uint8).data_ptr()) % 4
        t = torch.frombuffer(buf, dtype=dtype, offset=shift, count=m * k + 2)
        t[1 : 1 + m * k] = make_x(m, k, dtype).cpu().reshape(-1)
        return t[1 : 1 + m * k].view(m, k)
    return make_x(m + 1, k + 2, dtype).reshape(-1)[1 : 1 + m * (k + 2)].view(m, k + 2)[:, :k]


@pytest.mark.parametrize("one_pass_max_k", [tw.ONE_PASS_MAX_K, 128])  # one register-held pass / chunked passes
@pytest.mark.parametrize("part_cols", [1024, 128, 0])  # rows split over programs of ~this many columns / not
@pytest.mark.parametrize("words", [True, False])  # 2-byte activations read as int32 words of a pair / elements
def test_activation_buffer_matches_primitives(monkeypatch, one_pass_max_k, part_cols, words):
    monkeypatch.setattr(tw, "ONE_PASS_MAX_K", one_pass_max_k)
    monkeypatch.setattr(tw, "QUANT_PART_COLS", part_cols)
    monkeypatch.setattr(tw, "QUANT_WORDS", words)
    cases = [make_x(m, k) for m, k in ((7, 600), (7, 3000), (1, 3000), (2, 2200))]  # M = 1: up to 16 programs a row
    if words:  # bf16 words, K a multiple of 128 (a mask per chunk), and views that are not read as words
        cases += [make_x(3, 1024, torch.bfloat16), make_x(2, 640)]
        cases += [_strided_x(3, 384, torch.float16, how) for how in ("odd", "offset", "odd k")]
        assert cases[-3].stride(0) % 2 == 1 and cases[-2].data_ptr() % 4 == 2 and cases[-1].shape[1] % 2 == 1
        if DEVICE == "cpu":
            cases.append(_strided_x(2, 256, torch.float16, "odd storage"))
            assert cases[-1].storage_offset() % 2 == 1 and cases[-1].data_ptr() % 4 == 0
    groups = (128, 64) if part_cols == 1024 else (128,)  # (64: chunks of 64 columns, 32 words)
    for x, g in ((x, g) for x in cases for g in groups):
        for mode in ("dynamic", "static", "none"):
            s = torch.tensor(0.02, device=DEVICE) if mode == "static" else None
            buf, sx = tw.quantize_activation_triton(x, g, mode, s)
            if mode == "none":
                assert torch.equal(buf.cpu(), tw.activation_layout(x.cpu(), g))
                continue
            scale = s.reshape(1, 1).cpu() if mode == "static" else per_token_scale(x.cpu())
            codes = quantize_activation(x.cpu(), scale).to(torch.int8)
            assert torch.equal(buf.cpu(), tw.activation_layout(codes, g))
            if mode == "dynamic":
                assert torch.equal(sx.cpu(), scale.reshape(-1))


def test_a_failed_flagged_launch_falls_back_with_counters_of_its_own(monkeypatch):
    """A split TMA decode launch on the kept partials (SPLIT_FLAGS) that fails to compile: the GEMM-only op runs that call
    on the Triton kernel with a workspace and counters of its own, zeroed (the same output as without the flags), and
    the failure turns off only the flags ("decode_flags"), whose partials are then not offered again."""
    layer = make_layer(96, 768, 64, False, bias=True)
    x = make_x(5, 768)
    cfg = tw._for_m(tw.CONFIGS, 5)
    a, sx = tw.quantize_activation_triton(x, 64, "dynamic")

    def gemm():
        return tw._launch(a, tw._A_PERMUTED, 0, *layer[:3], sx, 2, layer[3], 5, 768, 64, x.dtype, cfg)

    want = gemm()  # (no TMA here: the Triton kernel with fresh counters)
    noted, made = [], []

    class FailingLaunch:
        flags = torch.zeros(1, dtype=torch.int32)

        def __init__(self, *args, **kwargs):
            pass

        def run(self, *args):
            raise RuntimeError("a Gluon compile error")

    real_workspace = tw._split_k_workspace

    def workspace(*args):
        split, partials, counters = real_workspace(*args)
        counters.fill_(7)  # (fresh memory holds anything)
        made.append(counters)
        return split, partials, counters

    class Cuda:  # (a device `_flag_partials` takes for a GPU's)
        type = "cuda"

    real_flag_partials = tw._flag_partials
    monkeypatch.setattr(tw, "SPLIT_FLAGS", True)
    monkeypatch.setattr(tw.scratch, "kept_zeros", lambda name, numel, device: torch.zeros(numel, dtype=torch.int32))
    monkeypatch.setattr(gluon_fallback, "_FAILED", set())
    assert real_flag_partials(Cuda, 2, 1, 10) is not None
    monkeypatch.setattr(tw, "_flag_partials", lambda device, split, m, n: real_flag_partials(Cuda, split, m, n))
    monkeypatch.setattr(tw, "_use_tma", lambda *args: True)
    monkeypatch.setattr(tw, "_DecodeTmaLaunch", FailingLaunch)
    monkeypatch.setattr(tw, "_split_k_workspace", workspace)
    monkeypatch.setattr(gluon_fallback.warnings, "warn", lambda *args, **kwargs: noted.append(args[0]))
    got = gemm()
    assert gluon_fallback.failed("decode_flags") and not gluon_fallback.failed("decode"), noted
    assert len(made) == 1 and not made[0].any() and torch.equal(got, want)
    assert real_flag_partials(Cuda, 2, 1, 10) is None  # (the counters from now on)


def test_split_rows_give_the_same_fp8_codes_and_zero_the_counters(monkeypatch):
    x = make_x(1, 3000)
    monkeypatch.setattr(tw, "QUANT_PART_COLS", 0)
    whole, s_whole = tw.quantize_activation_triton(x, 128, "dynamic_fp8")
    monkeypatch.setattr(tw, "QUANT_PART_COLS", 128)
    counters = torch.full((37,), 5, dtype=torch.int32, device=DEVICE)
    split, s_split = tw.quantize_activation_triton(x, 128, "dynamic_fp8", counters=counters)
    assert tw._quant_parts(1, 32, 128, True, 3072) == 16
    assert torch.equal(split.view(torch.uint8), whole.view(torch.uint8)) and torch.equal(s_split, s_whole)
    assert not counters.any()


def test_quantization_programs_per_row():
    chunks = 128  # a 11008-column row held in registers (16384 columns of chunks)
    assert tw._quant_parts(1, chunks, 128, True, 11008) == 16
    assert tw._quant_parts(1, 32, 128, True, 4096) == 4
    assert tw._quant_parts(4096, 32, 128, True, 4096) == 1  # enough rows to fill the GPU
    assert tw._quant_parts(16, 128, 128, True, 11008) == 1  # at most QUANT_MAX_PROGRAMS programs
    assert tw._quant_parts(4, 128, 128, True, 11008) == 4
    assert tw._quant_parts(1, 32, 128, False, 28672) == 7  # one per 4096-column block


def test_activation_layout_is_a_permutation():
    x = torch.arange(2 * 130, dtype=torch.float32).reshape(2, 130)
    p = tw.activation_layout(x, 64)
    assert p.shape == (2, 192)
    assert torch.equal(p[:, :4], x[:, [0, 2, 4, 6]])
    assert torch.equal(p[:, 32:34], x[:, [1, 3]])
    assert torch.equal(p.sort(dim=1).values[:, -130:], x)


def test_unsupported_group_falls_back_and_bad_shapes_raise():
    layer = make_layer(16, 96, 32, True)
    x = make_x(3, 96)
    y = tw.w4a8_linear(x, *layer[:3], group_size=32, act_mode="dynamic")  # group 32: reference
    ref = ref_mod.quant_linear_reference(x.cpu(), *(t.cpu() for t in layer[:2]), None, group_size=32)
    assert rel(y, ref) < 1e-6
    layer = make_layer(16, 128, 64, True)
    with pytest.raises(ValueError):
        tw.w4a8_linear(make_x(2, 256), *layer[:3], group_size=64)
    with pytest.raises(ValueError):
        tw.w4a8_linear(make_x(2, 128), *layer[:3], group_size=64, act_mode="static")


def test_registered_backend():
    from fptq.kernels import backends

    assert "triton" in backends()  # importing the module registers it
    x = torch.zeros(1, 128, device=DEVICE)
    picked = select_backend(x, 4, 128, "dynamic").name
    assert (picked == "triton") == (DEVICE == "cuda")


@pytest.mark.parametrize("backend", ["reference", "torch"])
def test_fp8_activation_semantics(backend):
    """act_mode "dynamic_fp8": per-token e4m3 activations (`s = max|x_t| / 448`) times the exact
    int4 weights, in both CPU backends."""
    from fptq.kernels.torch_dequant import quant_linear_torch

    fn = {"reference": ref_mod.quant_linear_reference, "torch": quant_linear_torch}[backend]
    layer = make_layer(24, 256, 64, False, bias=True)
    x = make_x(5, 256, torch.float32).cpu()
    qweight, scales, zeros, bias = (t.cpu() for t in layer)
    y = fn(x, qweight, scales, zeros, group_size=64, act_mode="dynamic_fp8", bias=bias.float())
    m = x.abs().amax(-1, keepdim=True)
    s = torch.where(m > 0, m / 448, torch.ones_like(m))
    xf8 = (x / s).to(torch.float8_e4m3fn).double() * s.double()
    w = ref_mod.integer_weight(qweight, zeros, 4, 64).double().reshape(24, 4, 64) * scales.double()[..., None]
    exact = xf8 @ w.reshape(24, 256).t() + bias.double()
    assert rel(y, exact) < 1e-6
    # e4m3 activations carry ~3 significant bits: a few percent against unquantized activations
    assert rel(y, x.double() @ w.reshape(24, 256).t() + bias.double()) < 0.05


# ------------------------------------------------------------------------------------ GPU only
@pytest.mark.gpu
# (N = 1024: the swap kernel's 64-token tiles at 256 / 300 / 1024 rows by `swap_tile`, 128-token ones at 8192)
@pytest.mark.parametrize("m", [1, 7, 16, 17, 100, 256, 300, 1024, 8192])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gpu_large(m, dtype):
    for g, act_mode in ((128, "dynamic"), (64, "static"), (-1, "none")):
        k = 4096
        gs = k if g == -1 else g
        layer = make_layer(1024, k, gs, g != 64, bias=True, dtype=dtype)
        x = make_x(m, k, dtype)
        act_scale = (x.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
        y = run(x, layer, gs, act_mode, act_scale)
        assert rel(y, dequant_matmul64(x, layer, gs, act_mode, act_scale)) < (1e-2 if dtype == torch.bfloat16 else 2e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("target", [0, 264])
@pytest.mark.parametrize("m", [1, 7, 16])
def test_gpu_pdl_decode(monkeypatch, m, target):
    """Programmatic dependent launch (weights prefetched before `gdc_wait`, split-K counters zeroed
    by the quantization kernel), eagerly and replayed in CUDA graphs (two graphs captured first,
    the second replayed alone: each owns its workspace)."""
    monkeypatch.setattr(tw, "USE_PDL", True)
    monkeypatch.setattr(tw, "DECODE_TARGET_PROGRAMS", target)
    monkeypatch.setattr(tw, "TMA_TARGET_PROGRAMS", target)
    for n, k, g, act_mode in ((4096, 4096, 128, "dynamic"), (1000, 11008, 64, "static"), (12288, 4096, 128, "dynamic")):
        layer = make_layer(n, k, g, True, bias=True)
        x = make_x(m, k)
        act_scale = (x.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
        exact = dequant_matmul64(x, layer, g, act_mode, act_scale)
        assert rel(run(x, layer, g, act_mode, act_scale), exact) < 2e-3
        out = torch.full((m, n), float("nan"), dtype=x.dtype, device="cuda")
        def call(x=x, layer=layer, g=g, act_mode=act_mode, act_scale=act_scale, out=out):
            return tw.w4a8_linear(x, *layer[:3], group_size=g, act_mode=act_mode, act_scale=act_scale,
                                  bias=layer[3], out=out)

        call()
        unused = torch.cuda.CUDAGraph()  # captured, never replayed: must not leave state behind
        with torch.cuda.graph(unused):
            tw.w4a8_linear(x[:1], *layer[:3], group_size=g, act_mode=act_mode, act_scale=act_scale)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            call()
        out.fill_(float("nan"))
        for _ in range(3):
            graph.replay()
        assert rel(out, exact) < 2e-3


@pytest.mark.gpu
@pytest.mark.parametrize("m", [1, 77, 300])
def test_gpu_fp8(m):
    layer = make_layer(256, 640, 64, True, bias=True)
    x = make_x(m, 640)
    out = torch.full((m, 256), float("nan"), dtype=torch.float16, device="cuda")
    y = tw.w4a8_fp8_linear(x, *layer[:3], group_size=64, bias=layer[3], out=out)
    r = ref_mod.quant_linear_reference(x.double().cpu(), *(t if t is None else t.cpu() for t in layer[:3]),
                                       group_size=64, act_mode="dynamic_fp8", bias=layer[3].double().cpu())
    assert rel(y, r) < 3e-3
    # and through QuantLinear's dispatch (act_mode "dynamic_fp8" -> the fp8 kernel on this GPU)
    from fptq.kernels import quant_linear

    z = quant_linear(x, *layer[:3], group_size=64, act_mode="dynamic_fp8", bias=layer[3])
    assert rel(z, r) < 3e-3


@pytest.mark.gpu
@pytest.mark.parametrize("cfg", [tw.PrefillConfig(128, 128, 8, 4, wgmma=True), tw.PrefillConfig(64, 256, 8, 3, wgmma=True),
                                 tw.PrefillConfig(64, 128, 4, 3, wgmma=True, maxnreg=168),
                                 tw.PrefillConfig(128, 128, 4, 4, ws=True), tw.PrefillConfig(128, 64, 4, 6, ws=True),
                                 tw.PrefillConfig(128, 128, 4, 6, swap=True), tw.PrefillConfig(64, 128, 4, 8, swap=True)])
def test_gpu_prefill_wgmma(monkeypatch, cfg):
    """The Gluon Hopper kernels (TMA ring, wgmma, group scales by TMA; one partition, or warp-specialized
    and persistent, with the weights unpacked by a pass before it or inside it, one or two K steps per
    ring slot (K = 384: three steps), the scaling lagging the MMA or not, int8 per-channel without per-step
    scaling; and the kernel with the packed weights as wgmma's register operand, `gluon_swap`, for int8
    symmetric weights, the others falling back to ws, its scaling lagging or not, one or two K steps per
    slot, the next step's weights unpacked under the current wgmma, one scaling per group of 256 / channel)
    of the prefill path:
    int8 (static, dynamic) and fp8 activations, row/column tails (N not a multiple of 4), K tails
    (K = 200: two K steps over a zero-padded buffer), group 64/128/256/per-channel, several column
    chunks, fp16 and bf16 outputs."""
    from fptq.kernels import gluon_prefill, gluon_swap, triton_prefill

    needs_prefill_gluon()

    def no_fallback(*args, **kwargs):
        raise AssertionError("the Triton kernel ran instead of the Gluon one")

    monkeypatch.setattr(triton_prefill, "_gemm", no_fallback)
    gluon_errors_fail(monkeypatch)
    swapped = []
    swap_gemm = gluon_swap.swap_gemm
    monkeypatch.setattr(gluon_swap, "swap_gemm", lambda *args, **kw: swapped.append(1) or swap_gemm(*args, **kw))
    plans, schedule = [], gluon_swap._schedule  # (each launch's plan: `_schedule` keeps them per shape)
    monkeypatch.setattr(gluon_swap, "_schedule", lambda *args: plans.append(schedule(*args)[0]) or schedule(*args))
    monkeypatch.setattr(triton_prefill, "CHUNK_BYTES", 128 * 1024)  # 32 columns of K = 4096: many chunks
    cases = ((1000, 1024, 4096, 128, True, torch.float16), (257, 262, 4096, 64, False, torch.bfloat16),
             (130, 384, 200, -1, True, torch.float16), (2048, 256, 1024, 256, False, torch.float16),
             (3, 256, 512, 128, True, torch.bfloat16), (300, 256, 384, 128, True, torch.float16),
             (1100, 512, 4096, -1, True, torch.float16), (300, 200, 512, 256, True, torch.float16),
             (300, 256, 384, -1, True, torch.float16), (77, 256, 128, -1, True, torch.float16))
    # the warp-specialized kernel: with the weights unpacked inside it (symmetric, int8) and after the pass
    monkeypatch.setattr(gluon_prefill, "FUSED_UNPACK", True)
    monkeypatch.setattr(gluon_prefill, "_sm_count", lambda index: 3)  # persistent CTAs walk several tiles
    # and its consumers: each step scaled under the next step's MMA or right after its own; the swap kernel's
    # consumers likewise, with one or two K steps per ring slot
    if cfg.ws:
        modes = [{"FUSED_MAX_M": f, "LAG_SCALING": lag} for f, lag in ((1 << 30, True), (0, True), (0, False), (1 << 30, False))]
    else:
        # (GROUP_SUMS: one int32 sum per group / channel; DIRECT_SCALES: the scales read from global memory)
        names = ("K_PER_SLOT", "LAG_SCALING", "PREFETCH_WEIGHTS", "GROUP_SUMS", "DIRECT_SCALES")
        ds = 1 << 30  # (DIRECT_SCALES is a row bound: every M, or with 0 none)
        modes = [dict(zip(names, f)) for f in ((1, False, False, False, 0), (1, True, False, False, 0),
                                               (2, False, False, False, 0), (2, False, True, True, 0),
                                               (2, False, False, True, 0), (1, False, False, True, 0),
                                               (2, False, True, False, 0), (2, False, True, True, ds),
                                               (1, False, False, True, ds), (2, False, False, False, ds))
                 ] if cfg.swap else [{}]
    module = gluon_swap if cfg.swap else gluon_prefill
    for (m, n, k, g, sym, dtype), mode in ((c, f) for c in cases for f in modes):
        for name, value in mode.items():
            monkeypatch.setattr(module, name, value)
        gs = k if g == -1 else g
        layer = make_layer(n, k, gs, sym, bias=True, dtype=dtype)
        x = make_x(m, k, dtype)
        tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
        check_int8_modes(x, layer, gs, cfg, tol, (m, n, k, g))
        if cfg.swap and mode is not modes[0]:  # (fp8 takes the ws kernel: the swap settings do not reach it)
            continue
        y = tw.w4a8_fp8_linear(x, *layer[:3], group_size=gs, bias=layer[3], config=cfg)
        r = ref_mod.quant_linear_reference(x.double().cpu(), *(t if t is None else t.cpu() for t in layer[:3]),
                                           group_size=gs, act_mode="dynamic_fp8", bias=layer[3].double().cpu())
        assert rel(y, r) < max(tol, 3e-3), (m, n, k, g, "fp8")
    assert bool(swapped) == cfg.swap  # the swap kernel served its eligible cases (int8, symmetric, g128 / 256 / per-channel)
    if cfg.swap:  # and ran every schedule: scaled per step / per group of 256 / once per channel, with and without PF
        assert {(p["SPG"], p["PF"]) for p in plans} >= {(1, False), (1, True), (2, True), (2, False), (0, True), (0, False)}
        assert {(p["SPG"], p["PF"], p["KSUB"]) for p in plans if p["DS"]} >= {(1, True, 2), (2, True, 2), (0, True, 2),
                                                                              (1, False, 2), (1, False, 1), (0, False, 1)}


def test_prefill_offers_wide_tiles_where_sums_are_one_int32(monkeypatch):
    """`_prefill` lets `swap_tile` consider 256-row tiles (SWAP_WIDE) only for layers whose sums are one int32 per
    output — two-level scales (given as channel scales) or per channel — and from SWAP_WIDE_MIN_M rows on; groups the
    swap kernel does not take (64 columns) get 128-row tiles (run 135: its plan divided by zero for them)."""
    picked = []
    monkeypatch.setattr(tw, "_sms", lambda t: 132)
    monkeypatch.setattr(tw, "prefill_gemm", lambda *a: picked.append(a[-2].block_n))
    q, chan = torch.zeros(4096, 2048, dtype=torch.uint8), torch.ones(4096, dtype=torch.float16)
    for m, group, two_level, want in ((2048, 128, True, 256), (2048, 4096, False, 256), (2048, 128, False, 128),
                                      (512, 128, True, 128), (2048, 64, False, 128), (2048, 64, True, 128)):
        a = torch.zeros(m, 4096, dtype=torch.int8)
        scales = torch.ones(4096, 4096 // group, dtype=torch.float16)
        tw._prefill(a, None, 2, q, scales, None, None, 4096, group, torch.float16, None, None, chan if two_level else None)
        assert picked[-1] == want, (m, group, two_level)

def test_swap_launch_constants_follow_the_module_settings(monkeypatch):
    """`gluon_swap.swap_gemm` keeps its launch constants per shape (`_schedule`), keyed on the module settings too: a
    setting changed between two calls of one shape reaches the second launch (host logic only: the kernel is a
    stand-in that records its constexprs)."""
    from fptq.kernels import gluon_prefill, gluon_swap

    if gluon_swap.gluon is None:
        pytest.skip("no Gluon")
    launched = []

    class Kernel:  # (not a Triton kernel: `fptq.kernels.launch` calls it as `kernel[grid](...)` every time)
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launched.append(kwargs)

    rows = torch.zeros(1, 2 * gluon_swap.ROWS)
    monkeypatch.setattr(gluon_swap, "_swap_kernel", Kernel())
    monkeypatch.setattr(gluon_swap, "_no_rows", lambda index: (rows, gluon_prefill.scale_desc(rows, 128, 128)))
    monkeypatch.setattr(gluon_swap, "_shared_memory", lambda t: 232448)
    monkeypatch.setattr(gluon_prefill, "_sm_count", lambda index: 132)
    m, n, k = 2048, 4096, 4096
    a, q = torch.zeros(m, k, dtype=torch.int8), torch.zeros(n, k // 2, dtype=torch.uint8)
    scales, chan, out = torch.ones(n, k // 128, dtype=torch.float16), torch.ones(n, dtype=torch.float16), torch.empty(m, n)
    installed = gluon_swap.LOADER_SCALES
    for ksub, ahead, chain, loader in ((2, 8192, True, installed), (1, 8192, True, False), (2, 0, True, False),
                                       (2, 8192, False, False), (2, 0, True, True), (1, 8192, True, True),
                                       (2, 8192, False, True), (2, 8192, True, installed)):
        monkeypatch.setattr(gluon_swap, "K_PER_SLOT", ksub)
        monkeypatch.setattr(gluon_swap, "TL_AHEAD", ahead)
        monkeypatch.setattr(gluon_swap, "CHAIN_STEPS", chain)
        monkeypatch.setattr(gluon_swap, "LOADER_SCALES", loader)
        gluon_swap.swap_gemm(a, q, scales, torch.ones(m), 2, None, out, 128, 128, 6, 8, chan, 128)
        tl = 4 if loader and ksub == 2 else 2 if ahead == 0 else 1
        expected = (ksub, tl, chain and ksub == 2 and tl != 2)  # (CH not with the scales a slot ahead)
        assert (launched[-1]["KSUB"], launched[-1]["TL"], launched[-1]["CH"]) == expected, (ksub, ahead, chain, loader)
    assert launched[0] == launched[-1] and not launched[-1]["HAS_BIAS"]
    monkeypatch.setattr(gluon_swap, "LOADER_SCALES", True)  # the loader's copies: both tile heights
    gluon_swap.swap_gemm(a, q, scales, torch.ones(m), 2, None, out, 128, 128, 6, 8, chan, 256)
    assert (launched[-1]["WIDE"], launched[-1]["TL"], launched[-1]["CH"]) == (True, 4, True)
    # scales viewed as int32 pairs: a view into wider rows (odd row stride) or at an odd offset is copied first, never
    # reinterpreted, and then not launched under PDL (the copy kernel would sit between quantization and GEMM)
    wider = torch.ones(n, k // 128 + 1, dtype=torch.float16)[:, : k // 128]
    shifted = torch.ones(n * (k // 128) + 1, dtype=torch.float16)[1:].view(n, k // 128)
    for view in (wider, shifted):
        launch_ = gluon_swap.SwapLaunch(a, q, view, 2, None, 128, 128, 6, 8, chan, 128, pdl=True)
        assert launch_.scales.dtype == torch.int32 and launch_.scales.shape == (n, k // 256) and not launch_.keepable
        assert torch.equal(launch_.scales.view(torch.float16), view) and not launch_.constexprs["PDL"]
        assert launch_.held is view  # (kept alive: plans key on the layer tensor's id)
    launch_ = gluon_swap.SwapLaunch(a, q, scales, 2, None, 128, 128, 6, 8, chan, 128, pdl=True)
    assert launch_.keepable and launch_.constexprs["PDL"] and launch_.scales.data_ptr() == scales.data_ptr()
    with pytest.raises(ValueError, match="fp16"):
        gluon_swap.SwapLaunch(a, q, scales.float(), 2, None, 128, 128, 6, 8, chan, 128)


def test_stream_k_where_whole_tiles_leave_the_last_round_idle():
    """`gluon_swap.stream_k`: the swap kernel shares all tiles' K slots out evenly where whole tiles would leave
    at least STREAM_K's share of the last round's SMs idle, within its rounds — never with as few tiles as SMs
    (a share must be a tile at least)."""
    from fptq.kernels import gluon_swap

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gluon_swap, "STREAM_K", (0.5, 1.5))
        assert gluon_swap.stream_k(160, 132)  # 13B q/k/v/o, 13B down at 512 rows: 1.21 rounds, run as 2
        assert not gluon_swap.stream_k(320, 132)  # at 1024 rows: 2.42 rounds, past 1.5
        assert not gluon_swap.stream_k(132, 132) and not gluon_swap.stream_k(100, 132)
        assert gluon_swap.stream_k(198, 132) and not gluon_swap.stream_k(199, 132)  # 1.5 rounds at most
        mp.setattr(gluon_swap, "STREAM_K", (0.5, 8))
        assert not gluon_swap.stream_k(250, 132) and gluon_swap.stream_k(300, 132)  # the last round 89 % / 27 % busy
        mp.setattr(gluon_swap, "STREAM_K", None)
        assert not gluon_swap.stream_k(320, 132)


@pytest.mark.gpu
def test_gpu_swap_stream_k(monkeypatch):
    """The swap kernel's stream-K schedule (forced, over a few SMs so that programs split tiles unevenly: a tile's
    slots in two programs, joined through the workspace) gives the outputs of whole tiles per program — bit for bit
    where the sums are int32 (two-level scales, per channel), to accumulation order with fp32 group sums (groups of
    128 / 256, scale rows or read directly) — and the same again in a second launch. Row / column tails, bias, K of
    three steps (one K step a slot), 64- and 128-token tiles."""
    from fptq.kernels import gluon_prefill, gluon_swap

    needs_prefill_gluon()
    gluon_errors_fail(monkeypatch)
    taken, schedule = [], gluon_swap._schedule  # (whether each launch ran stream-K, and its TL)
    monkeypatch.setattr(gluon_swap, "_schedule", lambda *a: taken.append((schedule(*a)[5], schedule(*a)[0]["TL"])) or schedule(*a))
    cases = ((1000, 1024, 4096, 128, True), (257, 262, 4096, 256, True), (300, 256, 384, 128, True),
             (1000, 1024, 4096, -1, False), (1000, 1024, 4096, 128, False), (700, 768, 2048, 256, False))
    for (m, n, k, g, two_level), sms, bm in itertools.product(cases, (5, 7), (128, 64)):
        monkeypatch.setattr(gluon_prefill, "_sm_count", lambda index, sms=sms: sms)
        cfg = tw.PrefillConfig(bm, 128, 4, 8 if bm == 64 else 6, swap=True)
        gs = k if g == -1 else g
        w = torch.randn(n, k, generator=torch.Generator().manual_seed(m)) * torch.linspace(0.2, 3, k)
        qw = quantize_weight(w, 4, gs, True, "two-level" if two_level else "fp16")
        layer = (pack_int4(qw.codes).cuda(), qw.scales.cuda(), None, torch.randn(n).half().cuda())
        chan = qw.channel_scales.cuda() if two_level else None
        x = make_x(m, k)
        ys = {}
        for setting in (None, (0.0, 1e9)):
            monkeypatch.setattr(gluon_swap, "STREAM_K", setting)
            monkeypatch.setattr(gluon_swap, "DIRECT_SCALES", 0 if (m, g) == (1000, 128) and not two_level else 512)
            monkeypatch.setattr(gluon_swap, "TL_AHEAD", 0 if m == 257 else 8192)  # (TL 2: the scales one slot ahead)
            monkeypatch.setattr(gluon_swap, "LOADER_SCALES", m == 1000 and sms == 5)  # (TL 4: the loader's copies)
            for rep in range(2):  # (a second launch: the same outputs)
                out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
                ys[setting, rep] = tw.w4a8_linear(x, *layer[:3], group_size=gs, bias=layer[3], config=cfg, out=out,
                                                  channel_scales=chan)
            tiles = -(-m // bm) * -(-n // 128)
            assert taken[-1][0] == (setting is not None and tiles > sms), (m, n, k, g, sms, bm)
            loader = m == 1000 and sms == 5 and g == 128 and two_level  # (TL 4 in those cases; K 4096: two steps a slot)
            assert not two_level or taken[-1][1] == (4 if loader else 2 if m == 257 else 1), (m, n, k, g, sms, bm)
        case = (m, n, k, g, two_level, sms, bm)
        assert torch.isfinite(ys[(0.0, 1e9), 0]).all(), case
        assert tiles > sms or (m, bm) == (300, 128), case  # (every other case splits tiles)
        assert torch.equal(ys[(0.0, 1e9), 0], ys[(0.0, 1e9), 1]), case
        if two_level or g == -1:
            assert torch.equal(ys[(0.0, 1e9), 0], ys[None, 0]), case
        else:
            assert rel(ys[(0.0, 1e9), 0], ys[None, 0]) < 1e-3, case
        assert rel(ys[(0.0, 1e9), 0], dequant_matmul64(x, layer, gs, "dynamic", None)) < 2e-3, case


@pytest.mark.gpu
def test_gpu_swap_under_cudagraph_trees(monkeypatch):
    """A layer compiled with CUDA graphs (mode "reduce-overhead": cudagraph trees) whose first swap launch happens in
    the trees' warm-up / capture: the kept scale-row stand-in (`gluon_swap._no_rows`) is made outside their pool (or
    per call while a capture runs), and every call gives the eager op's outputs."""
    from fptq.kernels import gluon_swap

    needs_prefill_gluon()
    gluon_errors_fail(monkeypatch)
    monkeypatch.setattr(gluon_swap, "_NO_ROWS", {})
    monkeypatch.setattr(scratch, "_KEPT", {})
    qw = quantize_weight(torch.randn(512, 1024, generator=torch.Generator().manual_seed(5)), 4, 128, True, "two-level")
    layer, chan = (pack_int4(qw.codes).cuda(), qw.scales.cuda(), None), qw.channel_scales.cuda()
    fn = lambda x: tw._backend_fn(x, *layer, group_size=128, act_mode="dynamic", channel_scales=chan)  # noqa: E731
    torch._dynamo.reset()
    compiled = torch.compile(fn, mode="reduce-overhead")
    for seed in range(4):  # (warm-up, capture, replays)
        x = make_x(300, 1024, seed=seed)
        got = compiled(x).clone()
        assert torch.isfinite(got).all() and rel(got, fn(x)) < 1e-3, seed  # (traced quantization: a code may differ)
    assert gluon_swap._NO_ROWS  # made on the way, outside the pool
    torch._dynamo.reset()


@pytest.mark.gpu
def test_gpu_swap_wide(monkeypatch):
    """256-row weight tiles in the swap kernel (`PrefillConfig(block_n=256, swap=True)`, WIDE: two 64-row blocks per
    consumer warpgroup) give the 128-row tiles' outputs bit for bit where the sum is one int32 per output (two-level
    scales with the group scales one slot ahead or not, per channel above DIRECT_SCALES rows), with row / column tails
    (N not a multiple of 256), bias, K of three steps (one K step a slot); fp16-scaled groups fall back to 128 rows."""
    from fptq.kernels import gluon_swap

    needs_prefill_gluon()
    gluon_errors_fail(monkeypatch)
    launched = []  # (WIDE, STAGES, TL) of each swap kernel launch

    class Spy:
        def __getitem__(self, grid, kernel=gluon_swap._swap_kernel):
            return lambda *a, **kw: launched.append((kw["WIDE"], kw["STAGES"], kw["TL"])) or kernel[grid](*a, **kw)

    monkeypatch.setattr(gluon_swap, "_swap_kernel", Spy())
    narrow_cfg, wide_cfg = tw.PrefillConfig(128, 128, 4, 6, swap=True), tw.PrefillConfig(128, 256, 4, 3, swap=True)
    cases = ((1000, 1024, 4096, 128, "two-level", 2), (257, 262, 4096, 256, "two-level", 1),
             (300, 640, 384, 128, "two-level", 2), (640, 512, 2048, 128, "two-level", 1), (700, 384, 2048, -1, "fp16", 2),
             (77, 256, 1024, 128, "fp16", 2), (1000, 1000, 4096, 128, "two-level", 4))
    for m, n, k, g, fmt, tl in cases:  # (TL 2: the group scales a slot ahead; 1: before the wait; 4: the loader's copy)
        monkeypatch.setattr(gluon_swap, "TL_AHEAD", 0 if tl == 2 else 1 << 30)
        monkeypatch.setattr(gluon_swap, "LOADER_SCALES", tl == 4)
        gs = k if g == -1 else g
        w = torch.randn(n, k, generator=torch.Generator().manual_seed(m)) * torch.linspace(0.2, 3, k)
        qw = quantize_weight(w, 4, gs, True, fmt)
        layer = (pack_int4(qw.codes).cuda(), qw.scales.cuda(), None, torch.randn(n).half().cuda())
        chan = qw.channel_scales.cuda() if fmt == "two-level" else None
        x = make_x(m, k)
        ys = []
        for cfg in (narrow_cfg, wide_cfg):
            out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
            ys.append(tw.w4a8_linear(x, *layer[:3], group_size=gs, bias=layer[3], config=cfg, out=out, channel_scales=chan))
        case = (m, n, k, g, fmt)
        # 256 rows where the sums are one int32 per output; else 128-row tiles with a full ring
        assert launched[-1][0] == (fmt == "two-level" or g == -1) and (launched[-1][0] or launched[-1][1] >= 4), case
        assert launched[-1][2] == (tl if chan is not None else False), case
        assert torch.isfinite(ys[1]).all(), case
        if chan is not None or g == -1:
            assert torch.equal(ys[0], ys[1]), case
        if tl == 4:  # the loader's copies give the consumers' own loads' outputs bit for bit (one int32 sum)
            monkeypatch.setattr(gluon_swap, "LOADER_SCALES", False)
            y1 = tw.w4a8_linear(x, *layer[:3], group_size=gs, bias=layer[3], config=wide_cfg, channel_scales=chan)
            assert launched[-1][2] == 1 and torch.equal(ys[1], y1), case
        assert rel(ys[1], dequant_matmul64(x, layer, gs, "dynamic", None)) < 2e-3, case


@pytest.mark.gpu
def test_gpu_swap_pdl(monkeypatch):
    """The prefill op on the swap kernel launched as a programmatic dependent of the quantization kernel
    (`SWAP_PDL`: the loader requests its first slots' weights — and TL 4 group scales — before waiting) gives the
    outputs of the plain launch
    bit for bit: five different inputs back to back without a sync (a read of the activations or their scales
    before the quantization kernel is done would give the previous call's), over the schedules the PDL prologue
    meets — medium M, DS and TL, tiles of fewer slots than the ring (one K step a slot), 256-row tiles, per channel,
    static activations, bf16 — and the two launched plainly, stream-K and scale rows (a memset / copy kernel runs
    between the two kernels there); up to 512 rows also captured in a CUDA graph and replayed on new inputs, and
    replayed from a kept launch plan."""
    from fptq.kernels import LaunchPlans, gluon_swap

    needs_prefill_gluon()
    gluon_errors_fail(monkeypatch)
    seen = []  # (PDL, launch_pdl) of each swap launch
    spy_launches(monkeypatch, (gluon_swap._swap_kernel,), lambda args, constexprs, options: seen.append((
        constexprs["PDL"], options.get("launch_pdl", False), constexprs["SK"], constexprs["WIDE"], constexprs["DS"])))
    cases = [  # (M, N, K, group, format, activations, dtype)
        (64, 11008, 4096, 128, "two-level", "dynamic", torch.float16),
        (300, 4096, 4096, 128, "two-level", "dynamic", torch.float16),
        (300, 11008, 640, 128, "two-level", "dynamic", torch.float16),  # 5 slots a tile, fewer than the ring's
        (512, 5120, 5120, 128, "two-level", "dynamic", torch.float16),  # stream-K (1.21 rounds of tiles)
        (700, 4096, 2048, 128, "fp16", "dynamic", torch.float16),  # scale rows by TMA
        (1100, 4096, 4096, 128, "two-level", "static", torch.bfloat16),  # 256-row tiles
        (2048, 4096, 4096, -1, "fp16", "dynamic", torch.float16),  # per channel
    ]
    flags = set()
    for m, n, k, g, fmt, act_mode, dtype in cases:
        gs = k if g == -1 else g
        w = torch.randn(n, k, generator=torch.Generator().manual_seed(m)) * torch.linspace(0.2, 3, k)
        qw = quantize_weight(w, 4, gs, True, fmt)
        qweight, scales = pack_int4(qw.codes).cuda(), qw.scales.cuda()
        chan = qw.channel_scales.cuda() if fmt == "two-level" else None
        bias = torch.randn(n).to(dtype).cuda()
        xs = [make_x(m, k, dtype, seed) for seed in range(5)]
        act_scale = (xs[0].float().abs().amax() / 64).reshape(()) if act_mode == "static" else None
        ys = {}
        for pdl in (False, True):
            monkeypatch.setattr(tw, "SWAP_PDL", pdl)
            del seen[:]
            outs = [torch.full((m, n), float("nan"), dtype=dtype, device="cuda") for _ in xs]
            ys[pdl] = [tw.w4a8_linear(x, qweight, scales, None, group_size=gs, act_mode=act_mode, act_scale=act_scale,
                                      bias=bias, out=out, channel_scales=chan) for x, out in zip(xs, outs)]
            # (no PDL with stream-K or scale rows: a memset of its flags / the rows' copy runs between the two kernels)
            assert len(seen) == len(xs) and all(s[:2] == (pdl and not s[2] and s[4],) * 2 for s in seen), (m, n, k, seen)
            flags.update(s[2:] for s in seen)
        case = (m, n, k, g, fmt, act_mode, dtype)
        for y0, y1 in zip(ys[False], ys[True]):
            assert torch.isfinite(y1).all(), case
            assert torch.equal(y0, y1), case
        if m <= 512:  # captured in a CUDA graph (programmatic edges), replayed on the inputs in reverse order
            monkeypatch.setattr(tw, "SWAP_PDL", True)
            static = [x.clone() for x in xs]
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                gys = [tw.w4a8_linear(x, qweight, scales, None, group_size=gs, act_mode=act_mode, act_scale=act_scale,
                                      bias=bias, channel_scales=chan) for x in static]
            for x_static, x in zip(static, reversed(xs)):
                x_static.copy_(x)
            graph.replay()
            for y_graph, y0 in zip(gys, reversed(ys[False])):
                assert torch.equal(y_graph, y0), (*case, "graph")
            plans = LaunchPlans()  # (the first call decides and keeps its launches, the others replay them)
            for x, y0 in zip(xs, ys[False]):
                y = tw.w4a8_linear(x, qweight, scales, None, group_size=gs, act_mode=act_mode, act_scale=act_scale,
                                   bias=bias, channel_scales=chan, plans=plans)
                assert torch.equal(y, y0), (*case, "plan")
        layer = (qweight, scales, None, bias)
        if chan is None:
            assert rel(ys[True][1], dequant_matmul64(xs[1], layer, gs, act_mode, act_scale)) < 2e-3, case
    assert any(f[0] for f in flags) and any(f[1] for f in flags) and any(not f[2] for f in flags), flags  # SK, WIDE, rows


@pytest.mark.gpu
def test_gpu_swap_short_launches(monkeypatch):
    """A repeat swap launch of one shape on new operands takes the kept compiled kernel (`fptq.kernels.launch`: Triton's
    `run` is not called) and gives what Triton's launch path gives, bit for bit — two-level, fp16 and per-channel
    scales, bias or not, 64- / 128-token and 256-row tiles, stream-K — and the float64 reference's outputs."""
    from fptq.kernels import gluon_swap, launch

    needs_prefill_gluon()
    gluon_errors_fail(monkeypatch)
    runs, real_run = [], gluon_swap._swap_kernel.run
    monkeypatch.setattr(gluon_swap._swap_kernel, "run", lambda *a, **kw: runs.append(1) or real_run(*a, **kw))
    monkeypatch.setattr(launch, "_COMPILED", {})
    monkeypatch.setattr(gluon_swap, "STREAM_K", (0.0, 8))  # (stream-K wherever tiles outnumber the SMs)
    cases = ((1000, 1024, 4096, 128, "two-level", True, tw.PrefillConfig(128, 256, 4, 3, swap=True)),
             (300, 640, 384, 128, "fp16", False, tw.PrefillConfig(128, 128, 4, 6, swap=True)),
             (700, 384, 2048, -1, "fp16", True, tw.PrefillConfig(64, 128, 4, 8, swap=True)),
             (2048, 4096, 1024, 128, "two-level", False, tw.PrefillConfig(128, 128, 4, 6, swap=True)))
    for m, n, k, g, fmt, has_bias, cfg in cases:
        gs = k if g == -1 else g
        qw = quantize_weight(torch.randn(n, k, generator=torch.Generator().manual_seed(n)), 4, gs, True, fmt)
        layer = (pack_int4(qw.codes).cuda(), qw.scales.cuda(), None, torch.randn(n).half().cuda() if has_bias else None)
        chan = qw.channel_scales.cuda() if fmt == "two-level" else None
        before, ys = len(runs), []
        for enabled, seed in ((True, 1), (True, 2), (False, 2)):
            monkeypatch.setattr(launch, "ENABLED", enabled)
            x = make_x(m, k, seed=seed)
            out = torch.full((m, n), float("nan"), dtype=torch.float16, device="cuda")
            ys.append(tw.w4a8_linear(x, *layer[:3], group_size=gs, bias=layer[3], config=cfg, out=out, channel_scales=chan))
        case = (m, n, k, g, fmt, has_bias)
        assert len(runs) - before == 2, case  # the second launch skipped Triton's path
        assert torch.equal(ys[1], ys[2]) and not torch.equal(ys[0], ys[1]), case
        assert rel(ys[1], dequant_matmul64(x, layer, gs, "dynamic", None)) < 2e-3, case
    assert sum(key[0] == id(gluon_swap._swap_kernel) for key in launch._COMPILED) == len(cases)  # (one kept kernel each)
    # fp32 activations: a bias of the dummy's dtype; layers with and without bias of one shape keep two kernels
    # (review of session 15: the key once missed HAS_BIAS, and the second layer ran the first one's kernel)
    qw = quantize_weight(torch.randn(512, 1024, generator=torch.Generator().manual_seed(3)), 4, 128, True, "two-level")
    layer = (pack_int4(qw.codes).cuda(), qw.scales.cuda(), None, torch.randn(512).cuda())
    x = make_x(600, 1024, torch.float32)
    for bias in (None, layer[3], None, layer[3]):
        y = tw.w4a8_linear(x, *layer[:3], group_size=128, bias=bias, config=cases[1][-1], channel_scales=qw.channel_scales.cuda())
        assert rel(y, dequant_matmul64(x, (*layer[:3], bias), 128, "dynamic", None)) < 2e-3, bias is None


@pytest.mark.gpu
@pytest.mark.parametrize("cfg", [tw.PrefillConfig(128, 128, 4, 6, swap=True), tw.PrefillConfig(64, 128, 4, 8, swap=True)])
def test_gpu_two_level_swap(monkeypatch, cfg):
    """Two-level scales (`channel_scales`): the swap kernel multiplies the codes by the integer group scales and
    keeps one int32 sum over K (TL) — the same outputs as the float64 reference and, up to accumulation order, as
    the same layer without its channel scales (scaled per group). Row / column tails, K of three steps (one K step
    a slot), groups of 128 / 256, one or two K steps a slot with and without PF, the group scales loaded one slot
    ahead, before the slot's wait or copied into shared memory by the loader (TL 2 / 1 / 4), fp16 / bf16, static /
    dynamic, and through QuantLinear's dispatch; a slot's two wgmmas chained (CHAIN_STEPS) give the unchained outputs bit for
    bit."""
    from fptq.kernels import gluon_swap

    needs_prefill_gluon()
    gluon_errors_fail(monkeypatch)
    plans, schedule = [], gluon_swap._schedule  # (each launch's plan: `_schedule` keeps them per shape)
    monkeypatch.setattr(gluon_swap, "_schedule", lambda *args: plans.append(schedule(*args)[0]) or schedule(*args))
    cases = ((1000, 1024, 4096, 128, torch.float16), (257, 262, 4096, 256, torch.bfloat16), (300, 256, 384, 128, torch.float16),
             (77, 200, 1024, 128, torch.float16), (2048, 384, 2048, 256, torch.float16))
    chained = 0
    for (m, n, k, g, dtype), (ksub, pf, tl) in itertools.product(
            cases, ((2, True, 2), (2, True, 1), (2, False, 2), (1, False, 2), (1, False, 1), (2, False, 1), (2, True, 4),
                    (2, False, 4))):
        monkeypatch.setattr(gluon_swap, "K_PER_SLOT", ksub)
        monkeypatch.setattr(gluon_swap, "PREFETCH_WEIGHTS", pf)
        monkeypatch.setattr(gluon_swap, "TL_AHEAD", 0 if tl == 2 else 1 << 30)  # the group scales a slot ahead,
        monkeypatch.setattr(gluon_swap, "LOADER_SCALES", tl == 4)  # copied by the loader, or before the slot's wait
        w = torch.randn(n, k, generator=torch.Generator().manual_seed(m)) * torch.linspace(0.2, 3, k)
        qw = quantize_weight(w, 4, g, True, "two-level")
        layer = (pack_int4(qw.codes).cuda(), qw.scales.cuda(), None, torch.randn(n).to(dtype).cuda())
        chan = qw.channel_scales.cuda()
        x = make_x(m, k, dtype)
        tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
        for act_mode in ("static", "dynamic"):
            act_scale = (x.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
            out = torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
            y = tw.w4a8_linear(x, *layer[:3], group_size=g, act_mode=act_mode, act_scale=act_scale, bias=layer[3],
                               config=cfg, out=out, channel_scales=chan)
            plan = plans[-1]  # (y's plan: the per-group run below records its own)
            # (the loader's copies: groups of 128 and two K steps a slot only; else before the wait)
            two_steps = ksub == 2 and (k // 128) % 2 == 0
            assert plan["TL"] == (tl if tl != 4 or (g == 128 and two_steps) else 1), (m, n, k, g, tl)
            assert torch.isfinite(y).all()
            assert rel(y, dequant_matmul64(x, layer, g, act_mode, act_scale)) < tol, (m, n, k, g, ksub, pf, act_mode)
            grouped = run(x, layer, g, act_mode, act_scale, cfg)  # the same layer scaled per group
            assert rel(y, grouped) < tol / 2, (m, n, k, g, ksub, pf, act_mode)
            if plan["CH"]:  # chained: the unchained slot's outputs, bit for bit (one int32 sum over K)
                chained += 1
                monkeypatch.setattr(gluon_swap, "CHAIN_STEPS", False)
                unchained = tw.w4a8_linear(x, *layer[:3], group_size=g, act_mode=act_mode, act_scale=act_scale,
                                           bias=layer[3], config=cfg, channel_scales=chan)
                monkeypatch.setattr(gluon_swap, "CHAIN_STEPS", True)
                assert not plans[-1]["CH"] and torch.equal(y, unchained), (m, n, k, g, ksub, pf, act_mode)
    assert chained >= 8 or not gluon_swap.CHAIN_STEPS
    # QuantLinear: a two-level layer hands its channel scales to the swap kernel (default dispatch, 512 rows)
    from fptq.nn.quant_linear import QuantLinear

    linear = torch.nn.Linear(1024, 512, bias=False).half().cuda()
    q = QuantLinear.from_linear(linear, group_size=128, scale_format="two-level", act_mode="dynamic")
    x = make_x(512, 1024)
    plans.clear()
    y = q(x)
    assert plans and plans[-1]["TL"]
    r = ref_mod.quant_linear_reference(x.cpu().double(), q.qweight.cpu(), q.scales.cpu(), None, group_size=128,
                                       act_mode="dynamic")
    assert rel(y, r) < 2e-3


class TritonForbidden:
    """Stands in for `tw._w4a8_kernel` where the Gluon TMA decode kernel must run."""

    def __getitem__(self, grid):
        raise AssertionError("the Triton kernel ran instead of the Gluon one")


def needs_gluon_hopper():
    import triton

    from fptq.kernels import gluon_decode

    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("needs a Hopper GPU")
    if gluon_decode.gluon is None:
        assert triton.__version__ != "3.6.0", "Gluon did not import on the Triton the kernel was written for"
        pytest.skip("this Triton has no usable Gluon")


@pytest.mark.gpu
def test_gpu_decode_long_k_stays_on_tma(monkeypatch):
    """With the installed program targets, wide and long-K layers at M = 1 run the TMA decode kernel: 22016 x 4096
    unsplit, 8192 x 28672 (groups of 128 and 256) split until each slice's group scales fit its staging."""
    needs_gluon_hopper()
    monkeypatch.setattr(tw, "_w4a8_kernel", TritonForbidden())
    for n, k, g in ((22016, 4096, 128), (8192, 28672, 128), (8192, 28672, 256)):
        layer = make_layer(n, k, g, True, bias=True)
        x = make_x(1, k)
        assert rel(run(x, layer, g, "dynamic"), dequant_matmul64(x, layer, g, "dynamic", None)) < 2e-3, (n, k, g)
    assert not gluon_fallback.failed("decode")


@pytest.mark.gpu
@pytest.mark.parametrize("cfg", [tw.KernelConfig(16, 64, 4, 3, split_k=16, tma_stages=3),
                                 tw.KernelConfig(16, 32, 4, 3, split_k=3, tma_stages=2),
                                 tw.KernelConfig(16, 128, 8, 3, split_k=1, tma_stages=4)])
@pytest.mark.parametrize("pdl", [False, True])
def test_gpu_decode_gluon_tma(monkeypatch, cfg, pdl):
    """The Gluon TMA decode kernel (`gluon_decode`): M = 1..16, column tails, K half steps, group
    64/128/256/per-channel, symmetric and asymmetric, bias, static and dynamic int8, fp16 and bf16,
    split-K with an uneven last slice; with and without programmatic dependent launch. A K that TMA
    cannot address (K / 2 not a multiple of 16), or a program with more than TMA_MAX_GROUPS groups,
    takes the Triton kernel."""
    needs_gluon_hopper()
    triton_kernel = tw._w4a8_kernel
    monkeypatch.setattr(tw, "USE_PDL", pdl)
    monkeypatch.setattr(tw, "DECODE_TARGET_PROGRAMS", 0)  # the config's split as given
    monkeypatch.setattr(tw, "TMA_TARGET_PROGRAMS", 0)
    cases = ((1, 1000, 4096, 128, True, torch.float16), (3, 262, 4096, 64, False, torch.bfloat16),
             (16, 384, 256, -1, True, torch.float16), (7, 256, 1024, 256, False, torch.float16),
             (1, 100, 192, 64, True, torch.float16), (16, 4096, 11008, 128, False, torch.bfloat16),
             (3, 128, 256, -1, False, torch.float16), (2, 96, 160, -1, True, torch.float16),  # K = 160: a half step
             (5, 96, 160, -1, False, torch.float32), (2, 48, 200, -1, True, torch.float16))  # K = 200: Triton
    for m, n, k, g, sym, dtype in cases:
        gs = k if g == -1 else g
        sub = tw._sub_chunk(gs)
        split = tw._split_k(cfg, m, n, -(-k // sub), tw._tma_slice_steps(True, k, gs))  # (targets 0: the config's)
        too_many_groups = g != -1 and tw._groups_per_program(k, sub, split, gs) > tw.TMA_MAX_GROUPS
        monkeypatch.setattr(tw, "_w4a8_kernel", triton_kernel if (k // 2) % 16 or too_many_groups else TritonForbidden())
        layer = make_layer(n, k, gs, sym, bias=m != 7, dtype=dtype)
        x = make_x(m, k, dtype)
        tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
        check_int8_modes(x, layer, gs, cfg, tol, (m, n, k, g))
    assert not gluon_fallback.failed("decode")


@pytest.mark.gpu
def test_gpu_fused_decode_m1(monkeypatch):
    """The one-launch M = 1 op (FUSED_DECODE_M1): the same output bit for bit as the two launches (same codes and
    scale, same split and summation order) and the reference's within accumulation order, for dynamic and static
    activations (the layer's scale, clamping the row's largest values), on split-K and unsplit
    layers, column tails, K not a multiple of 128 (a half step), groups of 64 / 128 / 256 and per channel,
    symmetric and asymmetric, bias, fp16 and bf16, an all-zero row (scale 1) and a bf16 row below 2**-100 * 127
    (the division instead of the reciprocal), a row with NaNs, -0, a subnormal and its largest magnitude negative
    (both absmax passes leave the NaNs out alike); outputs poisoned; and it is the kernel that runs (no quantization
    launch, no Triton kernel). The launch split along K (FUSED_KSUB off: its unsplit form adds the same products in
    another order, `test_gpu_fused_ksub_agrees`)."""
    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    monkeypatch.setattr(tw, "FUSED_KSUB", 0)
    quantize, triton_kernel = tw.quantize_activation_triton, tw._w4a8_kernel

    def forbidden(*args, **kwargs):
        raise AssertionError("the quantization kernel ran: not the one-launch path")

    cases = ((4096, 4096, 128, True, torch.float16), (22016, 4096, 128, True, torch.float16),  # split 5 / unsplit
             (1000, 4096, 128, False, torch.bfloat16), (8192, 28672, 128, True, torch.float16),  # long K: 4 slices
             (1024, 4096, 256, False, torch.float16), (262, 4096, 64, True, torch.bfloat16),
             (384, 4096, -1, True, torch.float16), (96, 160, -1, False, torch.float16),  # K = 160: a half step
             (300, 1056, 32 * 33, True, torch.bfloat16))  # per channel, K = 1056: 8 steps and a quarter
    for n, k, g, sym, dtype in cases:
        gs = k if g == -1 else g
        layer = make_layer(n, k, gs, sym, bias=n % 2 == 0, dtype=dtype)
        xs = [make_x(1, k, dtype), torch.zeros(1, k, dtype=dtype, device="cuda")]
        if dtype == torch.bfloat16:
            xs.append((make_x(1, k, torch.float32) * 1e-32).to(dtype))
        special = make_x(1, k, dtype)
        special[0, 11], special[0, 13] = -4 * special.abs().amax(), torch.finfo(dtype).tiny / 4  # (a subnormal)
        special[0, 3], special[0, k - 2], special[0, 7] = float("nan"), float("nan"), -0.0
        xs.append(special)
        for (i, x), act_mode in itertools.product(enumerate(xs), ("dynamic", "static")):
            # (static: a per-tensor scale that clamps the row's largest values, as calibrated scales do)
            act_scale = (torch.tensor(max(x.float().nan_to_num(0).abs().amax().item(), 1.0) / 100, device="cuda")
                         if act_mode == "static" else None)
            monkeypatch.setattr(tw, "FUSED_DECODE_M1", False)
            monkeypatch.setattr(tw, "quantize_activation_triton", quantize)
            monkeypatch.setattr(tw, "_w4a8_kernel", triton_kernel)
            two = run(x, layer, gs, act_mode, act_scale)
            monkeypatch.setattr(tw, "FUSED_DECODE_M1", True)
            monkeypatch.setattr(tw, "quantize_activation_triton", forbidden)
            monkeypatch.setattr(tw, "_w4a8_kernel", TritonForbidden())
            one = run(x, layer, gs, act_mode, act_scale)
            case = (n, k, g, dtype, i, act_mode)
            assert torch.equal(one, two), (case, (one.float() - two.float()).abs().max().item())
            if i == 0 and n * k < 1 << 27:  # (the float64 reference of 8192 x 28672 would take 2 GB; equal suffices)
                assert rel(one, dequant_matmul64(x, layer, gs, act_mode, act_scale)) < (
                    1e-2 if dtype == torch.bfloat16 else 2e-3), case
    assert not gluon_fallback.failed("decode")


def test_fused_pairs_only_where_they_pay(monkeypatch):
    """FUSED_PAIR's rule (runs 242-243): symmetric groups of 128 or more, an even number of steps in every full K
    slice, at most FUSED_PAIR_MAX_PER_SM programs an SM."""
    monkeypatch.setattr(tw, "_sms", lambda t: 132)
    q = torch.zeros(1, 1)
    assert tw._pairs_pay(q, 4096, 128, None, 2, (64, 2))  # 32 steps, 16 a slice
    assert not tw._pairs_pay(q, 4096, 128, None, 5, (64, 5))  # 7-step slices (4096 x 4096 at M = 1)
    assert tw._pairs_pay(q, 28672, 128, None, 4, (128, 4))  # 70B down: 56-step slices, 512 programs
    assert not tw._pairs_pay(q, 8192, 128, None, 1, (896, 1))  # 70B gate+up fused: 6.8 programs an SM
    assert tw._pairs_pay(q, 8192, 128, None, 1, (448, 1))  # 70B gate/up: 3.4
    assert not tw._pairs_pay(q, 4096, 64, None, 2, (64, 2))  # 64-column steps: not measured
    assert not tw._pairs_pay(q, 4096, 4096, None, 2, (64, 2))  # per channel
    assert not tw._pairs_pay(q, 4096, 128, torch.zeros(1), 2, (64, 2))  # zero points


def test_fused_ksub_only_where_it_pays(monkeypatch):
    """FUSED_KSUB's rule (runs 262-263, narrowed by run 271 once split launches reduce without a counter): rows of at
    most 8192 columns, symmetric groups of 128 or more, a launch whose slices would be shorter than
    FUSED_KSUB_SHORT_SLICE steps or an unsplit one of 8192-column rows; KSUB 4 unless rows of 4096 columns would take
    more than FUSED_KSUB_SHORT_PROGRAMS programs (then 2); enough programs; a TMA box of at most 256 bytes."""
    cfg = tw._for_m(tw.CONFIGS, 1)

    def ksub(n, k, split, g=128, zeros=None):
        return tw._fused_ksub(n, k, g, zeros, cfg, split)

    assert ksub(4096, 4096, 5) == 4  # 4096 x 4096: 256 programs of 16 rows instead of 5 slices of 7 steps
    assert ksub(11008, 4096, 2) == 1 and ksub(12288, 4096, 2) == 1  # slices of 16 steps: the split launch
    assert ksub(22016, 4096, 1) == 1  # 7B gate+up fused: unsplit already, rows of 4096
    assert ksub(5120, 5120, 4) == 1 and ksub(13824, 5120, 2) == 1 and ksub(8192, 8192, 3) == 1  # 10-22 steps
    assert ksub(10240, 8192, 2) == 1  # 70B q/k/v fused: split, 32 steps a slice
    assert ksub(28672, 8192, 1) == 4 and ksub(57344, 8192, 1) == 4  # unsplit, rows of 8192: longer row segments
    assert ksub(32768, 4096, 5) == 2  # short slices, KSUB 4 would take 2048 programs
    assert ksub(4096, 11008, 5) == 1 and ksub(8192, 28672, 4) == 1  # rows past 8192 columns
    assert ksub(1000, 4096, 5) == 1  # 63 programs
    assert ksub(4096, 4096, 5, g=64) == 1 and ksub(4096, 4096, 5, g=4096) == 1  # 64-column steps, per channel
    assert ksub(4096, 4096, 5, zeros=torch.zeros(1)) == 1
    assert ksub(4096, 4096, 5, g=256) == 4
    monkeypatch.setattr(tw, "FUSED_KSUB", 0)
    assert ksub(4096, 4096, 5) == 1
    monkeypatch.setattr(tw, "FUSED_KSUB", 2)
    assert ksub(22016, 4096, 1) == 2 and ksub(4096, 4096, 5) == 2  # (forced: wherever the format allows)
    assert ksub(4096, 256, 5) == 2 and ksub(4096, 128, 5) == 1  # (forced: at least KSUB steps, a box within a row)
    monkeypatch.setattr(tw, "FUSED_KSUB", 4)
    assert ksub(4096, 384, 5) == 1 and ksub(4096, 512, 5) == 4
    monkeypatch.setattr(tw, "FUSED_KSUB", 8)
    assert ksub(4096, 4096, 5) == 1  # a 512-byte box: past TMA's 256 elements (run 262)


def test_decode_ksub_only_where_it_pays(monkeypatch):
    """DECODE_KSUB's rule (run 271): KSUB 2 on the 2-8-row GEMM where the launch is unsplit with at least
    DECODE_KSUB_MIN_PROGRAMS programs of 32 rows (70B gate+up fused); symmetric groups of 128 or more; forced values
    within 16 / KSUB rows."""
    cfg = tw._for_m(tw.CONFIGS, 4)

    def ksub(m, n, k, g=128, zeros=None):
        split = tw._split_k(cfg, m, n, -(-k // 128), tw._tma_slice_steps(True, k, g))
        return tw._decode_ksub(m, n, k, g, zeros, cfg, split)

    assert ksub(4, 57344, 8192) == 2 and ksub(8, 57344, 8192) == 2  # 70B gate+up fused: 1792 programs of 32 rows
    assert ksub(4, 11008, 4096) == 1 and ksub(2, 13824, 5120) == 1 and ksub(8, 12288, 4096) == 1  # split 2: a tie
    assert ksub(4, 10240, 8192) == 1  # 70B q/k/v fused
    assert ksub(4, 4096, 4096) == 1 and ksub(4, 8192, 28672) == 1 and ksub(4, 8192, 8192) == 1  # split
    assert ksub(4, 22016, 4096) == 1 and ksub(4, 28672, 8192) == 1  # unsplit launches of 344 / 448 tiles
    assert ksub(9, 57344, 8192) == 1  # past 16 / 2 rows
    assert ksub(4, 16384, 53248) == 1  # split past two by long K (and 208 steps: past TMA_MAX_GROUPS slots)
    assert ksub(4, 57344, 8192, g=64) == 1 and ksub(4, 57344, 8192, zeros=torch.zeros(1)) == 1
    monkeypatch.setattr(tw, "DECODE_KSUB", 0)
    assert ksub(4, 57344, 8192) == 1
    monkeypatch.setattr(tw, "DECODE_KSUB", 4)
    assert ksub(4, 4096, 4096) == 4 and ksub(5, 4096, 4096) == 1
    monkeypatch.setattr(tw, "DECODE_KSUB", 2)
    assert ksub(4, 8192, 28672) == 1  # (forced: 112 slots of scales, past TMA_MAX_GROUPS)


def test_ksub_launch_plan():
    """An unsplit KSUB launch: 64 / KSUB weight rows a program (its grid), one K slice, a weight box of KSUB steps of
    those rows, the group scales staged by slot (GROUPS >= the slots), the codes of every step, no pairs, no held
    slice."""
    from fptq.kernels import gluon_decode

    if gluon_decode.gluon is None:
        pytest.skip("this Triton has no usable Gluon")
    cfg = tw._for_m(tw.CONFIGS, 1)
    for n, k, ksub in ((4096, 4096, 4), (11008, 4096, 2), (1000, 1152, 4)):
        qweight = torch.zeros(n, k // 2, dtype=torch.uint8)
        scales = torch.zeros(n, k // 128, dtype=torch.float16)
        plan = tw._DecodeTmaLaunch(qweight, scales, None, None, 1, k, 128, cfg, 1, 0, False, fused=True, ksub=ksub)
        c = plan.constexprs
        assert plan.grid == (-(-n // (64 // ksub)), 1) and plan.w_desc.block_shape == [64 // ksub, 64 * ksub]
        steps = -(-k // 128)
        assert (c["KSUB"], c["SPLIT_K"], c["PAIR"], c["HOLD"], c["FUSED_ROW"]) == (ksub, 1, 0, False, True)
        assert c["GROUPS"] >= -(-steps // ksub) and c["A_STEPS"] >= max(steps, ksub), (n, k, c)
    # the 2-16-row GEMM: an activation box of 16 / KSUB rows (made on the first call's buffer)
    a = torch.zeros(8, 4096, dtype=torch.int8)
    plan = tw._DecodeTmaLaunch(torch.zeros(11008, 2048, dtype=torch.uint8), torch.zeros(11008, 32, dtype=torch.float16),
                               None, None, 8, 4096, 128, tw._for_m(tw.CONFIGS, 8), 1, 2, False, a, fused=False, ksub=2)
    assert plan.grid == (344, 1) and plan.w_desc.block_shape == [32, 128] and plan.a_desc.block_shape == [8, 64]
    assert plan.a_rows == 8 and plan.constexprs["KSUB"] == 2 and not plan.constexprs.get("FUSED_ROW", False)


def test_paired_descriptors_keep_one_step_activation_tiles():
    """With two K steps a ring slot the weight box is two steps wide and an activation box stays one step's half, as
    the kernel's `_issue` loads them (run 246's failure: a two-step activation box, when the 2-16-row GEMM took pairs)."""
    from fptq.kernels import gluon_decode

    if gluon_decode.gluon is None:
        pytest.skip("this Triton has no usable Gluon")
    qweight, a = torch.zeros(4096, 2048, dtype=torch.uint8), torch.zeros(16, 4096, dtype=torch.int8)
    for pair, box in ((False, 64), (True, 128)):
        w_desc, a_desc = gluon_decode.tma_descriptors(a, qweight, 64, 128, pair)
        assert (w_desc.block_shape, a_desc.block_shape) == ([64, box], [16, 64]), pair
    assert gluon_decode.tma_descriptors(None, qweight, 64, 128, True)[1] is None  # (FUSED_ROW)


@pytest.mark.gpu
def test_gpu_fused_pairs_agree(monkeypatch):
    """Two K steps a weight-ring slot (FUSED_PAIR 1 and 2) give the one-launch op's output bit for bit: the same
    steps summed in the same order, on launches that take pairs (split with even slices, unsplit) and, for the rule,
    ones that do not (odd slices); dynamic and static, fp16 and bf16, NaN rows, with the RMSNorm inside. (Split
    launches: FUSED_KSUB off.)"""
    needs_gluon_hopper()
    monkeypatch.setattr(tw, "FUSED_KSUB", 0)
    from fptq.kernels import gluon_decode, launch
    from fptq.kernels.prologue import Prologue

    seen = []
    real_launch = launch.launch

    def spy(kernel, grid, key, args, constexprs, options, kept=()):
        if kernel is gluon_decode._decode_tma_kernel:
            seen.append(constexprs.get("PAIR"))
        return real_launch(kernel, grid, key, args, constexprs, options, kept)

    monkeypatch.setattr(launch, "launch", spy)
    cases = (((22016, 4096, torch.float16), True), ((8192, 28672, torch.bfloat16), True),
             ((1000, 1152, torch.float16), None), ((4096, 4096, torch.float16), False))  # (1000 x 1152: 9 steps)
    for (n, k, dtype), paired in cases:
        layer = make_layer(n, k, 128, True, bias=n == 1000, dtype=dtype)
        x = make_x(1, k, dtype, seed=n)
        x[0, 5] = float("nan")
        norm = Prologue("rmsnorm", (1 + 0.5 * torch.randn(k, generator=torch.Generator().manual_seed(k))).to(dtype).cuda(),
                        1e-5)
        for act_mode, prologue in itertools.product(("dynamic", "static"), (None, norm)):
            act_scale = torch.tensor(0.05, device="cuda") if act_mode == "static" else None
            outs, modes = [], []
            for pair in (0, 1, 2):
                monkeypatch.setattr(tw, "FUSED_PAIR", pair)
                seen.clear()
                qweight, scales, zeros, bias = layer
                outs.append(tw.w4a8_linear(x, qweight, scales, zeros, group_size=128, act_mode=act_mode,
                                           act_scale=act_scale, bias=bias, prologue=prologue))
                modes.append(seen[-1])
            case = (n, k, dtype, act_mode, prologue is not None)
            assert all(torch.equal(outs[0].nan_to_num(7.0), o.nan_to_num(7.0)) for o in outs[1:]), case
            if paired is not None:
                assert modes == ([0, 1, 2] if paired else [0, 0, 0]), (case, modes)


@pytest.mark.gpu
def test_gpu_fused_ksub_agrees(monkeypatch):
    """The unsplit one-launch M = 1 op with KSUB K steps a ring slot (`gluon_decode` KSUB) against the split launch
    (FUSED_KSUB off): the same products added in another order, so within 2e-4 relative (1e-3 in bf16) and as close
    to the float64 reference; on the rule's shape (4096 x 4096: KSUB 4) and, forced, 11008 x 4096 at KSUB 2, 8192 x
    8192 at 4, a column tail with a last slot of one step (1000 x 1152: 9 steps) at KSUB 4 and 2; dynamic and static,
    fp16 and bf16, bias, with the RMSNorm inside, a row with a NaN; outputs poisoned; one launch, one K slice, the
    KSUB asked for; captured in a CUDA graph without the split-K counters' buffer (it needs none) and replayed on a new
    row, the eager output bit for bit."""
    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    monkeypatch.setattr(tw, "DECODE_KSUB", 0)  # (the one launch or nothing: not the two launches' KSUB GEMM)
    from fptq.kernels import gluon_decode
    from fptq.kernels.prologue import Prologue

    seen = []  # (KSUB, K slices, FUSED_ROW) of each decode launch
    spy_launches(monkeypatch, (gluon_decode._decode_tma_kernel,), lambda args, constexprs, options: seen.append(
        (constexprs.get("KSUB", 1), constexprs["SPLIT_K"], constexprs.get("FUSED_ROW", False))))
    monkeypatch.setattr(tw, "FUSED_KSUB_MIN_PROGRAMS", 1)
    cases = ((4096, 4096, torch.float16, -1, 4, 128), (11008, 4096, torch.bfloat16, 2, 2, 128),
             (8192, 8192, torch.float16, 4, 4, 128), (1000, 1152, torch.float16, 4, 4, 128),
             (1000, 1152, torch.bfloat16, 2, 2, 128),
             # groups of 256 / 512 (a group over a slot's steps), rows of 4 and 2 steps (a box of a whole row)
             (4096, 4096, torch.float16, -1, 4, 256), (2048, 2048, torch.bfloat16, 4, 4, 512),
             (1024, 512, torch.float16, 4, 4, 128), (1024, 256, torch.float16, 2, 2, 128))
    for n, k, dtype, setting, want, gs in cases:
        layer = make_layer(n, k, gs, True, bias=n == 1000, dtype=dtype)
        clean = make_x(1, k, dtype, seed=n)
        nan_row = clean.clone()
        nan_row[0, 5] = float("nan")
        norm = Prologue("rmsnorm", (1 + 0.5 * torch.randn(k, generator=torch.Generator().manual_seed(k))).to(dtype).cuda(),
                        1e-5)
        tol = 1e-3 if dtype == torch.bfloat16 else 2e-4
        for x, act_mode, prologue in itertools.product((clean, nan_row), ("dynamic", "static"), (None, norm)):
            act_scale = torch.tensor(0.05, device="cuda") if act_mode == "static" else None
            outs = []
            for ksub in (0, setting):
                monkeypatch.setattr(tw, "FUSED_KSUB", ksub)
                seen.clear()
                qweight, scales, zeros, bias = layer
                out = torch.full((1, n), float("nan"), dtype=dtype, device="cuda")
                tw.w4a8_linear(x, qweight, scales, zeros, group_size=gs, act_mode=act_mode, act_scale=act_scale,
                               bias=bias, prologue=prologue, out=out)
                outs.append(out)
            case = (n, k, dtype, setting, act_mode, prologue is not None, x is nan_row)
            assert seen == [(want, 1, True)], (case, seen)  # (the one launch, not the two launches' KSUB GEMM)
            split, unsplit = outs
            assert torch.equal(split.isnan(), unsplit.isnan()), case
            ok = ~split.isnan()
            assert rel(unsplit[ok], split[ok]) < tol, (case, rel(unsplit[ok], split[ok]))
            if x is clean and prologue is None:
                want64 = dequant_matmul64(x, layer, gs, act_mode, act_scale)
                assert rel(unsplit, want64) < 10 * tol, case
        monkeypatch.setattr(tw, "FUSED_KSUB", setting)
        monkeypatch.setattr(scratch, "_KEPT", {})
        qweight, scales, zeros, bias = layer
        x = clean.clone()
        out = torch.full((1, n), float("nan"), dtype=dtype, device="cuda")
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            tw.w4a8_linear(x, qweight, scales, zeros, group_size=gs, act_mode="dynamic", bias=bias, out=out)
        x.copy_(make_x(1, k, dtype, seed=n + 1))
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        eager = tw.w4a8_linear(x, qweight, scales, zeros, group_size=gs, act_mode="dynamic", bias=bias)
        assert torch.equal(out, eager) and not scratch._KEPT, (n, k, dtype, setting)


@pytest.mark.gpu
def test_gpu_decode_ksub_agrees(monkeypatch):
    """The 2-16-row GEMM unsplit with KSUB K steps a slot over 16 / KSUB rows (DECODE_KSUB) against the split launch
    (off; for the rule's layer the unsplit 64-row launch): within 2e-4 relative (1e-3 in bf16) and of the float64
    reference; the rule (an unsplit launch of many programs: 17408 x 1024 at 4 rows, its threshold lowered to that
    layer) and, forced, 11008 x 4096 (split in two
    otherwise) at 2 / 3 / 8 rows, KSUB 4 at 4 rows of 4096 x 4096 and KSUB 2 at 5 rows of a column tail with a last
    slot of one step (1000 x 1152); dynamic and static, fp16 and bf16, bias, the RMSNorm inside the quantization
    kernel; outputs poisoned; one K slice and the KSUB asked for; a CUDA graph of the op replayed on new rows gives
    the eager output bit for bit."""
    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    from fptq.kernels import gluon_decode
    from fptq.kernels.prologue import Prologue

    seen = []  # (KSUB, K slices, FUSED_ROW) of each decode launch
    spy_launches(monkeypatch, (gluon_decode._decode_tma_kernel,), lambda args, constexprs, options: seen.append(
        (constexprs.get("KSUB", 1), constexprs["SPLIT_K"], constexprs.get("FUSED_ROW", False))))
    monkeypatch.setattr(tw, "FUSED_KSUB_MIN_PROGRAMS", 1)
    monkeypatch.setattr(tw, "DECODE_KSUB_MIN_PROGRAMS", 544)
    cases = ((17408, 1024, 4, torch.float16, -1, 2), (11008, 4096, 2, torch.float16, 2, 2),
             (11008, 4096, 3, torch.bfloat16, 2, 2), (11008, 4096, 8, torch.float16, 2, 2), (4096, 4096, 4, torch.float16, 4, 4),
             (1000, 1152, 5, torch.bfloat16, 2, 2))
    for n, k, m, dtype, setting, want in cases:
        layer = make_layer(n, k, 128, True, bias=n == 1000, dtype=dtype)
        x = make_x(m, k, dtype, seed=n + m)
        norm = Prologue("rmsnorm", (1 + 0.5 * torch.randn(k, generator=torch.Generator().manual_seed(k))).to(dtype).cuda(),
                        1e-5)
        tol = 1e-3 if dtype == torch.bfloat16 else 2e-4
        qweight, scales, zeros, bias = layer
        for act_mode, prologue in itertools.product(("dynamic", "static"), (None, norm)):
            act_scale = torch.tensor(0.05, device="cuda") if act_mode == "static" else None
            outs = []
            for ksub in (0, setting):
                monkeypatch.setattr(tw, "DECODE_KSUB", ksub)
                seen.clear()
                out = torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
                tw.w4a8_linear(x, qweight, scales, zeros, group_size=128, act_mode=act_mode, act_scale=act_scale,
                               bias=bias, prologue=prologue, out=out)
                outs.append(out)
            case = (n, k, m, dtype, setting, act_mode, prologue is not None)
            assert seen == [(want, 1, False)], (case, seen)
            assert not outs[1].isnan().any() and rel(outs[1], outs[0]) < tol, (case, rel(outs[1], outs[0]))
            if prologue is None:
                assert rel(outs[1], dequant_matmul64(x, layer, 128, act_mode, act_scale)) < 10 * tol, case
        monkeypatch.setattr(tw, "DECODE_KSUB", setting)
        xg = x.clone()
        out = torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            tw.w4a8_linear(xg, qweight, scales, zeros, group_size=128, act_mode="dynamic", bias=bias, out=out)
        xg.copy_(make_x(m, k, dtype, seed=n + m + 1))
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        eager = tw.w4a8_linear(xg, qweight, scales, zeros, group_size=128, act_mode="dynamic", bias=bias)
        assert torch.equal(out, eager), (n, k, m, dtype, setting)


@pytest.mark.gpu
def test_gpu_split_flags_agree(monkeypatch):
    """The split-K reduction without an arrival counter (`SPLIT_FLAGS`: the first slices' partials flagged by their own
    bits in a kept zeroed buffer, the last slice waits for them) gives the counter's sum bit for bit: the one-launch M
    = 1 op (splits 5 and 15), the 2-16-row GEMM (splits 2-16) and the GEMM-only op at those rows, dynamic and static,
    fp16 and bf16, bias, a row with a NaN; outputs poisoned; every launch split and flagged as asked; the kept
    partials zero again after each call;
    a CUDA graph of three flagged layers replayed three times on new rows gives the eager outputs."""
    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    from fptq.kernels import gluon_decode

    monkeypatch.setattr(tw, "FUSED_KSUB", 0)
    monkeypatch.setattr(tw, "DECODE_KSUB", 0)
    seen = []  # (K slices, FLAGS) of each decode launch
    spy_launches(monkeypatch, (gluon_decode._decode_tma_kernel,), lambda args, constexprs, options: seen.append(
        (constexprs["SPLIT_K"], constexprs.get("FLAGS", False))))
    cases = ((4096, 4096, 1, torch.float16), (1000, 11008, 1, torch.bfloat16), (4096, 4096, 4, torch.float16),
             (11008, 4096, 3, torch.bfloat16), (1000, 1152, 16, torch.float16), (1000, 11008, 2, torch.float16))
    for n, k, m, dtype in cases:
        layer = make_layer(n, k, 128, True, bias=n == 1000, dtype=dtype)
        clean = make_x(m, k, dtype, seed=n + m)
        nan_row = clean.clone()
        nan_row[-1, 7] = float("nan")
        qweight, scales, zeros, bias = layer
        for x, act_mode in itertools.product((clean, nan_row), ("dynamic", "static")):
            act_scale = torch.tensor(0.05, device="cuda") if act_mode == "static" else None
            outs, flags = [], []
            for on in (False, True):
                monkeypatch.setattr(tw, "SPLIT_FLAGS", on)
                seen.clear()
                out = torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
                tw.w4a8_linear(x, qweight, scales, zeros, group_size=128, act_mode=act_mode, act_scale=act_scale,
                               bias=bias, out=out)
                outs.append(out)
                flags.append(list(seen))
            case = (n, k, m, dtype, act_mode, x is nan_row)
            assert len(flags[0]) == 1 and flags[0][0][0] > 1 and flags == [[(flags[0][0][0], False)],
                                                                           [(flags[0][0][0], True)]], (case, flags)
            assert torch.equal(outs[0].isnan(), outs[1].isnan()), case
            assert torch.equal(outs[0].nan_to_num(), outs[1].nan_to_num()), case
            if x is clean:
                assert not outs[1].isnan().any(), case
            assert not scratch._KEPT["decode split-K partials", torch.cuda.current_device()].any(), case
        if m > 1:  # the GEMM-only op (a compiled model's, once the quantization is traced): no workspace of its own
            a, sx = tw.quantize_activation_triton(clean, 128, "dynamic")
            gemms = []
            for on in (False, True):
                monkeypatch.setattr(tw, "SPLIT_FLAGS", on)
                seen.clear()
                gemms.append(torch.ops.fptq.w4a8_gemm(a, sx, qweight, scales, zeros, bias, k, 128, 2, dtype, None))
                assert len(seen) == 1 and seen[0][0] > 1 and seen[0][1] == on, (n, k, m, seen)
            assert torch.equal(*gemms) and torch.isfinite(gemms[1]).all(), (n, k, m)
    monkeypatch.setattr(tw, "SPLIT_FLAGS", True)
    layers = [(make_layer(n, k, 128, True, seed=n), make_x(m, k, seed=m)) for n, k, m, _ in cases[:3]]
    outs = [torch.full((x.shape[0], layer[0].shape[0]), float("nan"), device="cuda", dtype=x.dtype) for layer, x in layers]
    graph = torch.cuda.CUDAGraph()
    seen.clear()
    with torch.cuda.graph(graph):
        for (layer, x), out in zip(layers, outs):
            tw.w4a8_linear(x, *layer[:3], group_size=128, act_mode="dynamic", out=out)
    assert all(flag for _, flag in seen) and len(seen) == 3, seen
    for seed in range(3):
        for _, x in layers:
            x.copy_(make_x(x.shape[0], x.shape[1], seed=100 + seed))
        for out in outs:
            out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        for (layer, x), out in zip(layers, outs):
            assert torch.equal(out, tw.w4a8_linear(x, *layer[:3], group_size=128, act_mode="dynamic")), seed
    assert not scratch._KEPT["decode split-K partials", torch.cuda.current_device()].any()


@pytest.mark.gpu
def test_gpu_fused_row_readings_agree(monkeypatch):
    """The ways the one-launch M = 1 op can read the row (`FUSED_HOLD`: the program's slice held in registers on split
    launches of at most FUSED_HOLD_MAX_STEPS steps; `FUSED_ROW_UNROLL`: the absmax passes unrolled) give the same
    output bit for bit: split and unsplit layers, one and several absmax passes (4096 / 11008 / 28672 columns), a
    per-channel row with a K tail (1056 columns), a 128-step slice (groups of 256, not held), dynamic and static rows,
    with and without the RMSNorm inside; NaNs and a subnormal in one row. Every call is the one launch (no quantization
    kernel, no two launches), with the settings' constexprs."""
    needs_gluon_hopper()
    from fptq.kernels import gluon_decode, launch
    from fptq.kernels.prologue import Prologue

    def forbidden(*args, **kwargs):
        raise AssertionError("not the one launch")

    seen = []
    real_launch = launch.launch

    def spy(kernel, grid, key, args, constexprs, options, kept=()):
        if kernel is gluon_decode._decode_tma_kernel:
            seen.append((constexprs.get("FUSED_ROW"), constexprs.get("HOLD"), constexprs.get("ROW_PASSES")))
        return real_launch(kernel, grid, key, args, constexprs, options, kept)

    monkeypatch.setattr(launch, "launch", spy)
    monkeypatch.setattr(tw, "quantize_activation_triton", forbidden)
    monkeypatch.setattr(tw, "_launch_two", forbidden)
    cases = ((4096, 4096, 128, torch.float16), (22016, 4096, 128, torch.float16), (4096, 11008, 128, torch.bfloat16),
             (8192, 28672, 128, torch.float16), (1000, 5120, 128, torch.bfloat16), (300, 1056, -1, torch.float16),
             (8192, 28672, 256, torch.float16))
    held = []
    for n, k, g, dtype in cases:
        gs = k if g == -1 else g
        layer = make_layer(n, k, gs, True, bias=n == 1000, dtype=dtype)
        x = make_x(1, k, dtype, seed=n)
        x[0, 5], x[0, k - 1], x[0, 9] = float("nan"), float("nan"), torch.finfo(dtype).tiny / 4
        norm = Prologue("rmsnorm", (1 + 0.5 * torch.randn(k, generator=torch.Generator().manual_seed(k))).to(dtype).cuda(),
                        1e-5)
        for act_mode, prologue in itertools.product(("dynamic", "static"), (None, norm)):
            act_scale = torch.tensor(0.05, device="cuda") if act_mode == "static" else None
            outs = []
            for hold, unroll in ((True, True), (False, False), (True, False), (False, True)):
                monkeypatch.setattr(tw, "FUSED_HOLD", hold)
                monkeypatch.setattr(tw, "FUSED_ROW_UNROLL", unroll)
                seen.clear()
                qweight, scales, zeros, bias = layer
                outs.append(tw.w4a8_linear(x, qweight, scales, zeros, group_size=gs, act_mode=act_mode,
                                           act_scale=act_scale, bias=bias, prologue=prologue))
                case = (n, k, g, dtype, act_mode, prologue is not None, hold, unroll)
                assert len(seen) == 1 and seen[0][0], (case, seen)  # the one launch, FUSED_ROW
                assert (seen[0][2] > 0) == unroll and (hold or not seen[0][1]), (case, seen)
                held.append((case, seen[0][1]))
            assert all(torch.equal(o, outs[0]) for o in outs[1:]), case
    assert any(h for _, h in held), "no launch held its slice"
    assert not any(h for (c, h) in held if c[2] == 256), "a 128-step slice was held"
    assert not gluon_fallback.failed("decode_fused") and not gluon_fallback.failed("decode_prologue")


@pytest.mark.gpu
def test_gpu_prologue_m1(monkeypatch):
    """The one-launch M = 1 op with the RMSNorm before it inside (`fptq.kernels.prologue`, `gluon_decode` NORM): on
    split-K and unsplit layers, rows of one pass (4096 columns), of one masked pass (5120) and of two (11008), fp16
    and bf16, bias, dynamic and static activations; each against the op on the norm computed in torch (the fp32 sum
    of squares, mean and rsqrt may round differently, which can move a code) and the float64 reference; outputs
    poisoned; no quantization kernel, no Triton kernel and no torch norm ran; the plan kept for the call reruns it bit
    for bit, and so does a CUDA graph of the call replayed on a new row. Groups the kernel does not take (32, 96) run
    the norm in torch ops and the usual path."""
    from fptq.kernels.prologue import Prologue, apply_prologue

    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    quantize, triton_kernel, launch_two = tw.quantize_activation_triton, tw._w4a8_kernel, tw._launch_two

    def forbidden(*args, **kwargs):
        raise AssertionError("not the one launch with the norm inside")

    act = {}  # (the activation spec of the case: dynamic, or static with a scale that clamps the largest values)

    def call(x, layer, prologue, group_size=128, **kwargs):
        qweight, scales, zeros, bias = layer
        return tw.w4a8_linear(x, qweight, scales, zeros, group_size=group_size, bias=bias, prologue=prologue, **act,
                              **kwargs)

    cases = ((4096, 4096, torch.float16, "dynamic"), (22016, 4096, torch.float16, "dynamic"),
             (15360, 5120, torch.bfloat16, "dynamic"), (4096, 11008, torch.float16, "dynamic"),
             (1000, 4096, torch.bfloat16, "dynamic"), (4096, 4096, torch.float16, "static"),
             (1000, 5120, torch.bfloat16, "static"))
    for n, k, dtype, act_mode in cases:
        act.clear()
        act.update(act_mode=act_mode, act_scale=torch.tensor(0.05, device="cuda") if act_mode == "static" else None)
        layer = make_layer(n, k, 128, True, bias=n == 1000, dtype=dtype)
        g = torch.Generator().manual_seed(n)
        prologue = Prologue("rmsnorm", (1 + 0.5 * torch.randn(k, generator=g)).to(dtype).cuda(), 1e-5)
        x = make_x(1, k, dtype, seed=n) * 4
        monkeypatch.setattr(tw, "quantize_activation_triton", quantize)
        monkeypatch.setattr(tw, "_w4a8_kernel", triton_kernel)
        inner = apply_prologue(x, prologue)
        want = run(inner, layer, 128, act_mode, act["act_scale"])
        x2 = make_x(1, k, dtype, seed=n + 1) * 4
        want2 = call(x2, layer, prologue)
        monkeypatch.setattr(tw, "quantize_activation_triton", forbidden)
        monkeypatch.setattr(tw, "_w4a8_kernel", TritonForbidden())
        monkeypatch.setattr(tw, "apply_prologue", forbidden)
        monkeypatch.setattr(tw, "_launch_two", forbidden)  # (where the one launch declines: the two, with the norm)
        plans, outs = LaunchPlans(), []
        for i in range(3):
            out = torch.full((1, n), float("nan"), dtype=dtype, device="cuda")
            if i < 2:
                y = call(x, layer, prologue, out=out)
            else:  # (through the plan the first of two calls kept)
                call(x, layer, prologue, plans=plans)
                y = call(x, layer, prologue, plans=plans)
                assert len(plans) == 1
            assert torch.isfinite(y).all()
            outs.append(y)
        static_x, graph_out = x.clone(), torch.full((1, n), float("nan"), dtype=dtype, device="cuda")
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            call(static_x, layer, prologue, out=graph_out)
        static_x.copy_(x2)
        graph.replay()
        torch.cuda.synchronize()
        monkeypatch.setattr(tw, "apply_prologue", apply_prologue)
        monkeypatch.setattr(tw, "_launch_two", launch_two)
        case = (n, k, dtype, act_mode)
        assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2]), case
        assert torch.equal(graph_out, want2), case
        tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
        assert rel(outs[0], want) < tol, (case, rel(outs[0], want))
        assert rel(outs[0], dequant_matmul64(inner, layer, 128, act_mode, act["act_scale"])) < tol, case
    act.clear()
    for g, k in ((32, 4096), (96, 4608)):  # (the norm in torch ops, then the op: the reference path for these groups)
        layer = make_layer(512, k, g, True)
        prologue = Prologue("rmsnorm", (1 + 0.5 * torch.randn(k)).half().cuda(), 1e-5)
        x = make_x(1, k) * 4
        got = call(x, layer, prologue, group_size=g)
        torch.cuda.synchronize()
        assert torch.isfinite(got).all() and rel(got, dequant_matmul64(apply_prologue(x, prologue), layer, g, "dynamic",
                                                                       None)) < 2e-3, g
    assert not gluon_fallback.failed("decode_prologue")


@pytest.mark.gpu
def test_gpu_silu_every_gate_value(monkeypatch):
    """SILU as launched on the GPU (libdevice's exp, SILU_DIV's division) gives `F.silu`'s value for every 16-bit gate
    value — all 65536 fp16 and all 65536 bf16 bit patterns, NaN for NaN — in rows held in one pass and in rows of two
    passes: the float copy (no quantization) of rows `[gate, 1]`, in the kernels' permuted layout. The value rounded to
    16 bits depends on the gate alone, so this covers every input the kernel can see."""
    import torch.nn.functional as F

    from fptq.kernels.prologue import Prologue

    for dtype in (torch.float16, torch.bfloat16):
        gates = torch.arange(-32768, 32768, dtype=torch.int32, device="cuda").to(torch.int16).view(dtype)
        for m, max_k in ((4, tw.SILU_MAX_K), (2, 16384)):  # (rows of 16384 gates, one pass; of 32768, two passes)
            monkeypatch.setattr(tw, "SILU_MAX_K", max_k)
            gate = gates.view(m, -1)
            x = torch.cat([gate, torch.ones_like(gate)], dim=1)
            quant = tw._QuantLaunch(m, gate.shape[1], dtype, x.device, 128, "none", tw._words(x), False, False,
                                    Prologue("silu_glu"))
            assert quant.constexprs["ONE_PASS"] == (gate.shape[1] <= tw.SILU_MAX_K)
            assert quant.constexprs["SILU_DIV"] == tw.SILU_DIV
            got, _, _ = quant.run(x, x.stride(0))
            want, _ = tw.quantize_activation_triton(F.silu(gate), 128, "none")
            same = (got.view(torch.int16) == want.view(torch.int16)) | (got.isnan() & want.isnan())
            assert same.all(), (dtype, m, int((~same).sum()))


@pytest.mark.gpu
def test_gpu_prologue_rows(monkeypatch):
    """More rows with the RMSNorm before the layer (decode batches, prefill) or SiLU * up of `[gate, up]` rows: the
    quantization kernel computes the layer's input (`_act_quant_kernel` NORM / SILU) and no torch prologue runs; the
    codes are those of the op on `apply_prologue`'s output (the same fp32 products and roundings, another summation
    order: a code may move), the result within the float64 reference's tolerance; a kept plan reruns the call bit for
    bit, and a CUDA graph of the call replayed on new rows gives the eager call's result on them. Shapes: 7B q/k/v and
    down at 2 / 16 rows (TMA decode kernel), 100 (tiled kernel), 512 / 2048 (swap prefill kernel); SiLU * up before
    7B down at 1 / 7 / 16 / 2048 rows, 13B down at 512, 70B down (28672 columns in one pass) at 16 / 1024 and in two
    passes (SILU_MAX_K 16384) at 1 / 16 — the same codes bit for bit; fp16 and bf16, dynamic and static."""
    from fptq.kernels.prologue import Prologue, apply_prologue

    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)

    def forbidden(*args, **kwargs):
        raise AssertionError("the norm ran in torch ops")

    from fptq.kernels.prologue import input_features

    cases = ((2, 12288, 4096, torch.float16, "dynamic"), (16, 4096, 11008, torch.bfloat16, "dynamic"),
             (16, 12288, 4096, torch.float16, "static"), (100, 4096, 4096, torch.float16, "dynamic"),
             (512, 12288, 4096, torch.bfloat16, "static"), (2048, 4096, 11008, torch.float16, "dynamic"))
    cases = [(*c, "rmsnorm") for c in cases] + [(16, 4096, 11008, torch.float16, "dynamic", "silu_glu"),
                                                 (7, 4096, 11008, torch.bfloat16, "static", "silu_glu"),
                                                 (512, 5120, 13824, torch.bfloat16, "dynamic", "silu_glu"),
                                                 (2048, 4096, 11008, torch.float16, "dynamic", "silu_glu"),
                                                 (16, 8192, 28672, torch.float16, "dynamic", "silu_glu"),
                                                 (1024, 8192, 28672, torch.bfloat16, "static", "silu_glu"),
                                                 (1, 4096, 11008, torch.float16, "dynamic", "silu_glu"),
                                                 (1, 4096, 11008, torch.bfloat16, "static", "silu_glu"),
                                                 (1, 8192, 28672, torch.float16, "dynamic", "silu_glu", 16384),
                                                 (16, 8192, 28672, torch.bfloat16, "dynamic", "silu_glu", 16384)]
    for m, n, k, dtype, act_mode, kind, *max_k in cases:
        monkeypatch.setattr(tw, "SILU_MAX_K", max_k[0] if max_k else 32768)
        act = dict(act_mode=act_mode, act_scale=torch.tensor(0.05, device="cuda") if act_mode == "static" else None)
        layer = make_layer(n, k, 128, True, dtype=dtype)
        gen = torch.Generator().manual_seed(m + n)
        prologue = (Prologue("rmsnorm", (1 + 0.5 * torch.randn(k, generator=gen)).to(dtype).cuda(), 1e-5)
                    if kind == "rmsnorm" else Prologue("silu_glu"))

        def call(x, layer=layer, prologue=prologue, act=act, **kwargs):
            return tw.w4a8_linear(x, *layer[:3], group_size=128, bias=layer[3], prologue=prologue, **act, **kwargs)

        width = input_features(prologue, k)
        gain = 4 if kind == "rmsnorm" else 0.5  # (gate * up of rows of 4 would overflow fp16 outputs)
        x, x2 = make_x(m, width, dtype, seed=m) * gain, make_x(m, width, dtype, seed=m + 1) * gain
        inner = apply_prologue(x, prologue)
        want = run(inner, layer, 128, act_mode, act["act_scale"])
        monkeypatch.setattr(tw, "apply_prologue", forbidden)
        out = torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
        y = call(x, out=out)
        plans = LaunchPlans()
        kept = [call(x, plans=plans) for _ in range(2)]
        want2 = call(x2)
        static_x, graph_out = x.clone(), torch.full((m, n), float("nan"), dtype=dtype, device="cuda")
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            call(static_x, out=graph_out)
        static_x.copy_(x2)
        graph.replay()
        torch.cuda.synchronize()
        monkeypatch.setattr(tw, "apply_prologue", apply_prologue)
        case = (m, n, k, dtype, act_mode, kind)
        # (one plan, but for the swap op on fp16 group scales past DIRECT_SCALES rows: it copies them, keeps none)
        assert torch.isfinite(y).all() and torch.equal(kept[0], y) and torch.equal(kept[1], y) and len(plans) <= 1, case
        assert len(plans) == 1 or m > gluon_swap.DIRECT_SCALES, case
        assert torch.equal(graph_out, want2), case
        tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
        assert rel(y, want) < tol, (case, rel(y, want))
        assert rel(y, dequant_matmul64(inner, layer, 128, act_mode, act["act_scale"])) < tol, case
        assert kind == "rmsnorm" or torch.equal(y, want), case  # (SiLU * up: torch's values, so the same codes)
        print(case, "bit-exact" if torch.equal(y, want) else f"rel {rel(y, want):.2e}")


@pytest.mark.gpu
def test_gpu_prologue_m1_under_torch_compile(monkeypatch):
    """Under torch.compile a layer's prologue is traced in torch ops in front of the layer (one graph, no break;
    Inductor fuses it with what produced the row), not the eager one-launch op with the norm inside: at 1 and 16
    rows the result equals the eager call's within the compiled norm's and quantization's rounding."""
    import torch._dynamo.testing

    from fptq.kernels.prologue import Prologue

    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    qweight, scales, zeros, bias = make_layer(4096, 4096, 128, True)
    weight = (1 + 0.5 * torch.randn(4096)).half().cuda()
    prologue = Prologue("rmsnorm", weight, 1e-6)
    norms_inside = []
    real = tw._launch_fused_m1

    def spy(*args, prologue=None, **kwargs):
        norms_inside.append(prologue is not None)
        return real(*args, prologue=prologue, **kwargs)

    monkeypatch.setattr(tw, "_launch_fused_m1", spy)

    def fn(x):
        return tw._backend_fn(x, qweight, scales, zeros, group_size=128, bias=bias, prologue=prologue)

    for m in (1, 16):
        x = make_x(m, 4096) * 4
        del norms_inside[:]
        want = fn(x)
        assert norms_inside == ([True] if m == 1 else [])  # (eagerly: the one launch with the norm inside)
        torch._dynamo.reset()
        counter = torch._dynamo.testing.CompileCounter()
        del norms_inside[:]
        got = torch.compile(fn, backend=counter, fullgraph=True)(x)
        assert counter.frame_count == 1 and not any(norms_inside)
        assert rel(got, want) < 2e-3, m
    torch._dynamo.reset()


@pytest.mark.gpu
def test_gpu_decode_short_launches(monkeypatch):
    """Repeat decode launches of one shape on new rows take the kept compiled kernels (`fptq.kernels.launch`: neither
    the TMA decode kernel's nor the quantization kernel's Triton `run` is called again) and give Triton's launch path's
    outputs bit for bit: the one-launch M = 1 op (split-K and not) and the two launches at M = 4, with and without PDL,
    bias or not, fp16 and bf16."""
    from fptq.kernels import gluon_decode, launch

    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    runs = []
    for kernel in (gluon_decode._decode_tma_kernel, tw._act_quant_kernel):
        monkeypatch.setattr(kernel, "run", lambda *a, real=kernel.run, **kw: runs.append(1) or real(*a, **kw))
    monkeypatch.setattr(launch, "_COMPILED", {})
    cases = ((1, 4096, 4096, True, torch.float16, True), (1, 22016, 4096, False, torch.bfloat16, True),
             (4, 4096, 11008, True, torch.float16, True), (4, 1000, 4096, True, torch.float16, False))
    for m, n, k, has_bias, dtype, pdl in cases:
        monkeypatch.setattr(tw, "USE_PDL", pdl)
        layer = make_layer(n, k, 128, True, bias=has_bias, dtype=dtype)
        before, ys = len(runs), []
        for enabled, seed in ((True, 1), (True, 2), (False, 2)):
            monkeypatch.setattr(launch, "ENABLED", enabled)
            ys.append(run(make_x(m, k, dtype, seed=seed), layer, 128, "dynamic"))
        case = (m, n, k, has_bias, dtype, pdl)
        launches = 1 if m == 1 else 2  # (the one-launch op; else quantization + GEMM)
        assert len(runs) - before == 2 * launches, case  # the second call skipped Triton's path
        assert torch.equal(ys[1], ys[2]) and not torch.equal(ys[0], ys[1]), case
        assert rel(ys[1], dequant_matmul64(make_x(m, k, dtype, seed=2), layer, 128, "dynamic", None)) < (
            1e-2 if dtype == torch.bfloat16 else 2e-3), case
    assert not gluon_fallback.failed("decode") and not gluon_fallback.failed("decode_fused")


@pytest.mark.gpu
def test_gpu_fused_decode_m1_in_cuda_graphs(monkeypatch):
    """The fused launches share one partials (or counter) buffer per device, which each launch leaves zero: consecutive split-K
    layers, eagerly and replayed in a CUDA graph (several replays), give the eager two-launch results; a capture
    that would have to make the buffer takes the two launches instead (and is right too). (Split launches: FUSED_KSUB
    off; the unsplit ones take no counters, `test_gpu_fused_ksub_agrees`.)"""
    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    monkeypatch.setattr(tw, "FUSED_KSUB", 0)
    layers = [(make_layer(n, k, 128, True, bias=True, seed=i), make_x(1, k, seed=10 + i)) for i, (n, k) in
              enumerate(((4096, 4096), (1000, 11008), (4096, 4096)))]  # splits 5, 15, 5
    monkeypatch.setattr(tw, "FUSED_DECODE_M1", False)
    want = [run(x, layer, 128, "dynamic") for layer, x in layers]
    monkeypatch.setattr(tw, "FUSED_DECODE_M1", True)
    for fresh in (True, False):
        if fresh:  # no counter buffer yet: the capture takes the two launches, the eager step after it makes one
            monkeypatch.setattr(scratch, "_KEPT", {})
        outs = [torch.full((1, layer[0].shape[0]), float("nan"), dtype=x.dtype, device="cuda") for layer, x in layers]

        def step(outs=outs):
            for (layer, x), out in zip(layers, outs):
                tw.w4a8_linear(x, *layer[:3], group_size=128, act_mode="dynamic", bias=layer[3], out=out)

        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        assert bool(scratch._KEPT) != fresh
        for _ in range(3):
            for out in outs:
                out.fill_(float("nan"))
            graph.replay()
            torch.cuda.synchronize()
            for out, w in zip(outs, want):
                assert torch.equal(out, w), fresh
        step()  # eagerly (makes the buffer the first time)
        for out, w in zip(outs, want):
            assert torch.equal(out, w), fresh
        assert not any(buf.any() for buf in scratch._KEPT.values())  # (the kept partials, `SPLIT_FLAGS`)


@pytest.mark.gpu
@pytest.mark.parametrize("m", [2, 16])
def test_gpu_gemm_op_at_decode_sizes_takes_the_kept_counters(monkeypatch, m):
    """The GEMM-only op at decode sizes (what a compiled model calls once the quantization is traced,
    TRACED_QUANT_MIN_M), launched as a programmatic dependent, uses the device's kept zero split-K counters instead
    of zeroing fresh ones (a memset node would stand between the kernel before and the GEMM): consecutive split-K
    layers, eagerly and replayed in a CUDA graph, equal the eager two-launch op bit for bit and leave the counters
    zero; without the kept buffer (a capture cannot make it) fresh counters are zeroed, and right too."""
    from fptq.kernels import gluon_decode

    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    counters = []  # the split-K counters argument of each decode GEMM launch
    layers = [(make_layer(n, k, 128, True, bias=True, seed=i), make_x(m, k, seed=10 + i)) for i, (n, k) in
              enumerate(((4096, 4096), (1000, 11008), (4096, 4096)))]
    cfg = tw._for_m(tw.CONFIGS, m)
    assert all(tw._split_k(cfg, m, layer[0].shape[0], tw._cdiv(x.shape[1], 128), tw._tma_slice_steps(True, x.shape[1], 128))
               > 1 for layer, x in layers)  # (split-K)
    want = [run(x, layer, 128, "dynamic") for layer, x in layers]
    quantized = [tw.quantize_activation_triton(x, 128, "dynamic") for _, x in layers]

    def step():
        return [torch.ops.fptq.w4a8_gemm(a, sx, *layer[:2], None, layer[3], x.shape[1], 128, 2, x.dtype, None)
                for (layer, x), (a, sx) in zip(layers, quantized)]

    spy_launches(monkeypatch, (gluon_decode._decode_tma_kernel,), lambda args, *_: counters.append(args[9]))
    monkeypatch.setattr(tw, "SPLIT_FLAGS", False)  # (the counters; the kept partials: `test_gpu_split_flags_agree`)
    for fresh in (True, False):
        if fresh:
            monkeypatch.setattr(scratch, "_KEPT", {})
        del counters[:]
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outs = step()
        assert bool(scratch._KEPT) != fresh and len(counters) == len(layers)
        kept = None if fresh else scratch._KEPT["decode split-K counters", torch.cuda.current_device()]
        assert all((c.data_ptr() == kept.data_ptr()) if kept is not None else c.numel() < tw.FUSED_COUNTERS
                   for c in counters), fresh  # (the kept buffer once made; fresh, memset ones during that capture)
        for _ in range(3):
            for out in outs:
                out.fill_(float("nan"))
            graph.replay()
            torch.cuda.synchronize()
            assert all(torch.equal(out, w) for out, w in zip(outs, want)), fresh
        assert all(torch.equal(out, w) for out, w in zip(step(), want)), fresh  # (eagerly: makes the buffer)
        assert not scratch._KEPT["decode split-K counters", torch.cuda.current_device()].any()
    assert not gluon_fallback.failed("decode")


@pytest.mark.gpu
def test_gpu_no_pdl_on_layer_tensors_copied_by_the_call(monkeypatch):
    """Layer tensors that `w4a8_linear` copies itself (not contiguous) are written by the kernel right before the op:
    its GEMM is then not launched as a programmatic dependent (it reads the weights before its wait, and with
    QUANT_PDL the quantization kernel between may start before the copy is done) — the one-token op, 16 rows and the
    swap prefill op — and gives the results of the contiguous tensors (which take PDL at decode sizes)."""
    from fptq.kernels import gluon_decode, gluon_swap

    needs_gluon_hopper()
    needs_prefill_gluon()
    gluon_errors_fail(monkeypatch)
    seen = []  # launch_pdl of each GEMM launch
    spy_launches(monkeypatch, (gluon_decode._decode_tma_kernel, gluon_swap._swap_kernel),
                 lambda args, constexprs, options: seen.append(options.get("launch_pdl", False)))
    qweight, scales, _, bias = make_layer(4096, 4096, 128, True, bias=True)
    wide = torch.zeros(4096, 4096, dtype=torch.uint8, device="cuda")
    wide[:, :2048] = qweight
    strided = wide[:, :2048]  # (rows 4096 bytes apart)
    assert not strided.is_contiguous()
    for m in (1, 16, 300):
        x = make_x(m, 4096)
        del seen[:]
        want = tw.w4a8_linear(x, qweight, scales, None, group_size=128, bias=bias)
        assert seen and (all(seen) or m > tw.DECODE_MAX_M), (m, seen)  # (the swap op: not under stream-K)
        del seen[:]
        got = tw.w4a8_linear(x, strided, scales, None, group_size=128, bias=bias)
        assert seen and not any(seen), (m, seen)
        assert torch.equal(got, want), m


@pytest.mark.gpu
def test_gpu_fp8_per_channel_long_k():
    """fp8 activations with per-channel weights over a long K: each K step's fp32 sum is added to
    the accumulator (Hopper's fp8 MMA accumulates at reduced precision), in the tiled and the
    unpacked kernels alike."""
    layer = make_layer(512, 8192, 8192, True, bias=True)
    x = make_x(600, 8192)
    r = ref_mod.quant_linear_reference(x.double().cpu(), layer[0].cpu(), layer[1].cpu(), None, group_size=8192,
                                       act_mode="dynamic_fp8", bias=layer[3].double().cpu())
    for cfg in (PREFILL, tw.KernelConfig(64, 128, 4, 4), UNPACKED, tw.PrefillConfig()):
        y = tw.w4a8_fp8_linear(x, *layer[:3], group_size=8192, bias=layer[3], config=cfg)
        assert rel(y, r) < 3e-3, cfg


@pytest.mark.parametrize("k,g", [(256, 128), (192, 64), (200, 200), (4096, 128)])
@pytest.mark.parametrize("act_mode", ["static", "dynamic"])
def test_torch_quantization_is_bit_identical_to_the_kernel(k, g, act_mode):
    x = make_x(5, k)
    act_scale = (x.float().abs().amax() / 127 * 0.6).reshape(()) if act_mode == "static" else None
    a, sx = tw.quantize_activation_triton(x, g, act_mode, act_scale)
    b, sy = tw.quantize_activation_torch(x, g, act_mode, act_scale)
    assert a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8))
    assert (sx is None and sy is None) or torch.equal(sx, sy)


@pytest.mark.parametrize("act_mode", ["static", "dynamic", "none"])
@pytest.mark.parametrize("prefill,in_graph", [(False, True), (True, True), (False, None), (True, None)])
def test_compiled_layer_quantizes_in_the_graph(monkeypatch, act_mode, prefill, in_graph):
    """With QUANTIZE_IN_GRAPH, torch.compile traces the quantization and calls the GEMM-only op; by default
    (None) only above DECODE_MAX_M rows, one opaque op for decode-sized calls; the result equals the eager
    kernel's (also where both take the unpacked prefill path)."""
    import torch._dynamo.testing

    monkeypatch.setattr(tw, "QUANTIZE_IN_GRAPH", in_graph)
    if prefill:
        monkeypatch.setattr(tw, "PREFILL_MIN_M", [(1 << 62, 3, 3)])
        monkeypatch.setattr(tw, "PREFILL_CONFIGS", [(1 << 62, UNPACKED)])

    layer = make_layer(96, 256, 128, True, bias=True)
    rows = tw.DECODE_MAX_M + 4 if prefill else 3
    x = make_x(rows, 256).reshape(1, rows, 256)
    act_scale = (x.float().abs().amax() / 127).reshape(()) if act_mode == "static" else None
    fn = lambda x: tw._backend_fn(x, *layer[:3], group_size=128, act_mode=act_mode, act_scale=act_scale,  # noqa: E731
                                  bias=layer[3])
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    got = torch.compile(fn, backend=counter, fullgraph=True)(x)
    ops = {str(n.target) for gm in counter.graphs for n in gm.graph.nodes if n.op == "call_function"}
    traced = act_mode != "none" and (in_graph or prefill)
    assert ("fptq.w4a8_gemm" in ops) == traced and ("fptq.w4a8_linear" in ops) == (not traced), ops
    torch._dynamo.reset()
    torch.testing.assert_close(got, fn(x), rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("m", [3, 600])
def test_gpu_fp8_quantization_in_the_graph(monkeypatch, m):
    """W4A8-FP8 under torch.compile with QUANTIZE_IN_GRAPH: the traced e4m3 quantization equals the kernel's bit
    for bit, codes and scales (the CPU interpreter's e4m3 conversion does not, so GPU only), and the compiled layer (GEMM-only
    op on the e4m3 buffer; tiled kernel at M = 3, the unpacked prefill path at M = 600) equals the eager one."""
    import torch._dynamo.testing

    if not tw._has_fp8(torch.zeros(1, device="cuda")):
        pytest.skip("needs fp8 tensor cores (sm_89+)")
    for (k, g), mode in itertools.product(((256, 128), (192, 64), (200, 200), (4096, 128)), ("dynamic_fp8", "dynamic")):
        x = make_x(m, k)  # (the int8 mode too: the CPU test above cannot see PyTorch's CUDA scalar division)
        a, sx = tw.quantize_activation_triton(x, g, mode)
        b, sy = tw.quantize_activation_torch(x, g, mode)
        assert a.dtype == b.dtype and torch.equal(a.view(torch.uint8), b.view(torch.uint8)) and torch.equal(sx, sy), (k, g, mode)
    monkeypatch.setattr(tw, "QUANTIZE_IN_GRAPH", True)
    layer = make_layer(96, 256, 128, True, bias=True)
    x = make_x(m, 256).reshape(1, m, 256)
    fn = lambda x: tw._backend_fn(x, *layer[:3], group_size=128, act_mode="dynamic_fp8", bias=layer[3])  # noqa: E731
    torch._dynamo.reset()
    counter = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    got = torch.compile(fn, backend=counter, fullgraph=True)(x)
    ops = {str(n.target) for gm in counter.graphs for n in gm.graph.nodes if n.op == "call_function"}
    assert "fptq.w4a8_gemm" in ops and "fptq.w4a8_linear" not in ops, ops
    torch._dynamo.reset()
    torch.testing.assert_close(got, fn(x), rtol=0, atol=0)


@pytest.mark.gpu
def test_gpu_quantization_codes_are_exact():
    """The quantization kernel's division on the GPU (reciprocal and fma corrections, `_quotient`) gives the
    codes of an IEEE division (the torch ops) bit for bit: 4096 x 4096 random rows (one pass), 64 x 11008
    (a padded one-pass row), 8 x 28672 (one pass, 16 warps), 4 x 36864 (two passes), dynamic and static int8 and
    e4m3, negative zeros; and rows whose x / s land exactly on half-integers (ties to even) and on e4m3 midpoints;
    fp16 and bf16 rows
    (both read as int32 words of two)."""
    torch.manual_seed(0)
    ties = torch.arange(-127, 127, dtype=torch.float32) + 0.5  # x / s with s = 1 / 16: exact halves
    tie_rows = torch.cat([ties / 16, torch.full((2,), 127 / 16)]).reshape(1, -1).repeat(3, 1)
    cases = [torch.randn(4096, 4096), torch.randn(64, 11008) * 3, torch.randn(8, 28672) * 0.01, torch.randn(4, 36864),
             torch.nn.functional.pad(tie_rows, (0, 256 - tie_rows.shape[1]))]
    for x, dtype in ((x, dtype) for x in cases for dtype in (torch.float16, torch.bfloat16)):
        x = x.to(dtype).cuda()
        x[::7] *= 40  # rows of other magnitudes
        x[1, :5] = -0.0  # keeps its sign through the division (e4m3 0x80)
        static = (x.float().abs().amax() / 127 * 0.7).reshape(())
        for mode, scale in (("dynamic", None), ("static", static), ("dynamic_fp8", None)):
            a, sx = tw.quantize_activation_triton(x, 128, mode, scale)
            b, sy = tw.quantize_activation_torch(x, 128, mode, scale)
            assert torch.equal(a.view(torch.uint8), b.view(torch.uint8)), (tuple(x.shape), dtype, mode)
            assert (sx is None and sy is None) or torch.equal(sx, sy)


def test_fp8_activations_without_fp8_tensor_cores_fall_back_to_the_reference(monkeypatch):
    """On the CPU interpreter (as on a GPU older than sm_89) act_mode dynamic_fp8 computes the
    reference semantics instead of failing."""
    monkeypatch.setattr(tw, "_has_fp8", lambda x: False)
    layer = make_layer(40, 256, 128, True, bias=True)
    x = make_x(3, 256)
    y = tw.w4a8_linear(x, *layer[:3], group_size=128, act_mode="dynamic_fp8", bias=layer[3])
    ref = ref_mod.quant_linear_reference(x.cpu(), layer[0].cpu(), layer[1].cpu(), None, group_size=128,
                                         act_mode="dynamic_fp8", bias=layer[3].cpu())
    assert rel(y, ref) < 1e-3


def test_fp8_kernel_takes_strided_inputs():
    layer = make_layer(40, 256, 128, True)
    xt = make_x(256, 3).t()  # (3, 256) with a column stride of 3
    a = tw.w4a8_fp8_linear(xt, *layer[:3], group_size=128)
    b = tw.w4a8_fp8_linear(xt.contiguous(), *layer[:3], group_size=128)
    assert torch.equal(a, b)


def test_scale_rows():
    """The warp-specialized prefill kernel's (groups, N) scale rows: the transposed scales in their stored
    type or fp32, rows padded to 16 bytes, made afresh per call (an in-place change is seen at once)."""
    from fptq.kernels import gluon_prefill
    from fptq.kernels.gluon_prefill import scale_rows

    scales = torch.rand(10, 3).half()
    rows = scale_rows(scales)
    assert rows.shape == (3, 16) and rows.dtype == torch.float16 and torch.equal(rows[:, :10], scales.t())
    scales.mul_(2)
    assert torch.equal(scale_rows(scales)[:, :10], scales.t())
    assert scale_rows(torch.rand(5, 2)).shape == (2, 8)  # fp32: 4 per 16 bytes
    wide = scale_rows(scales, torch.float32)  # the one-partition Gluon kernel's fp32 rows
    assert wide.shape == (3, 12) and torch.equal(wide[:, :10], scales.t().float())
    assert torch.equal(gluon_prefill.ws_rows(scales)[:, :10], wide[:, :10])  # what the warp-specialized kernel reads


def test_gluon_fallback_switch(monkeypatch):
    """A Gluon kernel that fails to compile switches its path to the Triton kernel with one warning;
    device errors are re-raised."""
    monkeypatch.setattr(gluon_fallback, "_FAILED", set())
    with pytest.warns(RuntimeWarning, match="Gluon prefill kernel failed"):
        gluon_fallback.note_failure("prefill", RuntimeError("PassManager::run failed"))
    assert gluon_fallback.failed("prefill") and not gluon_fallback.failed("decode")
    with pytest.raises(RuntimeError, match="CUDA error"):
        gluon_fallback.note_failure("decode", RuntimeError("CUDA error: an illegal memory access"))
    assert not gluon_fallback.failed("decode")


def test_two_level_unpack_arithmetic():
    """The PTX of the two-level unpacking (`UNPACK_*_TL`: `and` / `shr; and`, `mad.lo.u32 t, t, s2, c`, `xor 0x80808080`
    on four packed bytes), emulated in 32-bit integers for every nibble and every s2 in [1, 16]: each byte becomes the
    int8 `(nibble - 8) * s2` (no carry between bytes: nibble * s2 <= 240); `c` as the kernels compute it in int32."""
    from fptq.kernels.triton_prefill import UNPACK_HI_TL, UNPACK_LO_TL

    for ptx, high in ((UNPACK_LO_TL.value, False), (UNPACK_HI_TL.value, True)):
        ops = [part.split()[0] for part in ptx.strip("{} ").split(";") if part.strip() and not part.strip().startswith(".reg")]
        assert ops == (["shr.u32"] if high else []) + ["and.b32", "mad.lo.u32", "xor.b32"], ptx
    rng = torch.Generator().manual_seed(0)
    words = torch.randint(0, 1 << 32, (4096,), generator=rng, dtype=torch.int64).tolist() + [0, 0xFFFFFFFF, 0x88888888]
    for s2 in range(1, 17):
        c = (-2139062144 - s2 * 0x08080808) & 0xFFFFFFFF  # (the kernels' int32 expression, as 32 bits)
        assert c == 0x80808080 - s2 * 0x08080808
        for w in words:
            for high in (False, True):
                t = ((w >> 4) if high else w) & 0x0F0F0F0F
                t = ((t * s2 + c) & 0xFFFFFFFF) ^ 0x80808080
                got = [((t >> (8 * i)) & 0xFF) - (256 if (t >> (8 * i)) & 0x80 else 0) for i in range(4)]
                nib = [(w >> (8 * i + (4 if high else 0))) & 0xF for i in range(4)]
                assert got == [(v - 8) * s2 for v in nib], (hex(w), s2, high)


def test_swap_kernel_scope():
    """`PrefillConfig(swap=True)` (the packed weights as wgmma's register operand) validates its tiles, and
    `gluon_swap.supported` takes int8 activations, symmetric weights, K and groups multiples of 128 only."""
    from fptq.kernels import gluon_swap, triton_prefill

    with pytest.raises(ValueError):
        tw.PrefillConfig(256, 128, 4, 4, swap=True)
    with pytest.raises(ValueError):
        tw.PrefillConfig(128, 64, 4, 4, swap=True)
    with pytest.raises(ValueError):  # 256 weight rows with 128-token tiles only (what run 123 measured and tests run)
        tw.PrefillConfig(64, 256, 4, 4, swap=True)
    assert tw.PrefillConfig(128, 256, 4, 3, swap=True).block_n == 256
    if gluon_swap.gluon is None:
        pytest.skip("no Gluon")
    q = torch.zeros(256, 256, dtype=torch.uint8)
    assert gluon_swap.supported(True, q, None, 512, 128) and gluon_swap.supported(True, q, None, 512, 512)
    assert not gluon_swap.supported(True, q, None, 512, 64)  # groups of 64
    assert not gluon_swap.supported(True, q, torch.zeros(256, 4, dtype=torch.uint8), 512, 128)  # zero points
    assert not gluon_swap.supported(False, q, None, 512, 128)  # fp8 (or float) activations
    assert not gluon_swap.supported(True, torch.zeros(256, 160, dtype=torch.uint8), None, 320, 320)  # K not a multiple of 128
    # the schedule: two K steps a slot where the step count divides; with GROUP_SUMS one scaling per group
    # (where a slot's steps cover it) or per channel; no lag with two steps a slot; PF only with two
    # the scales read directly (DS) up to DIRECT_SCALES rows, copied into scale rows above
    assert gluon_swap.plan(4096, 128, 4096) == {"KSUB": 2, "SPG": 1, "LAG": False, "PF": True, "DS": False, "TL": False,
                                                "CH": False}
    # two-level scales: one int32 sum over K (SPG 0), the group scales read directly, at every row count; per
    # channel (groups as long as K) there is nothing to multiply; a slot's two wgmmas chained (CH) with the scales
    # read per slot (TL 4: the loader's copies; TL 1: requested before the slot's wait)
    ch = gluon_swap.CHAIN_STEPS
    tl = 4 if gluon_swap.LOADER_SCALES else 1  # (the scales copied by the loader, or requested before the slot's wait)
    assert gluon_swap.plan(4096, 128, 4096, True) == {"KSUB": 2, "SPG": 0, "LAG": False, "PF": True, "DS": True, "TL": tl,
                                                      "CH": ch}
    assert not gluon_swap.plan(384, 128, 4096, True)["CH"] and not gluon_swap.plan(4096, 4096, 4096)["CH"]
    # long K where the loader does not copy the scales (groups of 256): the group scales one slot ahead, not chained
    assert gluon_swap.plan(11008, 256, 4096, True)["TL"] == 2 and not gluon_swap.plan(11008, 256, 4096, True)["CH"]
    assert gluon_swap.plan(11008, 128, 4096, True)["TL"] == (4 if gluon_swap.LOADER_SCALES else 2)
    assert not gluon_swap.plan(4096, 4096, 4096, True)["TL"]
    assert gluon_swap.plan(4096, 128, gluon_swap.DIRECT_SCALES)["DS"] and gluon_swap.DIRECT_SCALES < 1024
    assert gluon_swap.plan(4096, 256, 4096)["SPG"] == 2 and gluon_swap.plan(4096, 4096, 4096)["SPG"] == 0
    assert gluon_swap.plan(384, 128, 4096)["KSUB"] == 1 and gluon_swap.plan(128, 128, 4096)["KSUB"] == 1
    assert not gluon_swap.plan(384, 128, 4096)["PF"]  # (one step a slot: nothing to prefetch)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gluon_swap, "GROUP_SUMS", False)
        assert gluon_swap.plan(4096, 256, 4096)["SPG"] == 1 and gluon_swap.plan(4096, 4096, 4096)["SPG"] == 1
        mp.setattr(gluon_swap, "GROUP_SUMS", True)
        assert [gluon_swap.plan(kp, g, 4096)["SPG"] for kp, g in ((4096, 128), (4096, 256), (4096, 4096), (384, 384),
                                                                  (128, 128), (768, 384), (1024, 512))] == [1, 2, 0, 0, 0, 1, 1]
        mp.setattr(gluon_swap, "K_PER_SLOT", 1)
        assert gluon_swap.plan(4096, 256, 4096)["SPG"] == 1  # a group of two steps over two slots: scaled per step
        mp.setattr(gluon_swap, "LAG_SCALING", True)
        mp.setattr(gluon_swap, "PREFETCH_WEIGHTS", True)
        mp.setattr(gluon_swap, "DIRECT_SCALES", 1 << 30)
        assert gluon_swap.plan(4096, 128, 4096) == {"KSUB": 1, "SPG": 1, "LAG": True, "PF": False, "DS": False, "TL": False,
                                                    "CH": False}  # (not lagged)
        mp.setattr(gluon_swap, "K_PER_SLOT", 2)
        assert gluon_swap.plan(4096, 128, 4096) == {"KSUB": 2, "SPG": 1, "LAG": False, "PF": True, "DS": True, "TL": False,
                                                    "CH": False}
        mp.setattr(gluon_swap, "DIRECT_SCALES", 0)
        assert not gluon_swap.plan(4096, 128, 64)["DS"]
    # and only on Hopper: on the CPU the prefill path keeps its unpack-pass threshold
    assert not triton_prefill.direct(torch.zeros(1), True, q, None, 512, 128)


def test_lagged_consumer_needs_two_ring_slots(monkeypatch):
    """The warp-specialized kernel's lagged consumer holds a slot until the next one has landed: with one
    slot it would wait for itself, so it takes the plain consumer there (and when LAG_SCALING is off)."""
    from fptq.kernels import gluon_prefill

    monkeypatch.setattr(gluon_prefill, "LAG_SCALING", True)
    assert not gluon_prefill.lagged(1) and gluon_prefill.lagged(2) and gluon_prefill.lagged(6)
    monkeypatch.setattr(gluon_prefill, "LAG_SCALING", False)
    assert not gluon_prefill.lagged(3)


def test_fused_unpack_only_up_to_fused_max_m(monkeypatch):
    """The warp-specialized kernel unpacks the weights itself (when FUSED_UNPACK) only up to FUSED_MAX_M rows,
    for int8 activations and symmetric weights whose packed rows TMA can address."""
    from fptq.kernels import gluon_prefill

    monkeypatch.setattr(gluon_prefill, "FUSED_UNPACK", True)
    monkeypatch.setattr(gluon_prefill, "FUSED_MAX_M", 1024)
    q = torch.zeros(256, 2048, dtype=torch.uint8)
    a = torch.zeros(1024, 4096, dtype=torch.int8)
    assert gluon_prefill.fused_ok(a, q, None, 4096)
    assert not gluon_prefill.fused_ok(torch.zeros(1025, 4096, dtype=torch.int8), q, None, 4096)
    assert not gluon_prefill.fused_ok(a, q, torch.zeros(256, 32, dtype=torch.uint8), 4096)  # zero points
    assert not gluon_prefill.fused_ok(a.to(torch.float16), q, None, 4096)
    assert not gluon_prefill.fused_ok(a, torch.zeros(256, 100, dtype=torch.uint8), None, 200)  # K / 2 = 100 bytes
    monkeypatch.setattr(gluon_prefill, "FUSED_UNPACK", False)
    assert not gluon_prefill.fused_ok(a, q, None, 4096)


@pytest.mark.gpu
def test_gpu_trigger_chain_agrees(monkeypatch):
    """The GEMMs letting the next kernel be placed before they are done (the decode kernel's `DECODE_TRIGGER` 1 / 2, the
    prefill swap kernel's `gluon_swap.TRIGGER`) change no output: a chain of four layers, each op's input the previous
    op's output (at M = 1 the one-launch op reads that row after its wait; at more rows the quantization kernel
    does), 1 / 4 / 16 / 300 rows, dynamic and static, launched eagerly without a synchronization between the ops and
    captured in a CUDA graph replayed on new rows, equals the chain without the triggers bit for bit; every launch
    carries the trigger asked for."""
    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    from fptq.kernels import gluon_decode

    seen = []
    spy_launches(monkeypatch, (gluon_decode._decode_tma_kernel, gluon_swap._swap_kernel),
                 lambda args, constexprs, options: seen.append(int(constexprs.get("TRIGGER", 0))))
    g = torch.Generator().manual_seed(5)
    layers = []
    for n, k in ((4096, 4096), (11008, 4096), (4096, 11008), (4096, 4096)):  # (7B down's decode launch is split)
        qw = quantize_weight(torch.randn(n, k, generator=g) / k**0.5, 4, 128, True)
        layers.append((pack_int4(qw.codes).to(DEVICE), qw.scales.to(DEVICE)))
    act_scale = torch.tensor(0.03, device=DEVICE)

    def chain(x, act_mode):
        for qweight, scales in layers:
            x = tw.w4a8_linear(x, qweight, scales, None, group_size=128, act_mode=act_mode,
                               act_scale=act_scale if act_mode == "static" else None)
        return x

    def setting(decode, swap):
        monkeypatch.setattr(tw, "DECODE_TRIGGER", decode)
        monkeypatch.setattr(gluon_swap, "TRIGGER", swap)

    for m, act_mode in itertools.product((1, 4, 16, 300), ("dynamic", "static")):
        xs = [make_x(m, 4096, seed=s) for s in range(3)]
        setting(0, False)
        refs = [chain(x, act_mode) for x in xs]
        torch.cuda.synchronize()
        assert all(torch.isfinite(r).all() for r in refs), (m, act_mode)
        for decode in (1, 2):
            case = (m, act_mode, decode)
            setting(decode, True)
            seen.clear()
            eager = [chain(x, act_mode) for x in xs]  # (no synchronization between the ops)
            assert seen == [decode if m <= 16 else 1] * (4 * len(xs)), (case, seen)
            for y, r in zip(eager, refs):
                assert torch.equal(y, r), case
            static = xs[0].clone()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                y = chain(static, act_mode)
            for x, r in zip(reversed(xs), reversed(refs)):
                static.copy_(x)
                graph.replay()
                assert torch.equal(y, r), (*case, "graph")


@pytest.mark.gpu
def test_gpu_fused_static_rows_agree(monkeypatch):
    """2-4 rows of static activations in one launch (`FUSED_STATIC_ROWS`: the TMA decode kernel quantizes each
    program's slice of every row, MR) equal the two launches bit for bit: split (4096 x 4096, with and without the
    flags), long slices (1024 x 28672), unsplit (11008 x 4096), N not a multiple of a program's rows, groups of 64,
    fp16 and bf16 with bias, a clamped code; outputs poisoned; every call one FUSED_ROW launch with MR; a CUDA graph
    replayed on new rows gives the eager outputs."""
    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    from fptq.kernels import gluon_decode

    monkeypatch.setattr(tw, "DECODE_KSUB", 0)  # (the two launches without KSUB: the same products in the same order)
    seen = []
    spy_launches(monkeypatch, (gluon_decode._decode_tma_kernel,), lambda args, constexprs, options: seen.append(
        (constexprs.get("FUSED_ROW", False), constexprs.get("MR", 1))))
    act_scale = torch.tensor(0.02, device=DEVICE)
    cases = ((4096, 4096, torch.float16, True), (4096, 4096, torch.float16, False), (1024, 28672, torch.float16, True),
             (11008, 4096, torch.bfloat16, True), (1000, 1152, torch.float16, True), (1000, 1088, torch.bfloat16, True))
    for n, k, dtype, flags in cases:
        monkeypatch.setattr(tw, "SPLIT_FLAGS", flags)
        qweight, scales, zeros, bias = make_layer(n, k, 64 if k == 1088 else 128, True, bias=dtype == torch.bfloat16,
                                                  dtype=dtype)
        gs = 64 if k == 1088 else 128
        for m in (2, 3, 4):
            x = make_x(m, k, dtype, seed=n + m)
            x[0, 5] = 1e4  # (clamped to 127)
            outs = []
            for rows in (0, 4):
                monkeypatch.setattr(tw, "FUSED_STATIC_ROWS", rows)
                seen.clear()
                out = torch.full((m, n), float("nan"), dtype=dtype, device=DEVICE)
                tw.w4a8_linear(x, qweight, scales, zeros, group_size=gs, act_mode="static", act_scale=act_scale,
                               bias=bias, out=out)
                outs.append(out)
                assert seen == [(rows > 0, 4 if rows and m > 2 else 2 if rows else 1)], (n, k, m, rows, seen)
            assert not outs[1].isnan().any(), (n, k, m)
            assert torch.equal(outs[0], outs[1]), (n, k, m, dtype, flags)
        static = make_x(3, k, dtype, seed=7)
        out = torch.full((3, n), float("nan"), dtype=dtype, device=DEVICE)
        tw.w4a8_linear(static, qweight, scales, zeros, group_size=gs, act_mode="static", act_scale=act_scale,
                       bias=bias, out=out)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            tw.w4a8_linear(static, qweight, scales, zeros, group_size=gs, act_mode="static", act_scale=act_scale,
                           bias=bias, out=out)
        static.copy_(make_x(3, k, dtype, seed=8))
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        eager = tw.w4a8_linear(static, qweight, scales, zeros, group_size=gs, act_mode="static", act_scale=act_scale,
                               bias=bias)
        assert torch.equal(out, eager), (n, k, dtype, flags, "graph")


@pytest.mark.gpu
def test_gpu_flag_peer_groups_agree(monkeypatch):
    """The flagged reduction reading the other slices' partials a few at a time (`FLAG_PEER_GROUP`, PEERS) gives the
    all-at-once sum bit for bit: narrow layers of 16 slices (N 1024 at K 8192 / 4096) and one of 5 (a short last
    group), 1 / 4 / 16 rows, dynamic and static, outputs poisoned; every launch flagged with PEERS as asked; the kept
    partials zero again after each call."""
    needs_gluon_hopper()
    gluon_errors_fail(monkeypatch)
    from fptq.kernels import gluon_decode

    monkeypatch.setattr(tw, "FUSED_KSUB", 0)
    monkeypatch.setattr(tw, "DECODE_KSUB", 0)
    seen = []
    spy_launches(monkeypatch, (gluon_decode._decode_tma_kernel,), lambda args, constexprs, options: seen.append(
        (constexprs["SPLIT_K"], constexprs.get("FLAGS", False), constexprs.get("PEERS", 0))))
    act_scale = torch.tensor(0.05, device=DEVICE)
    for n, k, group in ((1024, 8192, 4), (1024, 4096, 3), (4096, 4096, 3)):
        qweight, scales, zeros, bias = make_layer(n, k, 128, True)
        for m, act_mode in itertools.product((1, 4, 16), ("dynamic", "static")):
            x = make_x(m, k, seed=n + m)
            outs, launches = [], []
            for peers in (0, group):
                monkeypatch.setattr(tw, "FLAG_PEER_GROUP", peers)
                seen.clear()
                out = torch.full((m, n), float("nan"), dtype=torch.float16, device=DEVICE)
                tw.w4a8_linear(x, qweight, scales, zeros, group_size=128, act_mode=act_mode,
                               act_scale=act_scale if act_mode == "static" else None, out=out)
                outs.append(out)
                launches.append(list(seen))
                assert not scratch._KEPT["decode split-K partials", torch.cuda.current_device()].any()
            case = (n, k, m, act_mode)
            (split, flagged, none), = launches[0]
            assert flagged and split - 1 > group and none == 0, (case, launches)
            assert launches[1] == [(split, True, group)], (case, launches)
            assert not outs[1].isnan().any() and torch.equal(outs[0], outs[1]), case
