"""Repeat launches of a Triton / Gluon kernel without Triton's per-call argument binding.

A prefill op is one kernel launch of 70-330 µs on the H100, and a compiled 2048-token prefill of the LLaMA-2-7B shape
without CUDA graphs is a race between the CPU enqueueing ~600 launches and the GPU running them (benchmarks/
GPU_NOTES.md, runs 128-131: 28-30 ms of host time against 41 ms of GPU time, and a slow mode at the host's pace when
the machine's CPU is slower). Triton's `kernel[grid](...)` binds and specializes every argument on every call
(~56 µs of host time on that machine, of which ~24 the launch itself). Here the caller names a `key` that determines
everything Triton specializes on (argument types, pointer alignment, integer values, constexprs, options); the first
launch with a key (on the current device) goes through Triton and keeps its compiled kernel, later ones launch that
kernel directly with the arguments in signature order (`CompiledKernel[grid](*args)`, Triton's own launcher: TMA
descriptors encoded, PDL and scratch as set at compile time). The short path skips what Triton's `run` does besides
binding: its pre-run hooks, its check that the globals a kernel read are unchanged, and its debug / instrumentation
knobs (a key is kept per process: change those before the first launch).

Only real Triton kernel objects take the short path (a stand-in, as the tests' launch spies, always goes through
`kernel[grid](...)`); `ENABLED = False` turns it off; `VERIFY = True` (the GPU tests) runs Triton's binder on every
short launch as well and raises if it would have picked another compiled kernel — an incomplete key.
"""

from __future__ import annotations

import inspect

import torch

try:
    from triton.runtime.jit import JITFunction, compute_cache_key
except ImportError:  # pragma: no cover - no Triton: nothing is launched
    JITFunction = compute_cache_key = None

ENABLED = True
VERIFY = False
MAX_ENTRIES = 4096  # compiled kernels kept per process (cleared when full; an entry is a reference and a tuple)

_COMPILED: dict[tuple, tuple] = {}


def launch(kernel, grid: tuple, key, args: tuple, constexprs: dict, options: dict) -> None:
    """`kernel[grid](*args, **constexprs, **options)`. `args`: the runtime arguments, in the kernel's signature order
    from its first parameter; `constexprs`: the rest of its parameters by name (or in `options`, e.g. `num_warps`);
    `options`: launch options (num_warps, maxnreg, launch_pdl, ...). `key`: hashable, equal for two calls only if
    Triton would compile them alike — it must determine every constexpr and option and, for each runtime argument,
    its type (a tensor's dtype, a descriptor's block / layout / dtype), which pointers are 16-byte aligned
    (`alignment`) and each integer's value (Triton specializes integers equal to 1 and multiples of 16). None: Triton's
    path."""
    if not ENABLED or key is None or JITFunction is None or not isinstance(kernel, JITFunction):
        kernel[grid](*args, **constexprs, **options)
        return
    full = (id(kernel), torch.cuda.current_device(), len(grid), key)
    hit = _COMPILED.get(full)
    if hit is not None:
        compiled, tail = hit
        if VERIFY:
            _verify(kernel, compiled, args, constexprs, options, key)
        compiled[grid + (1,) * (3 - len(grid))](*args, *tail)
        return
    compiled = kernel[grid](*args, **constexprs, **options)
    params = kernel.signature.parameters
    tail = tuple(constexprs.get(name, options.get(name, params[name].default)) for name in kernel.arg_names[len(args):])
    if any(value is inspect.Parameter.empty for value in tail):
        raise TypeError(f"launch: {kernel.__name__} got no value for some of {kernel.arg_names[len(args):]}")
    if compiled is not None and hasattr(compiled, "run"):
        if len(_COMPILED) >= MAX_ENTRIES:
            _COMPILED.clear()
        _COMPILED[full] = (compiled, tail)


def alignment(*tensors) -> int:
    """A bit per tensor: whether its data pointer is a multiple of 16 bytes (None entries count as aligned)."""
    mask = 0
    for i, t in enumerate(tensors):
        if t is None or t.data_ptr() % 16 == 0:
            mask |= 1 << i
    return mask


def descriptor_key(desc) -> tuple | None:
    """What a host TMA descriptor contributes to a key: its dtype, shape, strides and block (its layout follows from
    the call site); None for None."""
    if desc is None:
        return None
    return desc.base.dtype, tuple(desc.shape), tuple(desc.strides), tuple(desc.block_shape)


def _verify(kernel, compiled, args, constexprs, options, key) -> None:
    """Raise unless Triton's own binding of this call finds `compiled` (the kernel kept for `key`)."""
    from triton import knobs

    kernel_cache, kernel_key_cache, _, _, binder = kernel.device_caches[torch.cuda.current_device()]
    kwargs = {**constexprs, **options}  # (as `JITFunction.run` completes them)
    kwargs["debug"] = kwargs.get("debug", kernel.debug) or knobs.runtime.debug
    kwargs["instrumentation_mode"] = knobs.compilation.instrumentation_mode
    _, specialization, opts = binder(*args, **kwargs)
    found = kernel_cache.get(compute_cache_key(kernel_key_cache, specialization, opts))
    if found is not compiled:
        raise AssertionError(f"launch: the key of {kernel.__name__} is incomplete: {key} kept a kernel that Triton "
                             "would not run for this call")
