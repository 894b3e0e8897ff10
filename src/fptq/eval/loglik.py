"""Batched continuation log-likelihoods for any Hugging Face causal LM.

The numbers follow lm-evaluation-harness 0.4.x (`HFLM.loglikelihood`) token for token:

- `encode_pair` tokenizes like lm-eval: whitespace at the end of the context moves to the start
  of the continuation, the context+continuation string is tokenized whole and split after as many
  tokens as the context alone has (so a merge across the boundary stays in the continuation),
  with the tokenizer's default special tokens.
- The model input is `(context + continuation)[-(max_length + 1):][:-1]` (left truncation) and the
  score of a request is the sum over the continuation tokens of the float32 log-softmax, plus a
  flag saying whether greedy decoding would have produced every continuation token.

Only the computation is arranged differently, for speed on a CPU:

- identical inputs are run once (e.g. the four one-token MMLU answers, BoolQ's " no"/" yes");
- requests of one *group* (the choices of one question, the questions of one MMLU subject) share
  their longest common token prefix: it runs once, its key/value cache is reused by every member,
  and only the rest ("suffix") runs per request, batched across groups with an attention mask and
  explicit position ids;
- suffixes are sorted by length (longest first) and right-padded, one forward per batch;
- logits are computed only for the positions that are scored (`logits_to_keep`), not for the
  whole sequence: with a 49k vocabulary the output projection would otherwise dominate.

A model whose forward does not accept a key/value cache built this way (`past_key_values`,
`position_ids`, a 2D `attention_mask`) can still be scored with `share_prefix=False`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = ["encode_pair", "encode_pairs", "model_max_length", "loglikelihood", "LoglikResult"]

# (sum of log-probs of the continuation tokens, greedy decoding reproduces the continuation)
LoglikResult = tuple[float, bool]

# Prefixes shorter than this are not worth a separate forward.
_MIN_SHARED_PREFIX = 4
# Cap on the prefix tokens whose key/value cache is held at once (bounds memory).
_PREFIX_TOKENS_PER_CHUNK = 16384
# Padded tokens a forward takes at most (`batch_tokens`), on the CPU and on a GPU.
BATCH_TOKENS_CPU = 4096
BATCH_TOKENS_GPU = 32768


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) exactly as lm-eval's causal `HFLM` builds them."""
    if not context:
        raise ValueError("the context of a log-likelihood request must not be empty")
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = list(tokenizer.encode(context + continuation))
    n_context = len(tokenizer.encode(context))
    return whole[:n_context], whole[n_context:]


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """`encode_pair` for many pairs; each distinct string is tokenized once, in batches."""
    splits = []
    for context, continuation in pairs:
        if not context:
            raise ValueError("the context of a log-likelihood request must not be empty")
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        splits.append((context, context + continuation))
    unique = list(dict.fromkeys(s for pair in splits for s in pair))
    ids: dict[str, list[int]] = {}
    for start in range(0, len(unique), 1024):
        chunk = unique[start : start + 1024]
        if getattr(tokenizer, "is_fast", False):
            encoded = tokenizer(chunk)["input_ids"]
        else:
            encoded = [tokenizer.encode(text) for text in chunk]
        ids.update(zip(chunk, (list(e) for e in encoded)))
    out = []
    for context, whole in splits:
        n_context = len(ids[context])
        out.append((ids[whole][:n_context], ids[whole][n_context:]))
    return out


def model_max_length(model, tokenizer=None, default: int = 2048) -> int:
    """The context length lm-eval's HFLM would use: config first, then tokenizer, else 2048."""
    config = getattr(model, "config", None)
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 10**9:
        return value
    return default


@dataclass
class _Row:
    """One distinct model input; several requests (different continuations) may read it."""

    tokens: tuple[int, ...]
    need: int  # how many trailing positions are scored (longest continuation reading this row)
    group: object
    prefix: int = 0  # tokens taken from the group's shared prefix cache
    readers: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # (request index, continuation)


def _common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        i = 0
        while i < n and s[i] == first[i]:
            i += 1
        n = i
        if n == 0:
            break
    return n


def _accepts(model, name: str) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _cache_kwarg(model) -> str | None:
    """Name of the forward argument that takes a key/value cache (`cache` from transformers 5.2x)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def _batches(items: list, batch_size: int, length=None, max_tokens: int | None = None) -> list[list]:
    """`items` in consecutive batches of at most `batch_size`; with `length` (item -> tokens) and `max_tokens`, also
    at most `max_tokens` padded tokens a batch (rows × the longest row; a longer item alone), so that long inputs
    (MMLU's 5-shot prompts) do not stack 16 rows of attention and cache at once."""
    if length is None or max_tokens is None:
        return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    batches: list[list] = []
    current: list = []
    longest = 0
    for item in items:
        n = length(item)
        if current and (len(current) == batch_size or (len(current) + 1) * max(longest, n) > max_tokens):
            batches.append(current)
            current, longest = [], 0
        current.append(item)
        longest = max(longest, n)
    if current:
        batches.append(current)
    return batches


def batch_tokens(device: torch.device) -> int:
    """Padded tokens a forward may take at most (`_batches`): on the CPU a few rows of long prompts run faster than
    16 (the new-user review of session 28: MMLU with 16 rows a batch took 2.6× as long as one row and 9.8 GB), on a
    GPU more fit."""
    return BATCH_TOKENS_GPU if device.type == "cuda" else BATCH_TOKENS_CPU


def loglikelihood(
    model,
    requests: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    groups: Sequence[object] | None = None,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    max_length: int | None = None,
    share_prefix: bool = True,
    progress: bool = True,
    desc: str = "loglikelihood",
) -> list[LoglikResult]:
    """Score `(context_ids, continuation_ids)` pairs; returns `(logprob_sum, is_greedy)` per pair.

    `groups[i]` names the group of request i (requests of a group share their common token
    prefix); None puts every request in its own group. `batch_size` is the number of model
    inputs per forward.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if max_length is None:
        max_length = model_max_length(model)
    device = torch.device(device)

    rows: dict[tuple[int, ...], _Row] = {}
    for i, (ctx, cont) in enumerate(requests):
        ctx, cont = list(ctx), tuple(cont)
        if not ctx or not cont:
            raise ValueError(f"request {i} has an empty context or continuation")
        if len(cont) > max_length:
            raise ValueError(f"request {i}: continuation of {len(cont)} tokens exceeds max_length {max_length}")
        tokens = tuple((ctx + list(cont))[-(max_length + 1) :][:-1])
        row = rows.get(tokens)
        if row is None:
            row = rows[tokens] = _Row(tokens, len(cont), groups[i] if groups is not None else ("#", i))
        row.need = max(row.need, len(cont))
        row.readers.append((i, cont))

    by_group: dict[object, list[_Row]] = {}
    for row in rows.values():
        by_group.setdefault(row.group, []).append(row)
    cache_kw = _cache_kwarg(model)
    sharing = share_prefix and cache_kw is not None and _accepts(model, "position_ids")
    for members in by_group.values():
        if not sharing or len(members) < 2:
            continue
        shared = min(_common_prefix_len([r.tokens for r in members]), min(len(r.tokens) - r.need for r in members))
        if shared >= _MIN_SHARED_PREFIX:
            for r in members:
                r.prefix = shared

    # Chunks of groups whose prefix caches are held at the same time.
    chunks: list[list[list[_Row]]] = []
    current: list[list[_Row]] = []
    held = 0
    for members in by_group.values():
        cost = members[0].prefix
        if current and held + cost > _PREFIX_TOKENS_PER_CHUNK:
            chunks.append(current)
            current, held = [], 0
        current.append(members)
        held += cost
    if current:
        chunks.append(current)

    # Each chunk's forwards: its prefix batches (longest prefix first) and its row batches (longest suffix first).
    max_tokens = batch_tokens(device)
    plans = [(_batches(_prefix_order(chunk), batch_size, _prefix_len, max_tokens),
              _batches(_row_order(chunk), batch_size, _row_len, max_tokens)) for chunk in chunks]
    n_forwards = sum(len(prefix_batches) + len(row_batches) for prefix_batches, row_batches in plans)

    keep_logits = _accepts(model, "logits_to_keep")
    results: list[LoglikResult | None] = [None] * len(requests)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_forwards, desc=desc, unit="batch", leave=False)
    try:
        with torch.inference_mode():
            for prefix_batches, row_batches in plans:
                caches = _prefix_caches(model, prefix_batches, device, bar)
                for batch in row_batches:
                    _score_batch(model, batch, caches, device, keep_logits, cache_kw, results)
                    if bar is not None:
                        bar.update(1)
                del caches
    finally:
        if bar is not None:
            bar.close()
    return results  # type: ignore[return-value]


def _prefix_order(chunk: list[list[_Row]]) -> list[list[_Row]]:
    """The groups of `chunk` with a shared prefix, longest prefix first (a batch is padded to its first)."""
    return sorted((m for m in chunk if m[0].prefix), key=lambda m: (-m[0].prefix, m[0].tokens[: m[0].prefix]))


def _prefix_len(members: list[_Row]) -> int:
    return members[0].prefix


def _row_order(chunk: list[list[_Row]]) -> list[_Row]:
    """The rows of `chunk`, longest suffix first (a batch is padded to its longest suffix; the prefix comes from the
    cache)."""
    return sorted((r for members in chunk for r in members), key=lambda r: (-(len(r.tokens) - r.prefix), r.tokens))


def _row_len(row: _Row) -> int:
    return len(row.tokens)  # (prefix from the cache + suffix: what a row's attention spans)


def _prefix_caches(model, prefix_batches: list[list[list[_Row]]], device, bar) -> dict[object, list]:
    """Run each shared prefix once (batches of groups, longest prefix first); returns group -> per-layer (keys,
    values) of shape [1, H, L, D]."""
    caches: dict[object, list] = {}
    for batch in prefix_batches:
        width = batch[0][0].prefix
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        for b, members in enumerate(batch):
            p = members[0].prefix
            ids[b, :p] = torch.tensor(members[0].tokens[:p])
        # Right padding needs no mask: a causal model never lets a real token see a later pad.
        extra = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
        out = model(input_ids=ids.to(device), use_cache=True, **extra)
        cache = getattr(out, "cache", None)
        layers = _cache_layers(cache if cache is not None else out.past_key_values)
        for b, members in enumerate(batch):
            p = members[0].prefix
            caches[members[0].group] = [(k[b : b + 1, :, :p], v[b : b + 1, :, :p]) for k, v in layers]
        if bar is not None:
            bar.update(1)
    return caches


def _cache_layers(cache):
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return [(layer[0], layer[1]) for layer in cache]  # legacy tuple of (keys, values)


def _score_batch(model, batch: list[_Row], caches: dict, device, keep_logits: bool, cache_kw, results: list) -> None:
    from transformers import DynamicCache

    suffixes = [r.tokens[r.prefix :] for r in batch]
    width = max(len(s) for s in suffixes)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    for b, s in enumerate(suffixes):
        ids[b, : len(s)] = torch.tensor(s)
    kwargs: dict = {"input_ids": ids.to(device)}
    past = max(r.prefix for r in batch)
    if past:
        # Stack the groups' prefix caches, right-padded to the longest, and mask the padding.
        mask = torch.ones((len(batch), past + width), dtype=torch.long)
        positions = torch.empty((len(batch), width), dtype=torch.long)
        per_layer = None
        for b, r in enumerate(batch):
            mask[b, r.prefix : past] = 0
            positions[b] = torch.arange(r.prefix, r.prefix + width)
            layers = caches[r.group] if r.prefix else None
            if per_layer is None:
                ref = next(iter(caches.values()))
                per_layer = [
                    (
                        k.new_zeros((len(batch), k.shape[1], past, k.shape[3])),
                        v.new_zeros((len(batch), v.shape[1], past, v.shape[3])),
                    )
                    for k, v in ref
                ]
            if layers is not None:
                for (k_all, v_all), (k, v) in zip(per_layer, layers):
                    k_all[b, :, : r.prefix] = k[0]
                    v_all[b, :, : r.prefix] = v[0]
        kwargs.update(
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            use_cache=True,
        )
        kwargs[cache_kw] = DynamicCache(per_layer)
    # Scored positions of row b (suffix coordinates): [len_b - need_b, len_b).
    first = min(len(s) - r.need for s, r in zip(suffixes, batch))
    keep = width - first
    if keep_logits:
        kwargs["logits_to_keep"] = keep
    logits = model(**kwargs).logits
    offset = logits.shape[1] - keep  # 0 when the model honoured logits_to_keep
    for b, (s, r) in enumerate(zip(suffixes, batch)):
        lo = offset + len(s) - r.need - first
        window = torch.log_softmax(logits[b, lo : lo + r.need].float(), dim=-1)
        greedy = window.argmax(dim=-1)
        for index, cont in r.readers:
            n = len(cont)
            target = torch.tensor(cont, device=window.device)
            part = window[r.need - n :]
            logprob = part.gather(1, target[:, None]).sum()
            results[index] = (float(logprob), bool((greedy[r.need - n :] == target).all()))
