"""Quantize one model several ways and evaluate each on the same data: one table.

Used by `fptq demo` (the bundled model, FP16 vs naive W4A8 vs per-token W4A8 vs FPTQ) and by
`fptq compare`. Each variant starts from a fresh copy of the FP model, is quantized through
the same engine, saved (so its size on disk is real) and evaluated on the same windows.
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass
from pathlib import Path

from fptq.api import quantize
from fptq.config import CalibConfig, QuantConfig
from fptq.eval.perplexity import perplexity, perplexity_tokens
from fptq.export.native import WEIGHTS_NAME, save_quantized
from fptq.models.loading import load_model, resolve_model
from fptq.report.tables import markdown_table

__all__ = ["Variant", "DEMO_VARIANTS", "run_comparison", "comparison_table"]


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    config: QuantConfig | None  # None: the unquantized model


def demo_variants(group_size: int = 64) -> list[Variant]:
    return [
        Variant("fp16", "FP16 weights (computed in fp32 on CPU)", None),
        Variant(
            "naive-w4a8",
            f"RTN int4 g{group_size}, every layer per-tensor static int8",
            QuantConfig(group_size=group_size, policy="all-static", equalization="none"),
        ),
        Variant(
            "dynamic-w4a8",
            f"RTN int4 g{group_size}, every layer per-token dynamic int8",
            QuantConfig(group_size=group_size, policy="all-dynamic", equalization="none"),
        ),
        Variant(
            "fptq-w4a8",
            f"FPTQ: layer-wise static / LAE+static / dynamic, int4 g{group_size}",
            QuantConfig(group_size=group_size),
        ),
    ]


DEMO_VARIANTS = demo_variants()


def _strategy_mix(policy_rows: list[dict]) -> str:
    from collections import Counter

    c = Counter(r["strategy"] for r in policy_rows)
    short = {"static": "S", "equalized+static": "LAE", "dynamic": "D", "none": "A16"}
    return " ".join(f"{short.get(k, k)}:{v}" for k, v in sorted(c.items()))


def run_comparison(
    model_name: str,
    variants: list[Variant],
    calib: CalibConfig,
    *,
    out_dir: Path,
    ppl_source: str = "bundled",
    ppl_seqlen: int = 2048,
    ppl_windows: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    log=print,
) -> list[dict]:
    """Quantize and evaluate each variant; saves each quantized folder under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fp_path = Path(resolve_model(model_name))
    results = []
    tokens = None
    for variant in variants:
        log(f"== {variant.name}: {variant.description}")
        model, tokenizer = load_model(model_name)
        if tokens is None:
            tokens = perplexity_tokens(tokenizer, ppl_source)
        row = {"method": variant.name, "description": variant.description}
        if variant.config is None:
            size = (fp_path / WEIGHTS_NAME).stat().st_size if (fp_path / WEIGHTS_NAME).is_file() else None
            row.update(scheme="W16A16", policy="-", quant_seconds=None, peak_memory_mb=None, size_mb=size and size / 2**20)
        else:
            start = time.perf_counter()
            quantize(model, tokenizer, variant.config, calib, device=device, progress=progress)
            seconds = time.perf_counter() - start
            folder = save_quantized(model, out_dir / variant.name, tokenizer=tokenizer, overwrite=True)
            row.update(
                scheme=variant.config.scheme,
                policy=_strategy_mix(model.fptq_info["policy"]),
                quant_seconds=seconds,
                peak_memory_mb=model.fptq_stats["peak_memory_mb"],
                size_mb=(folder / WEIGHTS_NAME).stat().st_size / 2**20,
                folder=str(folder),
            )
        model.to(device)
        ppl = perplexity(model, tokens, seqlen=ppl_seqlen, max_windows=ppl_windows, device=device,
                         progress=progress, desc=f"ppl {variant.name}")
        row.update(ppl=ppl["ppl"], ppl_tokens=ppl["tokens"], ppl_data=ppl_source)
        log(f"   ppl {ppl['ppl']:.3f} on {ppl['tokens']} tokens")
        results.append(row)
        del model
        gc.collect()
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(comparison_table(results) + "\n")
    return results


def comparison_table(results: list[dict]) -> str:
    return markdown_table(
        ["method", "scheme", "layers (S/LAE/D)", "ppl", "size MB", "quant s", "peak RSS MB"],
        [
            [r["method"], r["scheme"], r["policy"], round(r["ppl"], 3), round(r["size_mb"], 1) if r["size_mb"] else None,
             None if r["quant_seconds"] is None else round(r["quant_seconds"], 1),
             None if r["peak_memory_mb"] is None else round(r["peak_memory_mb"])]
            for r in results
        ],
    )
