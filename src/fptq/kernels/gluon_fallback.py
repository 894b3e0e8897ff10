"""One switch per Gluon kernel (`triton.experimental.gluon`, an experimental API): if a kernel fails to
compile on this Triton / GPU, the process warns once and uses the Triton kernel for that path from
then on. Device errors, running out of memory (and anything raised during CUDA-graph capture) are re-raised:
they are not a Gluon kernel's to hide."""

from __future__ import annotations

import traceback
import warnings

import torch

_FAILED: set[str] = set()


def failed(kernel: str) -> bool:
    """Whether `kernel` ("decode", "prefill") failed before in this process."""
    return kernel in _FAILED


def note_failure(kernel: str, e: Exception) -> None:
    """Record that `kernel` raised `e` (re-raised if it is a device error or happened during capture)."""
    if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        raise e
    if "CUDA" in type(e).__name__ or "CUDA error" in str(e) or isinstance(e, torch.OutOfMemoryError):
        raise e
    _FAILED.add(kernel)
    warnings.warn(
        f"fptq: the Gluon {kernel} kernel failed ({type(e).__name__}: {str(e)[:200]}); using the Triton kernel from now on",
        RuntimeWarning,
        stacklevel=3,
    )


def raised_in(e: Exception, function) -> bool:
    """Whether `e` was raised in a call of `function` (its traceback passes through it): a failure of a launch made
    next to a Gluon kernel's in one try (the quantization kernel before the decode GEMM) is not the Gluon kernel's."""
    code = getattr(function, "__code__", None)
    return code is not None and any(frame.f_code is code for frame, _ in traceback.walk_tb(e.__traceback__))
