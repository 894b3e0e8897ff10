"""Per-layer launch plans (`fptq.kernels.LaunchPlans`, `triton_w4a8.w4a8_linear(plans=...)`): a `QuantLinear` keeps
what the Triton backend decided for a call signature and later calls of that signature run the plan without
deciding again; anything that could change the decision (another input layout, a replaced buffer, a changed
setting, a moved or copied layer) decides again. On the CPU the decisions are faked (the launches stand in); on a
GPU the plans' outputs are checked bit for bit against the path that decides every call."""

from __future__ import annotations

import copy
import gc
import itertools
import weakref

import pytest
import torch

pytest.importorskip("triton")

from fptq.kernels import LaunchPlans, gluon_fallback  # noqa: E402
from fptq.kernels import triton_w4a8 as tw  # noqa: E402
from fptq.nn.quant_linear import QuantLinear  # noqa: E402


class _Plan:
    """Stands in for a `_DecodeOp`: counts its runs, returns ones of the planned shape (or None: a failed launch)."""

    def __init__(self, n):
        self.n, self.runs, self.fail = n, 0, False

    def run(self, x, out=None, shape=None, row_stride=0):
        self.runs += 1
        return None if self.fail else torch.ones(shape or (x.numel() // x.shape[-1], self.n), dtype=x.dtype)


@pytest.fixture
def decisions(monkeypatch):
    """QuantLinear on the CPU through the Triton backend, whose M <= 16 ops are faked: each decision (a call of
    `_launch_fused_m1` or `_launch_two`) makes a `_Plan`, listed here, and offers it to `keep`."""
    made = []

    def decide(x2, n, keep):
        plan = _Plan(n)
        made.append(plan)
        if keep is not None:
            keep(plan)
        return plan.run(x2)

    monkeypatch.setenv("FPTQ_KERNEL", "triton")
    monkeypatch.setattr(tw, "_tma_capable", lambda cfg, device, dot_type, m, qweight, k: dot_type == 0)
    monkeypatch.setattr(tw, "_fused_m1", lambda x2, act_mode, cfg, qweight, k: x2.shape[0] == 1 and act_mode == "dynamic")
    monkeypatch.setattr(tw, "_launch_fused_m1", lambda x2, q, s, z, b, k, g, dt, cfg, out, keep=None, pdl_ok=True,
                        prologue=None, act_scale=None: decide(x2, q.shape[0], keep))
    monkeypatch.setattr(tw, "_launch_two", lambda x2, q, *args: decide(x2, q.shape[0], args[11]))  # (keep)
    monkeypatch.setattr(tw, "_launch_swap", lambda x2, q, *args: decide(x2, q.shape[0], args[10]))  # (keep)
    monkeypatch.setattr(tw, "_use_prefill", lambda config, m, *args: m > tw.DECODE_MAX_M)  # (prefill: the swap op)
    return made


def layer(act_mode="dynamic", bias=False) -> QuantLinear:
    return QuantLinear(512, 96, group_size=128, act_mode=act_mode, bias=bias, dtype=torch.float16).eval()


def x(*shape):
    return torch.randn(*shape, 512, dtype=torch.float16)


def test_a_signature_decides_once(decisions):
    q = layer()
    for _ in range(3):
        assert q(x(1, 1)).shape == (1, 1, 96)
    assert len(decisions) == 1 and decisions[0].runs == 3
    q(x(1))  # another shape: another signature
    q(x(4, 1))  # (M = 4: the two launches)
    q(x(4, 1))
    assert len(decisions) == 3 and decisions[2].runs == 2 and len(q._plans) == 3
    static = layer("static")
    static(x(16))
    static(x(16))
    assert len(decisions) == 4 and decisions[3].runs == 2
    q(x(300))  # (prefill)
    q(x(300))
    assert len(decisions) == 5 and decisions[4].runs == 2


def test_a_layer_with_a_prologue_decides_once(decisions):
    """With the RMSNorm inside (`set_prologue`): one token keeps the one launch's plan under the norm's signature, 4
    rows the two launches' (the quantization kernel normalizes the raw rows); a new norm decides again."""
    q = layer()
    q.set_prologue("rmsnorm", torch.rand(512, dtype=torch.float16) + 0.5, 1e-5)
    for rows in (1, 1, 4, 4):
        assert q(x(1, rows)).shape == (1, rows, 96)
    assert len(decisions) == 2 and decisions[0].runs == 2 and decisions[1].runs == 2
    q.set_prologue("rmsnorm", torch.rand(512, dtype=torch.float16) + 0.5, 1e-6)
    q(x(1, 1))
    q.prologue_weight = q.prologue_weight.clone()  # (a replaced buffer: a new signature)
    q(x(1, 1))
    assert len(decisions) == 4


def test_what_decides_again(decisions, monkeypatch):
    q = layer(bias=True)
    q(x(1))
    monkeypatch.setattr(tw, "TMA_TARGET_PROGRAMS", tw.TMA_TARGET_PROGRAMS + 1)  # a setting
    q(x(1))
    monkeypatch.setattr(tw, "CONFIGS", list(tw.CONFIGS))  # an equal table: the same settings
    q(x(1))
    assert len(decisions) == 2
    q(x(2))  # (a plan made under this very list)
    assert len(decisions) == 3
    tw.CONFIGS[0] = (tw.CONFIGS[0][0], tw.KernelConfig(16, 64, 4, 2))  # the same list changed in place
    q(x(2))
    assert len(decisions) == 4
    q(x(1))
    assert len(decisions) == 5
    q.scales = q.scales.clone()  # a replaced buffer
    q(x(1))
    q.bias = torch.nn.Parameter(q.bias.clone(), requires_grad=False)
    q(x(1))
    assert len(decisions) == 7
    q.to(torch.float16)  # moved (even to where it was): emptied
    assert len(q._plans) == 0
    q(x(1))
    twin = copy.deepcopy(q)
    assert len(twin._plans) == 0 and len(q._plans) == 1
    twin(x(1))
    assert len(decisions) == 9
    q(torch.randn(1, 1024, dtype=torch.float16)[:, ::2])  # not contiguous: decided, not kept
    q(torch.randn(1, 1024, dtype=torch.float16)[:, ::2])
    q(torch.randn(1, 3, 512, dtype=torch.float16)[:, -1:])  # (1, 1, K) with a row stride of 3 K: not kept
    q(torch.randn(1, 3, 512, dtype=torch.float16)[:, -1:])
    q(x(1).float())  # another dtype
    assert len(decisions) == 14
    decisions[-1].fail = True  # a kept plan that fails is dropped, the call decides again
    q(x(1).float())
    assert len(decisions) == 15 and decisions[-2].runs == 2 and decisions[-1].runs == 1
    q.scales = q.scales.t().contiguous().t()  # a layer tensor the kernels would copy: no plan holds the copy
    q(x(1))
    q(x(1))
    assert len(decisions) == 17


@pytest.mark.parametrize("shape,tma", [((5, 512), True), ((5, 1, 512), True), ((1, 5, 512), True),
                                       ((2, 3, 512), True), ((1, 1, 512), True), ((1, 40, 512), False),
                                       ((4, 1, 512), False)])
def test_a_replay_launches_as_the_deciding_call(shape, tma, monkeypatch):
    """The two-launch ops (quantization, then the TMA decode GEMM at M <= 16 or the tiled Triton GEMM) on inputs of
    any leading shape: the replay of a kept plan hands the kernels the deciding call's integers (row strides
    included) and keys, and writes an (M, N) output viewed in the caller's shape (launches recorded, not run)."""
    from fptq.kernels import gluon_decode, launch

    seen = []
    monkeypatch.setattr(launch, "launch", lambda kernel, grid, key, args, constexprs, options, kept=():
                        seen.append((kernel, grid, key, args)))
    monkeypatch.setattr(tw, "_tma_capable", lambda cfg, device, dot_type, m, qweight, k: tma and dot_type == 0)
    monkeypatch.setattr(tw, "_fused_m1", lambda *args: False)
    monkeypatch.setattr(tw, "_pdl_available", lambda x: False)
    n, m = 96, 1
    for d in shape[:-1]:
        m *= d
    q = layer()
    xs = torch.randn(*shape, dtype=torch.float16)
    calls, buffers = [], None
    for _ in range(3):
        seen.clear()
        y = tw.w4a8_linear(xs, q.qweight, q.scales, group_size=128, act_mode="dynamic", plans=q._plans)
        assert y.shape == (*shape[:-1], n)
        kernel = gluon_decode._decode_tma_kernel if tma else tw._w4a8_kernel
        quant, gemm = (next(s for s in seen if s[0] is k) for k in (tw._act_quant_kernel, kernel))
        out, ints = (gemm[3][7], gemm[3][10:]) if tma else (gemm[3][6], gemm[3][9:])
        stride_om = gemm[3][15] if tma else gemm[3][-1]  # (the TMA kernel's last argument: the prologue weight)
        assert out.shape == (m, n) and stride_om == n and y.data_ptr() == out.data_ptr()
        calls.append((quant[1], quant[2], quant[3][6:], gemm[1], gemm[2], ints))
        buffers = buffers if calls[1:] else weakref.ref(quant[3][1])  # (the first call's int8 activations)
    assert len(q._plans) == 1 and calls[0] == calls[1] == calls[2]
    seen.clear()
    gc.collect()
    assert buffers() is None  # (the kept plan holds no call's activation buffer)


@pytest.mark.parametrize("lead", [(300,), (1, 300), (2, 150)])
@pytest.mark.parametrize("fmt,act_mode", [("fp16", "dynamic"), ("two-level", "static")])
def test_a_swap_replay_launches_as_the_deciding_call(lead, fmt, act_mode, monkeypatch):
    """The swap prefill op's kept plan (quantization + `gluon_swap.SwapLaunch`) replays with the deciding call's
    integers, keys and descriptors on inputs of any leading shape and keeps none of a call's buffers (launches
    recorded, not run; the SM count, shared memory and the kept scale-row stand-in as on an H100)."""
    from fptq.kernels import gluon_prefill, gluon_swap, launch

    seen = []
    monkeypatch.setattr(launch, "launch", lambda kernel, grid, key, args, constexprs, options, kept=():
                        seen.append((kernel, grid, key, args)))
    monkeypatch.setattr(tw, "direct", lambda t, int8, *rest: bool(int8))
    monkeypatch.setattr(gluon_prefill, "_sm_count", lambda index: 132)
    monkeypatch.setattr(gluon_swap, "_shared_memory", lambda t: 227 << 10)
    rows = torch.zeros(1, 2 * gluon_swap.ROWS, dtype=torch.float32)
    monkeypatch.setattr(gluon_swap, "_no_rows", lambda index: (rows, gluon_prefill.scale_desc(rows, rows.shape[1],
                                                                                              rows.shape[1])))
    q = QuantLinear(512, 256, group_size=128, act_mode=act_mode, scale_format=fmt, dtype=torch.float16).eval()
    xs = torch.randn(*lead, 512, dtype=torch.float16)
    calls, buffers = [], []
    for _ in range(3):
        seen.clear()
        y = tw.w4a8_linear(xs, q.qweight, q.scales, group_size=128, act_mode=act_mode, act_scale=q.act_scale,
                           channel_scales=q.channel_scales, plans=q._plans)
        quant, gemm = (next(s for s in seen if s[0] is k) for k in (tw._act_quant_kernel, gluon_swap._swap_kernel))
        args = gemm[3]
        assert y.shape == (*lead, 256) and args[5].shape == (300, 256) and args[13] == 256
        assert y.data_ptr() == args[5].data_ptr() and args[0].base is quant[3][1]  # (this call's activations)
        buffers.append(weakref.ref(quant[3][1]))
        calls.append((quant[1], quant[2], quant[3][6:], gemm[1], gemm[2], args[10:],
                      [launch.descriptor_key(d) for d in args[:3]]))
    del seen[:], quant, gemm, args
    gc.collect()
    assert len(q._plans) == 1  # (the kernel reads the layer's scales: two-level, or fp16 up to DIRECT_SCALES rows)
    assert calls[0] == calls[1] == calls[2] and all(r() is None for r in buffers)


def test_tiled_keys_determine_the_binding():
    """`_TiledLaunch`'s launch key against Triton's own binding of the call (the specialization and options its
    cache key is made of, computed on the CPU with the backend rules the NVIDIA backend inherits): over varied
    calls, equal keys bind alike."""
    from triton.backends.compiler import BaseBackend
    from triton.runtime.jit import JITFunction, create_function_from_signature

    from fptq.kernels import launch

    fn = tw._w4a8_kernel
    while hasattr(fn, "fn"):
        fn = fn.fn
    jit = JITFunction(fn)
    binder = create_function_from_signature(jit.signature, jit.params, BaseBackend)
    recorded, bindings = [], {}
    cfgs = (tw.KernelConfig(16, 64, 4, 3, split_k=16), tw.KernelConfig(64, 128, 8, 4))
    for m, n, g, zeros, bias, pdl, cfg, off in itertools.product((1, 17, 48), (96, 128), (64, 128, 256), (False, True),
                                                                 (False, True), (False, True), cfgs, (0, 4)):
        k = 256
        split = tw._split_k(cfg, m, n, tw._cdiv(k, tw._sub_chunk(g)))
        qweight = torch.zeros(n, k // 2, dtype=torch.uint8)
        scales = torch.ones(n, k // g, dtype=torch.float16)
        a = torch.zeros(m * k + 16, dtype=torch.int8)[off: off + m * k].view(m, k)  # (aligned or not)
        out, ws = torch.empty(m, n, dtype=torch.float16), torch.empty(split * m * n + 64, dtype=torch.float32)
        launch_ = tw._TiledLaunch(qweight, scales, torch.zeros_like(qweight[:, : k // g]) if zeros else None,
                                  torch.zeros(n, dtype=torch.float16) if bias else None, m, k, g, cfg, split, 2, pdl)
        real = launch.launch
        launch.launch = lambda kernel, grid, key, args, constexprs, options, kept=(): recorded.append(
            (key, args, constexprs, options))
        try:
            launch_.run(a, torch.ones(m), out, ws, ws[split * m * n:].view(torch.int32))
        finally:
            launch.launch = real
        key, args, constexprs, options = recorded[-1]
        _, specialization, opts = binder(*args, **constexprs, **options)
        bound = (tuple(specialization), tuple(sorted((name, str(v)) for name, v in opts.items())))
        assert bindings.setdefault(key, bound) == bound, key
    assert len(bindings) > 100


def test_calls_that_take_no_plan(decisions):
    q = layer()
    args = dict(group_size=128, act_mode="dynamic", plans=q._plans)
    x1 = x(1)
    tw.w4a8_linear(x1, q.qweight, q.scales, out=torch.empty(1, 96, dtype=torch.float16), **args)
    tw.w4a8_linear(x1, q.qweight, q.scales, config=tw.CONFIGS[0][1], **args)
    assert len(q._plans) == 0 and len(decisions) == 2
    plans = LaunchPlans()
    for i in range(LaunchPlans.MAX + 1):
        plans.keep(i, None)
    assert len(plans) == 1  # (cleared when full)


# ----------------------------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.parametrize("m,act_mode,dtype,bias,symmetric,group,fmt", [
    (1, "dynamic", torch.float16, True, True, 128, "fp16"),  # the one-launch op
    (1, "dynamic", torch.bfloat16, False, False, 64, "fp16"),
    (1, "static", torch.float16, False, True, 128, "fp16"),  # (M = 1 static: the two launches)
    (4, "dynamic", torch.float16, True, True, -1, "fp16"),
    (16, "static", torch.bfloat16, True, False, 128, "fp16"),
    (16, "dynamic", torch.float16, False, True, 64, "fp16"),
    (64, "dynamic", torch.float16, True, True, 128, "fp16"),  # medium M: the tiled kernel (the widest: swap)
    (128, "static", torch.bfloat16, False, False, 64, "fp16"),  # (asymmetric: the tiled kernel on every layer)
    (300, "dynamic", torch.float16, True, True, 128, "two-level"),  # prefill: the swap kernel
    (1100, "static", torch.bfloat16, False, True, 128, "two-level"),  # (256-row tiles)
    (512, "dynamic", torch.float16, False, True, -1, "fp16"),  # (per channel)
])
def test_gpu_plans_give_the_deciding_path(m, act_mode, dtype, bias, symmetric, group, fmt, monkeypatch):
    """A kept plan's outputs equal, bit for bit, those of the same call without plans (which decides every time),
    on several layers called in turn (the kept split-K counters shared), for each of three new inputs of (M, 1, K)
    and of (1, M, K) (one row stride of the output for both); the second and later calls of a signature take the
    plan."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    monkeypatch.setattr(gluon_fallback, "note_failure", lambda kernel, e: (_ for _ in ()).throw(e))
    torch.manual_seed(0)
    layers = []
    for n, k in ((4096, 4096), (1000, 11008), (12288, 4096)):
        lin = torch.nn.Linear(k, n, bias=bias, dtype=torch.float32)
        scale = torch.tensor(0.05) if act_mode == "static" else None
        q = QuantLinear.from_linear(lin, group_size=group, symmetric=symmetric, act_mode=act_mode, act_scale=scale,
                                    scale_format=fmt)
        layers.append(q.to("cuda", dtype))
    decided = []
    for name in ("_launch_fused_m1", "_launch_two", "_launch_swap"):
        real = getattr(tw, name)
        monkeypatch.setattr(tw, name, lambda *a, real=real, **kw: decided.append(1) or real(*a, **kw))
    shapes = ((m, 1), (1, m)) if m > 1 else ((1, 1),)  # (tokens of a batch; one sequence's tokens: a prefill)
    for lead in shapes:
        for step in range(3):
            for q in layers:
                xs = torch.randn(*lead, q.in_features, device="cuda", dtype=dtype)
                y = q(xs)
                want = tw.w4a8_linear(xs, q.qweight, q.scales, q.zeros, group_size=q.group_size, act_mode=act_mode,
                                      act_scale=q.act_scale, bias=q.bias, channel_scales=q.channel_scales)
                assert y.shape == want.shape and torch.equal(y, want), (lead, step, q)
    assert all(len(q._plans) == len(shapes) for q in layers)
    # each layer decided on its first call of a shape only (the calls without plans decided every time: 3 per shape)
    assert len(decided) == len(layers) * len(shapes) * (1 + 3)
