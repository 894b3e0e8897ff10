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
        x = torch.randn(n, device="cuda") + i  # new operands each time (aligned: the key says nothing of alignment)
        y = torch.full_like(x, float("nan"))
        launch.launch(_axpb, (triton.cdiv(n, 128),), key, (x, y, n), {"A": a}, {"num_warps": 4})
        torch.testing.assert_close(y, x * a + 1.0, rtol=0, atol=0)
    assert len(runs) == 3  # the second launch with key ("a2",) took the kept kernel
    monkeypatch.setattr(launch, "ENABLED", True)
    monkeypatch.setattr(launch, "VERIFY", True)
    x = torch.randn(n, device="cuda")
    with pytest.raises(AssertionError, match="incomplete"):  # A = 5.0 under the key of A = 2.0
        launch.launch(_axpb, (triton.cdiv(n, 128),), ("a2",), (x, torch.empty_like(x), n), {"A": 5.0}, {"num_warps": 4})
