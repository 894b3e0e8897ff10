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

A kept kernel is launched through Triton's C launcher directly where it can be (`_Direct`): without the Python
Triton wraps around it per launch (current device and stream looked up, launch metadata and hook chains, scratch
closures, and a loop over every argument that encodes each TMA descriptor again — ~40 µs of the ~85 µs a profiled
eager decode call costs on the H100 machine, benchmarks/GPU_NOTES.md run 141). Descriptors the caller keeps across
calls (`kept`: their positions in `args`) are encoded once per descriptor object and base pointer. Only a kernel
without global or profile scratch, and only while no launch hook is installed (profilers), takes it.

Only real Triton kernel objects take the short path (a stand-in, as the tests' launch spies, always goes through
`kernel[grid](...)`); `ENABLED = False` turns it off; `VERIFY = True` (the GPU tests) runs Triton's binder on every
short launch as well and raises if it would have picked another compiled kernel — an incomplete key.
"""

from __future__ import annotations

import inspect
import weakref

import torch

try:
    from triton import knobs
    from triton.knobs import HookChain
    from triton.runtime.jit import JITFunction, compute_cache_key
except ImportError:  # pragma: no cover - no Triton: nothing is launched
    JITFunction = compute_cache_key = knobs = HookChain = None
try:
    from triton.backends.nvidia.driver import make_tensordesc_arg
except ImportError:  # pragma: no cover - no NVIDIA backend: Triton's launch path only
    make_tensordesc_arg = None
_current_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # (None in a CPU build of torch)

ENABLED = True
DIRECT = True  # kept kernels through Triton's C launcher directly (`_Direct`)
VERIFY = False
MAX_ENTRIES = 4096  # compiled kernels kept per process (cleared when full; an entry is a reference and a tuple)

_COMPILED: dict[tuple, tuple] = {}


def launch(kernel, grid: tuple, key, args: tuple, constexprs: dict, options: dict, kept: tuple = ()) -> None:
    """`kernel[grid](*args, **constexprs, **options)`. `args`: the runtime arguments, in the kernel's signature order
    from its first parameter; `constexprs`: the rest of its parameters by name (or in `options`, e.g. `num_warps`);
    `options`: launch options (num_warps, maxnreg, launch_pdl, ...). `key`: hashable, equal for two calls only if
    Triton would compile them alike — it must determine every constexpr and option and, for each runtime argument,
    its type (a tensor's dtype, a descriptor's block / layout / dtype), which pointers are 16-byte aligned
    (`alignment`) and each integer's value (Triton specializes integers equal to 1 and multiples of 16). None: Triton's
    path. `kept`: positions in `args` of TMA descriptors the caller passes as the same object on later calls (encoded
    once, see `_Direct`)."""
    if not ENABLED or key is None or JITFunction is None or not isinstance(kernel, JITFunction):
        kernel[grid](*args, **constexprs, **options)
        return
    device = torch.cuda.current_device()
    full = (id(kernel), device, len(grid), key)
    hit = _COMPILED.get(full)
    if hit is not None:
        compiled, tail, direct = hit
        if VERIFY:
            _verify(kernel, compiled, args, constexprs, options, key)
        grid3 = grid + (1,) * (3 - len(grid))
        if direct is not None and DIRECT and _hooks_idle():
            direct(grid3, device, args, tail, kept)
        else:
            compiled[grid3](*args, *tail)
        return
    compiled = kernel[grid](*args, **constexprs, **options)
    params = kernel.signature.parameters
    tail = tuple(constexprs.get(name, options.get(name, params[name].default)) for name in kernel.arg_names[len(args):])
    if any(value is inspect.Parameter.empty for value in tail):
        raise TypeError(f"launch: {kernel.__name__} got no value for some of {kernel.arg_names[len(args):]}")
    if compiled is not None and hasattr(compiled, "run"):
        if len(_COMPILED) >= MAX_ENTRIES:
            _COMPILED.clear()
        _COMPILED[full] = (compiled, tail, _Direct.of(compiled))


def _hooks_idle() -> bool:
    """No launch hook installed (Triton's hook chains empty, or None)."""
    runtime = knobs.runtime
    return _idle(runtime.launch_enter_hook) and _idle(runtime.launch_exit_hook)


def _idle(hook) -> bool:
    return hook is None or (type(hook) is HookChain and not hook.calls)


class _Direct:
    """A compiled kernel's C launcher (`CudaLauncher`'s module function) called with the arguments Triton would pass
    it: the grid, the current stream, the kernel handle, its cooperative / PDL flags, no scratch, the packed metadata,
    no launch metadata or hooks, then the kernel's arguments with each TMA descriptor expanded as
    `make_tensordesc_arg` expands it. `of` returns None for anything else (another backend or launcher layout, scratch
    memory): such kernels keep `compiled[grid](...)`."""

    __slots__ = ("raw", "function", "packed", "coop", "pdl", "descs", "metas", "encoded")

    @staticmethod
    def of(compiled) -> _Direct | None:
        if make_tensordesc_arg is None or _current_stream is None:
            return None
        try:
            launcher = compiled.run
            fn = launcher.launch
            if type(launcher).__name__ != "CudaLauncher" or launcher.global_scratch_size or launcher.profile_scratch_size:
                return None
            descs, metas = (), ()
            if getattr(fn, "__closure__", None):  # `wrap_handle_tensordesc`'s `inner` around the C function
                cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__)))
                if fn.__name__ != "inner" or not {"launcher", "tensordesc_indices", "tensordesc_meta"} <= cells.keys():
                    return None
                descs, metas = tuple(sorted(cells["tensordesc_indices"])), tuple(cells["tensordesc_meta"])
                fn = cells["launcher"]
            if not callable(fn) or len(descs) != len(metas):
                return None
            direct = _Direct()
            direct.raw, direct.function, direct.packed = fn, compiled.function, compiled.packed_metadata
            direct.coop, direct.pdl = launcher.launch_cooperative_grid, launcher.launch_pdl
            direct.descs, direct.metas, direct.encoded = descs, metas, {}
            return direct
        except Exception:  # noqa: BLE001 - an unknown Triton: its own launch path
            return None

    def __call__(self, grid3: tuple, device: int, args: tuple, tail: tuple, kept: tuple) -> None:
        if self.descs:
            expanded = list(args)
            for i, meta in zip(reversed(self.descs), reversed(self.metas)):  # (from the back: positions stay valid)
                if i >= len(args):
                    continue
                desc = args[i]
                expanded[i:i + 1] = self._encoded(desc, meta) if i in kept else make_tensordesc_arg(desc, meta)
            args = expanded
        self.raw(grid3[0], grid3[1], grid3[2], _current_stream(device), self.function, self.coop, self.pdl, None, None,
                 self.packed, None, None, None, *args, *tail)

    def _encoded(self, desc, meta) -> list:
        """`make_tensordesc_arg(desc, meta)`, kept per descriptor object (weakly: a kept launch must not keep a
        layer's weights alive) while its base pointer stays."""
        hit = self.encoded.get(id(desc))
        ptr = desc.base.data_ptr()
        if hit is not None and hit[0]() is desc and hit[1] == ptr:
            return hit[2]
        if len(self.encoded) >= MAX_ENTRIES:
            self.encoded.clear()
        encoded = make_tensordesc_arg(desc, meta)
        self.encoded[id(desc)] = (weakref.ref(desc), ptr, encoded)
        return encoded


def alignment(*tensors) -> int:
    """A bit per tensor: whether its data pointer is a multiple of 16 bytes (None entries count as aligned)."""
    mask = 0
    for i, t in enumerate(tensors):
        if t is None or t.data_ptr() % 16 == 0:
            mask |= 1 << i
    return mask


def rebased(desc, base):
    """A copy of host TMA descriptor `desc` (a dataclass) on `base`, a tensor of the same shape, strides and dtype (a
    planned descriptor on a call's fresh buffer), without its checks (`desc` passed them; the launch key holds `base`'s
    alignment): ~0.7 µs against ~2.6 for `copy.copy` here. `desc`'s own base is dropped, so that a kept descriptor
    holds no call's buffer."""
    new = object.__new__(type(desc))
    new.__dict__ = desc.__dict__.copy()
    new.base = base
    desc.base = None
    return new


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
