"""Calibration token windows from the bundled text, random tokens, a file, or a hub data set."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import torch

from fptq.config import CalibConfig, option
from fptq.errors import CalibrationError, ConfigError, HubUnavailableError

__all__ = ["HUB_DATASETS", "calibration_texts", "calibration_tokens", "calibration_windows", "describe"]

# name -> (datasets.load_dataset arguments, text field)
HUB_DATASETS = {
    "wikitext2": (dict(path="wikitext", name="wikitext-2-raw-v1", split="train"), "text"),
    "c4": (
        dict(path="allenai/c4", data_files={"train": "en/c4-train.00000-of-01024.json.gz"}, split="train"),
        "text",
    ),
    "pile": (dict(path="mit-han-lab/pile-val-backup", split="validation"), "text"),
}


@contextlib.contextmanager
def _offline_without_network(reachable: bool):
    """Where the hub's host does not resolve (`reachable` False: no network), datasets' and huggingface_hub's
    offline mode for the block, so that a cached dataset loads from the cache and a missing one fails at once (not
    after ~25 s of retries)."""
    if reachable:
        yield
        return
    import datasets.config
    import huggingface_hub.constants

    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def load_hub_texts(name: str, split: str | None = None) -> list[str]:
    args, field = HUB_DATASETS[name]
    args = dict(args, **({"split": split} if split else {}))
    try:
        import datasets
    except ImportError:
        raise HubUnavailableError(
            f"{name} needs the `datasets` package (pip install datasets); offline, use source 'bundled' or "
            "'random' (--calib bundled or random)"
        ) from None
    from fptq.models.loading import hub_reachable

    reachable = hub_reachable()
    try:
        with _offline_without_network(reachable):
            data = datasets.load_dataset(**args)
    except Exception as exc:  # datasets raises many types for a missing network; report one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        why = f"({first})" if reachable else "(no network here, and it is not in the local datasets cache)"
        raise HubUnavailableError(
            f"cannot load {name} from the Hugging Face hub {why}; "
            "offline, use the bundled data instead (--calib bundled, random or a file; --ppl bundled)"
        ) from None
    return [row[field] for row in data]


def read_text_file(path: Path) -> list[str]:
    if path.is_dir():
        raise ConfigError(f"calibration file {path} is a folder; give a .txt or .jsonl file")
    if not path.is_file():
        raise ConfigError(f"calibration file {path} does not exist")
    if path.suffix == ".jsonl":
        texts = []
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        texts.append(json.loads(line)["text"])
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise CalibrationError(f"{path}:{n} is not a JSON object with a 'text' field") from None
        return texts
    return [path.read_text(encoding="utf-8", errors="replace")]


def calibration_texts(source: str) -> list[str]:
    if source == "bundled":
        from fptq.data.bundled import calibration_passages

        return list(calibration_passages())
    if source in HUB_DATASETS:
        return load_hub_texts(source)
    return read_text_file(Path(source).expanduser())


def calibration_tokens(tokenizer, calib: CalibConfig, vocab_size: int | None = None) -> torch.Tensor:
    """`(samples, seqlen)` token ids: random windows of the concatenated source text (see `calibration_windows`)."""
    return calibration_windows(tokenizer, calib, vocab_size)[0]


def calibration_windows(tokenizer, calib: CalibConfig, vocab_size: int | None = None) -> tuple[torch.Tensor, dict]:
    """`(samples, seqlen)` token ids, and what a saved config records of them (`describe`).

    Windows start at random positions of the concatenated source text, drawn with `calib.seed` (the same seed gives
    the same tokens). A text of at least samples x seqlen tokens gives windows that do not overlap, so no text
    position calibrates twice: `samples` starts are drawn independently, and where two of those windows overlap
    the whole set is drawn again as disjoint windows at random places (`_disjoint_starts`; a first draw without
    overlap is kept, so it gives the same windows as earlier fptq versions, which drew with replacement). A shorter
    text is reused: its windows overlap, with a warning. `random` draws uniform token ids (the FPTQ paper reports
    random tokens often calibrate well). An unset `calib.seqlen` (None) is the default length, 2048: there is no
    model here to cap it (`fptq.quantize` resolves it on the model first).
    """
    calib = calib.for_context(None)
    gen = torch.Generator().manual_seed(calib.seed)
    if calib.source == "random":
        vocab = vocab_size or len(tokenizer)
        return torch.randint(0, vocab, (calib.samples, calib.seqlen), generator=gen), describe(calib)
    texts = [t for t in calibration_texts(calib.source) if t and t.strip()]
    if not texts:
        raise CalibrationError(f"calibration source {calib.source} contains no text")
    sep = tokenizer.eos_token or "\n\n"
    ids = tokenizer(sep.join(texts), return_tensors="pt", add_special_tokens=False).input_ids[0]
    if ids.numel() < calib.seqlen + 1:
        raise CalibrationError(
            f"calibration text from {calib.source} has {ids.numel()} tokens, shorter than one sequence of "
            f"{calib.seqlen}; give more text or a smaller {option('seqlen')}"
        )
    if calib.samples * calib.seqlen > ids.numel():
        warnings.warn(
            f"fptq: calibration text from {calib.source} has {ids.numel()} tokens, fewer than the "
            f"{calib.samples} x {calib.seqlen} = {calib.samples * calib.seqlen} that samples x seqlen "
            "(--calib-samples x --calib-seqlen) ask for; the windows overlap and repeat text",
            UserWarning,
            stacklevel=1,  # (this line: one place, so Python shows it once however often calibration runs)
        )
    starts = torch.randint(0, ids.numel() - calib.seqlen + 1, (calib.samples,), generator=gen)
    wanted = calib.samples * calib.seqlen
    covered = _covered(starts, calib.seqlen)
    if wanted <= ids.numel() and covered < wanted:  # overlapping windows of a long text
        starts, covered = _disjoint_starts(ids.numel(), calib.samples, calib.seqlen, gen), wanted
    tokens = torch.stack([ids[s : s + calib.seqlen] for s in starts.tolist()])
    return tokens, describe(calib, text_tokens=ids.numel(), distinct=covered)


def _disjoint_starts(length: int, samples: int, seqlen: int, gen: torch.Generator) -> torch.Tensor:
    """`samples` random starts of windows of `seqlen` tokens that do not overlap, in a text of `length` tokens (at
    least samples x seqlen): sorted random offsets in [0, length - samples x seqlen], the i-th window placed
    i x seqlen tokens after its offset (so consecutive windows are at least seqlen apart, and the last one ends in
    the text). The windows come in text order."""
    slack = length - samples * seqlen  # (text positions no window covers)
    offsets = torch.randint(0, slack + 1, (samples,), generator=gen).sort().values
    return offsets + torch.arange(samples) * seqlen


def _covered(starts: torch.Tensor, seqlen: int) -> int:
    """How many text positions the windows `[s, s + seqlen)` cover together (each counted once)."""
    covered, end = 0, 0  # (end: where the windows so far stop)
    for s in sorted(starts.tolist()):
        covered += max(0, s + seqlen - max(s, end))
        end = max(end, s + seqlen)
    return covered


def describe(calib: CalibConfig, text_tokens: int | None = None, distinct: int | None = None) -> dict:
    """The calibration settings plus `tokens`, the samples x seqlen token positions that calibrated; for text also
    `text_tokens`, the length of the whole text, and `covered_tokens`, the text positions the windows cover, each
    counted once (equal to `tokens` where the text holds samples x seqlen tokens, as the windows then do not
    overlap; fewer where a shorter text is reused, and never more than `text_tokens`). An unset `calib.seqlen` is
    the default length, as in `calibration_windows`."""
    calib = calib.for_context(None)
    info = dict(calib.to_dict(), tokens=calib.samples * calib.seqlen)
    if text_tokens is not None:
        info.update(text_tokens=text_tokens, covered_tokens=distinct)
    return info
