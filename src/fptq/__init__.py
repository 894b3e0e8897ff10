"""fptq: FPTQ W4A8 post-training quantization for Hugging Face causal LMs.

    import fptq
    model, tok = fptq.load_model("bundled")
    fptq.quantize(model, tok, fptq.QuantConfig(group_size=64), fptq.CalibConfig(samples=32, seqlen=512))
    fptq.save_quantized(model, "smollm2-w4a8", tokenizer=tok)
    model = fptq.load_quantized("smollm2-w4a8")
    fptq.export_compressed_tensors(fptq.load_quantized("smollm2-w4a8", fuse=False), "smollm2-ct")  # vLLM's format
"""

from __future__ import annotations

__version__ = "0.1.0"

from fptq.api import quantize  # noqa: E402
from fptq.config import CalibConfig, QuantConfig  # noqa: E402
from fptq.errors import FPTQError  # noqa: E402
from fptq.export.compressed_tensors import export_compressed_tensors  # noqa: E402
from fptq.export.native import load_quantized, save_quantized  # noqa: E402
from fptq.models.loading import load_model, load_tokenizer  # noqa: E402
from fptq.nn.prologue import fuse_prologues  # noqa: E402
from fptq.nn.quant_linear import QuantLinear  # noqa: E402
from fptq.nn.shared_input import fuse_shared_inputs  # noqa: E402

__all__ = [
    "__version__",
    "quantize",
    "save_quantized",
    "load_quantized",
    "export_compressed_tensors",
    "load_model",
    "load_tokenizer",
    "QuantConfig",
    "CalibConfig",
    "QuantLinear",
    "fuse_shared_inputs",
    "fuse_prologues",
    "FPTQError",
]
