"""Run `fptq.eval.tasks.run_tasks` one task at a time, saving the JSON after every task.

Long full-set runs (MMLU, HellaSwag) take hours on a 2-core CPU; this keeps what is done.

    PYTHONPATH=src python benchmarks/eval_tasks.py --model bundled --tasks all \\
        --threads 1 --batch-size 16 --out benchmarks/results/eval_fp16.json

`--model` takes `bundled`, a Hugging Face folder/hub id, or a folder written by
`fptq quantize` (loaded as `fptq eval` loads it). Tasks already in `--out` are skipped.
`--device cuda` evaluates on a GPU in fp16 (quantized layers through the Triton kernels).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (fp32 on the CPU, fp16 on CUDA)")
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
    from fptq.cli import _device, _load_for_eval  # the loader `fptq eval` uses (quantized folder or FP model)

    device = _device(args.device)
    model, tokenizer = _load_for_eval(args.model, device, trust_remote_code=False)
    out = Path(args.out)
    data = json.loads(out.read_text()) if out.exists() else {}
    data.setdefault("meta", {}).update(
        model=args.model,
        label=args.label or args.model,
        limit=args.limit,
        batch_size=args.batch_size,
        device=device,
        device_name=torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
    )
    results = data.setdefault("results", {})
    for task in parse_tasks(args.tasks):
        if task in results:
            continue
        start = time.strftime("%Y-%m-%d %H:%M:%S")
        t0 = time.perf_counter()
        res = run_tasks(model, tokenizer, [task], limit=args.limit, batch_size=args.batch_size, device=device)
        res[task]["seconds"] = round(time.perf_counter() - t0, 2)
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
