"""The compressed-tensors export against fptq's own model, side by side on the bundled model.

For each setting: quantize SmolLM2-135M (bundled calibration, 32 x 512 tokens, seed 0, groups of 64), evaluate
fptq's model, export it (`fptq.export_compressed_tensors`), load the export with transformers (compressed-tensors'
own decompression and fake quantization) and evaluate that on the same perplexity windows (the bundled BoolQ
Wikipedia passages, not WikiText-2). The FP16 model is the first row.

    python benchmarks/export_crosscheck.py --out benchmarks/results/export_crosscheck [--ppl-windows 8]

Writes `results.md` and `results.json` there (CPU, about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

SETTINGS = {  # name -> QuantConfig settings (groups of 64 where the method has groups)
    "W4A16 (rtn)": dict(method="rtn", a_bits=16, group_size=64),
    "W4A16 (gptq)": dict(method="gptq", a_bits=16, group_size=64),
    "W4A8-FP8 per-token (rtn)": dict(method="rtn", a_format="fp8", policy="all-dynamic", group_size=64),
    "W8A8 fp8": dict(method="fp8"),
    "W4A8 FPTQ (int8, layerwise)": dict(group_size=64),
}


def main() -> None:
    import fptq
    from fptq.eval.perplexity import perplexity, perplexity_tokens
    from fptq.export.compressed_tensors import quantization_config
    from fptq.report.tables import markdown_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for results.md / results.json")
    p.add_argument("--ppl-windows", type=int, default=8, help="perplexity windows of 2048 tokens (default: 8)")
    args = p.parse_args()
    torch.set_num_threads(2)
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.set_verbosity_error()

    def ppl(model, tokens):
        return perplexity(model, tokens, seqlen=2048, max_windows=args.ppl_windows, progress=False)["ppl"]

    model, tok = fptq.load_model("bundled")
    tokens = perplexity_tokens(tok)
    rows = [{"setting": "FP16", "fptq": ppl(model, tokens), "export": None, "schemes": "", "seconds": 0.0}]
    calib = fptq.CalibConfig(samples=32, seqlen=512)
    with tempfile.TemporaryDirectory() as work:
        for i, (name, settings) in enumerate(SETTINGS.items()):
            model, tok = fptq.load_model("bundled")
            start = time.perf_counter()
            fptq.quantize(model, tok, fptq.QuantConfig(**settings), calib, progress=False)
            seconds = time.perf_counter() - start
            ours = ppl(model, tokens)
            folder = fptq.export_compressed_tensors(model, Path(work) / f"ct{i}", tokenizer=tok)
            _, schemes = quantization_config(model)
            exported = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
            rows.append({"setting": name, "fptq": ours, "export": ppl(exported, tokens), "seconds": seconds,
                         "schemes": ", ".join(f"{s['name']} ({len(s['layers'])})" for s in schemes)})
            print(rows[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, CPU",
            "torch": torch.__version__, "ppl": f"bundled BoolQ passages, {args.ppl_windows} x 2048 tokens",
            "calibration": "bundled, 32 x 512, seed 0"}
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    table = markdown_table(
        ["setting", "fptq perplexity", "export in transformers", "layers by scheme"],
        [[r["setting"], round(r["fptq"], 3), "" if r["export"] is None else round(r["export"], 3), r["schemes"]]
         for r in rows])
    (out / "results.md").write_text(f"{json.dumps(meta)}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
