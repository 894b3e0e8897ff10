"""`fptq.kernels.launch`: repeat launches by a caller's key skip Triton's binder and give the same results; stand-ins
and a None key always go through `kernel[grid](...)`."""

from __future__ import annotations

import pytest
import torch

triton = pytest.importorskip("triton")
import triton.language as tl  # noqa: E402

from fptq.kernels import launch  # noqa: E402


@triton.jit
def _axpb(x_ptr, y_ptr, n, A: tl.constexpr, B: tl.constexpr = 1.0, BLOCK: tl.constexpr = 128):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * A + B, mask=mask)


class _Spy:
    """A stand-in kernel that records its launches (as the tests' launch spies)."""

    def __init__(self):
        self.calls = []

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.calls.append((grid, args, kwargs))


@pytest.mark.parametrize("key", [("k",), None])
def test_stand_ins_and_no_key_take_the_triton_path(key):
    spy = _Spy()
    for _ in range(2):
        launch.launch(spy, (3,), key, (1, 2), {"A": 2.0}, {"num_warps": 4})
    assert spy.calls == [((3,), (1, 2), {"A": 2.0, "num_warps": 4})] * 2


def test_alignment_is_a_bit_per_tensor():
    t = torch.zeros(64, dtype=torch.uint8)  # (allocations are at least 16-byte aligned)
    assert launch.alignment(t, None, t[16:]) == 0b111
    assert launch.alignment(t[1:], t) == 0b10 and launch.alignment(t, t[1:]) == 0b01  # (which one, not just whether)


class _Desc:
    """A host TMA descriptor as `make_tensordesc_arg` reads one (without metadata it needs no GPU)."""

    def __init__(self, base):
        self.base, self.shape, self.strides, self.padding = base, list(base.shape), list(base.stride()), "zero"


def test_direct_launch_passes_what_triton_passes(monkeypatch):
    """`_Direct` hands Triton's C launcher the arguments Triton's own launcher path hands it (grid, stream, kernel
    handle, flags, packed metadata, every descriptor expanded, the constexpr tail), but no launch metadata or hooks;
    a kept descriptor is encoded once per object and base pointer."""
    from triton.backends.nvidia import driver

    seen, encodings = [], []
    monkeypatch.setattr(launch, "_current_stream", lambda device: 77)
    monkeypatch.setattr(launch, "make_tensordesc_arg",
                        lambda d, meta: encodings.append(d) or driver.make_tensordesc_arg(d, meta))
    signature = {"w": "tensordesc<i8[64, 64]>", "x": "*fp16", "a": "tensordesc<i8[16, 64]>", "n": "i32", "B": "constexpr"}
    launcher = driver.CudaLauncher.__new__(driver.CudaLauncher)
    launcher.launch = driver.wrap_handle_tensordesc(lambda *args: seen.append(args), signature, None)
    launcher.num_ctas, launcher.launch_cooperative_grid, launcher.launch_pdl = 1, False, True
    launcher.global_scratch_size = launcher.profile_scratch_size = 0
    launcher.global_scratch_align = launcher.profile_scratch_align = 1

    class Compiled:
        run, function, packed_metadata = launcher, 123, ("packed",)

    direct = launch._Direct.of(Compiled())
    assert direct is not None and direct.descs == (0, 2)
    w, x = _Desc(torch.zeros(64, 64, dtype=torch.int8)), torch.zeros(8, dtype=torch.float16)
    for i in range(3):
        a = _Desc(torch.zeros(16, 64, dtype=torch.int8))  # (a new buffer each call)
        if i == 2:
            w.base = torch.zeros(64, 64, dtype=torch.int8)  # the kept descriptor on another buffer: encoded again
        launcher(4, 1, 1, 77, 123, ("packed",), "metadata", "enter", "exit", w, x, a, 5, 2.0)  # (Triton's path)
        direct((4, 1, 1), 0, (w, x, a, 5), (2.0,), kept=(0,))
        triton_args, direct_args = seen[-2], seen[-1]
        assert direct_args[10:13] == (None, None, None) and triton_args[10:13] == ("metadata", "enter", "exit")
        assert len(direct_args) == len(triton_args) and all(
            p is q or (type(p) is type(q) and p == q) for j, (p, q) in enumerate(zip(direct_args, triton_args))
            if j not in (10, 11, 12)), i
    # (direct encodings, each call from the back: a, then w on the first call and after its new base only)
    assert [d is w for d in encodings] == [False, True, False, False, True]


def test_direct_launch_declines_what_it_does_not_know():
    class Compiled:
        run, function, packed_metadata = object(), 1, ()

    assert launch._Direct.of(Compiled()) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_repeat_launches_skip_the_binder(monkeypatch):
    """The second launch with a key runs the kept compiled kernel (Triton's `run` is not called again) on new
    operands, with the constexpr passed and the defaults (B, BLOCK) filled in; another key goes through Triton again;
    with ENABLED off every launch does; with VERIFY a key that leaves out a constexpr raises."""
    runs = []
    real_run = _axpb.run
    monkeypatch.setattr(_axpb, "run", lambda *a, **kw: runs.append(1) or real_run(*a, **kw))
    monkeypatch.setattr(launch, "_COMPILED", {})
    n = 1000
    for i, (a, key, enabled) in enumerate([(2.0, ("a2",), True), (2.0, ("a2",), True), (3.0, ("a3",), True),
                                           (3.0, ("a3",), False)]):
        monkeypatch.setattr(launch, "ENABLED", enabled)
        # new operands each time (aligned: the key says nothing of alignment), multiples of 1/8 below 2^10, so that
        # x * A + 1 is exact whether the kernel rounds once (a contracted fma) or twice (torch); run 231: 1 element
        # of 1000 one ulp apart with random normals
        x = torch.randint(-4096, 4096, (n,), device="cuda").float() / 8 + i
        y = torch.full_like(x, float("nan"))
        launch.launch(_axpb, (triton.cdiv(n, 128),), key, (x, y, n), {"A": a}, {"num_warps": 4})
        torch.testing.assert_close(y, x * a + 1.0, rtol=0, atol=0)
    assert len(runs) == 3  # the second launch with key ("a2",) took the kept kernel
    monkeypatch.setattr(launch, "ENABLED", True)
    monkeypatch.setattr(launch, "VERIFY", True)
    x = torch.randn(n, device="cuda")
    with pytest.raises(AssertionError, match="incomplete"):  # A = 5.0 under the key of A = 2.0
        launch.launch(_axpb, (triton.cdiv(n, 128),), ("a2",), (x, torch.empty_like(x), n), {"A": 5.0}, {"num_warps": 4})


@pytest.mark.parametrize("first", ["gluon_prefill", "gluon_decode", "gluon_swap", "triton_prefill", "triton_w4a8"])
def test_kernel_modules_import_in_any_order(first):
    """The Gluon kernel modules import each other (`triton_prefill` imports `gluon_prefill` and `gluon_swap` at its end;
    `gluon_swap` and `gluon_decode` take helpers from both): whichever is imported first, every one of them keeps its
    kernels (a partly initialized module in the cycle turned `gluon_swap` off for the process before)."""
    import subprocess
    import sys

    from fptq.kernels import gluon_prefill

    if gluon_prefill.gluon is None:
        pytest.skip("no Gluon in this Triton")
    code = (f"import fptq.kernels.{first}\nfrom fptq.kernels import gluon_decode, gluon_prefill, gluon_swap\n"
            "print([m.gluon is not None for m in (gluon_decode, gluon_prefill, gluon_swap)])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[True, True, True]", (first, done.stdout, done.stderr[-2000:])
