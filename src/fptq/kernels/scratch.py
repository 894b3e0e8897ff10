"""Zeroed int32 buffers kept per GPU for kernels that leave them zero again after every launch.

The TMA decode kernel's split-K launches (M <= 16) hand their partial sums to the last K slice through a buffer in
global memory without a launch of their own to zero it first: a memset per call would be a launch (or a graph node)
in front of the kernel and break its programmatic dependent launch. So they keep one buffer per GPU, zeroed once,
and every launch leaves it zero: the partials of `triton_w4a8.SPLIT_FLAGS` ("decode split-K partials"), or with it
off the arrival counters of the one-launch M = 1 op and of the GEMM-only op under PDL ("decode split-K counters").
The price: such launches on one GPU must not run concurrently on two streams (they would share the buffer; with the
partials, a reducer whose partial another launch took waits a bounded time and sums a NaN).

The buffer is made by a thread of its own: CUDA-graph memory pools take the allocations of the thread that
warms up or captures a graph (torch.compile's cudagraph trees warm up in their pool and check that every
live block there is theirs), and a buffer kept for the process must not live in one. While the current
stream captures a graph, a buffer still to be made is not made: the caller takes its other path.
"""

from __future__ import annotations

import threading

import torch

_KEPT: dict[tuple[str, int], torch.Tensor] = {}
_RETIRED: list[torch.Tensor] = []  # outgrown buffers, kept alive: a captured graph may still use them


def kept_zeros(name: str, numel: int, device: torch.device) -> torch.Tensor | None:
    """The zeroed int32 buffer `name` of `device` with at least `numel` elements (made or grown here), or None
    if it would have to be made while this stream captures a CUDA graph."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    buf = _KEPT.get((name, index))
    if buf is None or buf.numel() < numel:
        if torch.cuda.is_current_stream_capturing():
            return None
        if buf is not None:
            _RETIRED.append(buf)
        buf = _KEPT[name, index] = _zeros_outside_graph_pools(numel, torch.device("cuda", index))
    return buf


def _zeros_outside_graph_pools(numel: int, device: torch.device) -> torch.Tensor:
    """int32 zeros allocated (and synchronized) by a thread of its own (see the module docstring)."""
    made = []

    def make():
        with torch.cuda.device(device):
            made.append(torch.zeros(numel, dtype=torch.int32, device=device))
            torch.cuda.synchronize(device)

    worker = threading.Thread(target=make, name="fptq-scratch")
    worker.start()
    worker.join()
    if not made:
        raise RuntimeError("fptq: could not allocate a kept scratch buffer on " + str(device))
    return made[0]
