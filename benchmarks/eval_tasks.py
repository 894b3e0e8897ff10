"""Run `fptq.eval.tasks.run_tasks` one task at a time, saving the JSON after every task.

Long full-set runs (MMLU, HellaSwag) take hours on a 2-core CPU; this keeps what is done.

    PYTHONPATH=src python benchmarks/eval_tasks.py --model bundled --tasks all \\
        --threads 1 --batch-size 16 --out benchmarks/results/eval_fp16.json

`--model` takes `bundled`, a Hugging Face folder/hub id, or a folder written by
`fptq quantize` (loaded with `fptq.load_quantized`). Tasks already in `--out` are skipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch


def load(model_arg: str):
    try:
        from fptq.models.loading import load_model

        return load_model(model_arg)
    except ImportError:  # architecture table not available: plain transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from fptq.models.loading import resolve_model

        path = resolve_model(model_arg)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        return model, AutoTokenizer.from_pretrained(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--quantized", action="store_true", help="load with fptq.load_quantized")
    parser.add_argument("--tasks", default="all")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--label", default=None)
    args = parser.parse_args(argv)

    from fptq.eval.tasks import format_task_table, parse_tasks, run_tasks

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quantized:
        import fptq

        loaded = fptq.load_quantized(args.model)
        model, tokenizer = loaded if isinstance(loaded, tuple) else (loaded, fptq.load_tokenizer(args.model))
    else:
        model, tokenizer = load(args.model)
    out = Path(args.out)
    data = json.loads(out.read_text()) if out.exists() else {}
    data.setdefault("meta", {}).update(
        model=args.model,
        label=args.label or args.model,
        limit=args.limit,
        batch_size=args.batch_size,
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
    )
    results = data.setdefault("results", {})
    for task in parse_tasks(args.tasks):
        if task in results:
            continue
        start = time.strftime("%Y-%m-%d %H:%M:%S")
        res = run_tasks(model, tokenizer, [task], limit=args.limit, batch_size=args.batch_size)
        res[task]["started"] = start
        results.update(res)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1))
        summary = {k: v for k, v in res[task].items() if k != "subjects"}
        print(task, json.dumps(summary), flush=True)
    print(format_task_table({data["meta"]["label"]: results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
