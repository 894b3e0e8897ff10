"""Repeat launches of a Triton / Gluon kernel without Triton's per-call argument binding.

A prefill op is one kernel launch of 70-330 µs on the H100, and a compiled 2048-token prefill of the LLaMA-2-7B shape
without CUDA graphs is a race between the CPU enqueueing ~600 launches and the GPU running them (benchmarks/
GPU_NOTES.md, runs 128-130: 28-30 ms of host time against 41 ms of GPU time, and a slow mode at the host's pace when
the machine's CPU is slower). Triton's `kernel[grid](...)` binds and specializes every argument on every call
(~56 µs of host time on that machine, of which ~24 the launch itself). Here the caller names a `key` that determines
everything Triton specializes on (argument types, pointer alignment, integer values, constexprs, options); the first
launch with a key goes through Triton and keeps its compiled kernel, later ones launch that kernel directly with the
arguments in signature order (`CompiledKernel[grid](*args)`, Triton's own launcher: TMA descriptors encoded, PDL and
scratch as set at compile time).

Only real Triton kernel objects take the short path (a stand-in, as the tests' launch spies, always goes through
`kernel[grid](...)`); `ENABLED = False` turns the short path off.
"""

from __future__ import annotations

try:
    from triton.runtime.jit import JITFunction
except ImportError:  # pragma: no cover - no Triton: nothing is launched
    JITFunction = None

ENABLED = True
MAX_ENTRIES = 4096  # compiled kernels kept per process (cleared when full; an entry is a reference and a tuple)

_COMPILED: dict[tuple, tuple] = {}


def launch(kernel, grid: tuple, key, args: tuple, constexprs: dict, options: dict) -> None:
    """`kernel[grid](*args, **constexprs, **options)`. `args`: the runtime arguments, in the kernel's signature order
    from its first parameter; `constexprs`: the rest of its parameters by name; `options`: launch options
    (num_warps, maxnreg, ...). `key`: hashable, equal for two calls only if Triton would compile them alike —
    it must determine every constexpr and option and, for each runtime argument, its type (a tensor's dtype, a
    descriptor's block / layout / dtype), whether a pointer is 16-byte aligned and an integer's value (Triton
    specializes integers equal to 1 and multiples of 16). None: Triton's path."""
    if not ENABLED or key is None or JITFunction is None or not isinstance(kernel, JITFunction):
        kernel[grid](*args, **constexprs, **options)
        return
    full = (id(kernel), len(grid), key)
    hit = _COMPILED.get(full)
    if hit is not None:
        compiled, tail = hit
        compiled[grid + (1,) * (3 - len(grid))](*args, *tail)
        return
    compiled = kernel[grid](*args, **constexprs, **options)
    names = kernel.arg_names[len(args):]
    defaults = kernel.signature.parameters
    tail = tuple(constexprs[name] if name in constexprs else defaults[name].default for name in names)
    if compiled is not None and hasattr(compiled, "run"):
        if len(_COMPILED) >= MAX_ENTRIES:
            _COMPILED.clear()
        _COMPILED[full] = (compiled, tail)


def aligned(*tensors) -> bool:
    """Whether every tensor's data pointer is a multiple of 16 bytes (None entries are skipped)."""
    return all(t is None or t.data_ptr() % 16 == 0 for t in tensors)
