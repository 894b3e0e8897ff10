"""Kernel tests run the Triton kernels on the CPU through `TRITON_INTERPRET=1` when there is no GPU.

The variable must be set before `fptq.kernels.triton_w4a8` defines its kernels (Triton reads it
when `@triton.jit` runs), so it is set here, at collection, before the test modules import it.
"""

from __future__ import annotations

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _patch_interpreter_for_numpy_2_4() -> None:
    # Triton < 3.8's interpreter turns its scalars (1-element arrays) into Python ints with
    # `int(array)`, which NumPy >= 2.4 rejects for arrays of ndim > 0; 3.8 squeezes first.
    try:
        from triton.runtime import interpreter
    except ImportError:
        return
    original = interpreter._patch_lang_tensor
    if getattr(original, "_fptq_patched", False):
        return

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patched._fptq_patched = True
    interpreter._patch_lang_tensor = patched


if not HAS_CUDA:
    _patch_interpreter_for_numpy_2_4()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip)
