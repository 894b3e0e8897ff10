"""Downstream tasks: prompts, the log-likelihood engine, batching and scoring."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from fptq.errors import ConfigError
from fptq.eval import tasks as T
from fptq.eval.loglik import encode_pair, encode_pairs, loglikelihood


@pytest.fixture(scope="module")
def tokenizer():
    from fptq.models.loading import load_tokenizer

    return load_tokenizer("bundled")


@pytest.fixture(scope="module")
def tiny_model(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=2048,
    )
    model = LlamaForCausalLM(config).eval()
    # Random init gives near-uniform predictions; sharpen them so rankings are not ties.
    with torch.no_grad():
        model.lm_head.weight.mul_(40)
    return model


def _naive(model, ctx, cont):
    """Reference: one unbatched full forward, log-softmax over every position."""
    ids = torch.tensor([list(ctx) + list(cont)[:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    window = logprobs[len(ctx) - 1 :]
    target = torch.tensor(list(cont))
    return float(window.gather(1, target[:, None]).sum()), bool((window.argmax(-1) == target).all())


# ---------------------------------------------------------------------------------------
# Prompts, checked against lm-eval's templates on the first bundled documents.


def test_piqa_prompt():
    doc = T.load_docs("piqa", limit=1)[0]
    assert doc.contexts[0] == "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:"
    assert doc.continuations[0].startswith(" Provide the guinea pig with a cage full of a few inches of bedding")
    assert doc.choices[0] == doc.continuations[0][1:] and len(doc.choices) == 2 and doc.gold == 0


def test_hellaswag_prompt_and_cleanup():
    doc = T.load_docs("hellaswag", limit=1)[0]
    assert doc.contexts[0] == "Roof shingle removal: A man is sitting on a roof. He"
    assert doc.continuations[3] == " starts pulling up roofing on a roof." and doc.gold == 3
    assert T._hellaswag_clean(" Do it [title] Step one [step] now  ok ") == "Do it. Step one now ok"


def test_winogrande_partial_prompt():
    doc = T.load_docs("winogrande", limit=1)[0]
    assert doc.contexts == (
        "Sarah was a much better surgeon than Maria so Sarah",
        "Sarah was a much better surgeon than Maria so Maria",
    )
    assert doc.continuations == (" always got the easier cases.",) * 2 and doc.gold == 1


def test_boolq_arc_lambada_prompts():
    boolq = T.load_docs("boolq", limit=1)[0]
    assert boolq.contexts[0].endswith("\nQuestion: does ethanol take more energy make that produces?\nAnswer:")
    assert boolq.continuations == (" no", " yes") and boolq.gold == 0
    arc = T.load_docs("arc_challenge", limit=1)[0]
    assert arc.contexts[0].startswith("Question: An astronomer observes") and arc.contexts[0].endswith("\nAnswer:")
    assert len(T.load_docs("arc_challenge")) == 1172 and len(T.load_docs("arc_easy", limit=7)) == 7
    lam = T.load_docs("lambada", limit=1)[0]
    assert lam.continuations == (" signs",) and lam.contexts[0].endswith("I don't care about")


def test_mmlu_prompt_is_five_shot_from_dev():
    docs = T.load_docs("mmlu", limit=1)
    assert len(docs) == 57 and {d.subject for d in docs} == set(T.MMLU_SUBJECTS)
    prompt = docs[0].contexts[0]
    assert prompt.startswith("The following are multiple choice questions (with answers) about abstract algebra.\n\n")
    assert prompt.count("\nAnswer: ") == 5 and prompt.endswith("\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:")
    assert docs[0].continuations == (" A", " B", " C", " D") and docs[0].gold == 1
    assert T.mmlu_question({"question": " Q? ", "choices": ["w", "x", "y", "z"]}) == "Q?\nA. w\nB. x\nC. y\nD. z\nAnswer:"


def test_mmlu_categories_match_lm_eval():
    counts = {c: sum(1 for v in T.MMLU_SUBJECTS.values() if v == c) for c in T.MMLU_CATEGORIES}
    assert counts == {"humanities": 13, "stem": 19, "social_sciences": 12, "other": 13}
    assert len(T.MMLU_SUBJECTS) == 57


# ---------------------------------------------------------------------------------------
# Tokenization and the engine.


def test_encode_pair_moves_trailing_space(tokenizer):
    ctx, cont = encode_pair(tokenizer, "The answer is ", "yes")
    assert ctx == tokenizer.encode("The answer is")
    assert ctx + cont == tokenizer.encode("The answer is yes")
    pairs = [("The answer is ", "yes"), ("Question: x\nAnswer:", " no"), ("Question: x\nAnswer:", " yes")]
    assert encode_pairs(tokenizer, pairs) == [encode_pair(tokenizer, c, x) for c, x in pairs]


@pytest.mark.parametrize("batch_size", [1, 3, 16])
@pytest.mark.parametrize("share", [True, False])
def test_engine_matches_naive_forward(tiny_model, tokenizer, batch_size, share):
    texts = [
        ("Question: How do I boil an egg?\nAnswer:", [" Put it in water and heat it.", " Throw it.", " Heat"]),
        ("The capital of France is", [" Paris", " Berlin, of course", " a"]),
        ("A", [" b c d e f g", " b"]),
    ]
    requests, groups = [], []
    for g, (ctx, conts) in enumerate(texts):
        for cont in conts:
            requests.append(encode_pair(tokenizer, ctx, cont))
            groups.append(g)
    out = loglikelihood(tiny_model, requests, groups=groups, batch_size=batch_size, share_prefix=share, progress=False)
    ref = [_naive(tiny_model, *r) for r in requests]
    for (ll, greedy), (ll_ref, greedy_ref) in zip(out, ref):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
        assert greedy == greedy_ref


def test_batches_are_capped_by_padded_tokens():
    from fptq.eval.loglik import _batches

    lengths = [100, 90, 50, 10, 10, 300]
    assert _batches(lengths, 16) == [lengths]
    assert _batches(lengths, 16, lambda n: n, 200) == [[100, 90], [50, 10, 10], [300]]  # (a longer row: alone)
    assert _batches(lengths, 2, lambda n: n, 10**6) == [[100, 90], [50, 10], [10, 300]]


@pytest.mark.parametrize("max_tokens", [8, 40])
def test_engine_matches_naive_forward_under_a_token_cap(tiny_model, tokenizer, monkeypatch, max_tokens):
    """Batches cut by padded tokens (one row a forward at 8 tokens, a few at 40) score as the naive forward does."""
    import fptq.eval.loglik as L

    monkeypatch.setattr(L, "BATCH_TOKENS_CPU", max_tokens)
    texts = [("Question: How do I boil an egg?\nAnswer:", [" Put it in water and heat it.", " Throw it."]),
             ("The capital of France is", [" Paris", " Berlin, of course"]), ("A", [" b c d e f g", " b"])]
    requests, groups = [], []
    for g, (ctx, conts) in enumerate(texts):
        for cont in conts:
            requests.append(encode_pair(tokenizer, ctx, cont))
            groups.append(g)
    out = loglikelihood(tiny_model, requests, groups=groups, batch_size=16, progress=False)
    for (ll, greedy), (ll_ref, greedy_ref) in zip(out, [_naive(tiny_model, *r) for r in requests]):
        assert ll == pytest.approx(ll_ref, abs=1e-4) and greedy == greedy_ref


def test_engine_left_truncates_like_lm_eval(tiny_model):
    ctx, cont = list(range(10, 40)), [50, 51, 52]
    (ll, _), = loglikelihood(tiny_model, [(ctx, cont)], max_length=8, progress=False)
    full = (ctx + cont)[-9:]
    ids = torch.tensor([full[:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(tiny_model(input_ids=ids).logits[0], -1)
    expected = sum(float(logprobs[5 + i, t]) for i, t in enumerate(cont))
    assert ll == pytest.approx(expected, abs=1e-4)


class _Bigram(torch.nn.Module):
    """A 'model' whose next-token distribution depends only on the current token."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table, dtype=torch.float32)

    def forward(self, input_ids, attention_mask=None, logits_to_keep=0, **kwargs):
        logits = self.table[input_ids]
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        return SimpleNamespace(logits=logits)


def test_hand_computed_loglikelihood_and_greedy():
    # Row t holds the logits after token t; log-softmax of [log 1, log 2, log 1] = log [.25, .5, .25].
    table = [[math.log(1), math.log(2), math.log(1)], [math.log(3), math.log(1), math.log(0.5) + 1], [0.0, 0.0, 0.0]]
    model = _Bigram(table)
    results = loglikelihood(model, [([0], [1, 0]), ([0, 0], [2]), ([2], [1])], progress=False, max_length=16)
    p10 = math.log(0.5)
    p01 = math.log(3 / (3 + 1 + 0.5 * math.e))
    assert results[0][0] == pytest.approx(p10 + p01, abs=1e-6) and results[0][1] is True
    assert results[1][0] == pytest.approx(math.log(0.25), abs=1e-6) and results[1][1] is False
    assert results[2][0] == pytest.approx(math.log(1 / 3), abs=1e-6) and results[2][1] is False  # tie -> token 0


def test_hand_computed_scoring():
    docs = [
        T.ChoiceDoc(("q",) * 2, (" a", " bbbb"), ("a", "bbbb"), 1),  # acc wrong, acc_norm right
        T.ChoiceDoc(("q",) * 2, (" a", " bb"), ("a", "bb"), 0),  # both right
        T.ChoiceDoc(("q",) * 2, (" a", " b"), ("a", "b"), 1),  # tie -> first choice (numpy argmax)
    ]
    results = [(-2.0, False), (-4.0, False), (-1.0, False), (-3.0, False), (-1.0, False), (-1.0, False)]
    out = T.score_docs("piqa", docs, results)
    assert out == {"acc": pytest.approx(1 / 3), "acc_norm": pytest.approx(2 / 3), "n": 3}
    lam = [T.ChoiceDoc(("x",), (" y",), ("y",), 0)] * 2
    out = T.score_docs("lambada", lam, [(-1.0, True), (-3.0, False)])
    assert out["acc"] == 0.5 and out["perplexity"] == pytest.approx(math.exp(2.0))


def test_mmlu_average_is_over_questions():
    def doc(subject, gold):
        return T.ChoiceDoc(("q",) * 4, (" A", " B", " C", " D"), ("A", "B", "C", "D"), gold, subject, subject)

    docs = [doc("formal_logic", 0), doc("anatomy", 0), doc("anatomy", 0), doc("anatomy", 1)]
    best_a = [(-1.0, True), (-2.0, False), (-2.0, False), (-2.0, False)]
    out = T.score_docs("mmlu", docs, best_a * 4)
    assert out["humanities"] == 1.0 and out["stem"] == pytest.approx(2 / 3)
    assert out["average"] == 0.75 and out["social_sciences"] is None and out["n"] == 4


# ---------------------------------------------------------------------------------------
# run_tasks end to end on the tiny model.


def test_batched_equals_unbatched(tiny_model, tokenizer):
    names = ["piqa", "arc_easy", "boolq", "hellaswag", "winogrande", "lambada"]
    one = T.run_tasks(tiny_model, tokenizer, names, limit=3, batch_size=1, progress=False)
    many = T.run_tasks(tiny_model, tokenizer, names, limit=3, batch_size=8, progress=False)
    for task in names:
        a = {k: v for k, v in one[task].items() if k != "seconds"}
        b = {k: v for k, v in many[task].items() if k != "seconds"}
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4), (task, key)
        assert a["n"] == 3


def test_run_tasks_mmlu_limit_per_subject(tiny_model, tokenizer):
    res = T.run_tasks(tiny_model, tokenizer, "mmlu", limit=1, batch_size=16, progress=False)["mmlu"]
    assert res["n"] == 57 and set(res["subjects"]) == set(T.MMLU_SUBJECTS)
    assert all(0.0 <= res[k] <= 1.0 for k in ("humanities", "stem", "social_sciences", "other", "average"))
    table = T.format_task_table({"tiny": {"mmlu": res}})
    assert table.splitlines()[0] == ("| model | mmlu humanities | mmlu stem | mmlu social_sciences | mmlu other | "
                                     "mmlu average |")


def test_bad_input():
    with pytest.raises(ConfigError, match="supported tasks: piqa, arc_easy") as err:
        T.parse_tasks("piqa,nope")
    assert "\n" not in str(err.value)
    for bad in (0, -3):
        with pytest.raises(ConfigError, match="--limit"):
            T.run_tasks(None, None, ["piqa"], limit=bad)
    with pytest.raises(ConfigError):
        T.run_tasks(None, None, [])
    assert T.parse_tasks("all") == T.TASKS and T.parse_tasks("lambada_openai, piqa") == ["lambada", "piqa"]


def test_table_formatting():
    """Padded like the other tables, numbers right-aligned, two decimals, the tasks in the order given (lambada was
    run first here)."""
    res = {"lambada": {"acc": 0.25, "perplexity": 12.3456, "n": 4}, "piqa": {"acc": 0.5, "acc_norm": 0.625, "n": 8}}
    lines = T.format_task_table({"fp16": res, "w4a8": {"piqa": {"acc": 0.5, "acc_norm": 0.5, "n": 8}}}).splitlines()
    assert lines[0] == "| model | lambada acc | lambada ppl | piqa acc | piqa acc_norm |"
    assert lines[1] == "|-------|------------:|------------:|---------:|--------------:|"
    assert lines[2] == "| fp16  |       25.00 |       12.35 |    50.00 |         62.50 |"
    assert lines[3] == "| w4a8  |           – |           – |    50.00 |         50.00 |"
    assert T.table_columns(res) == {"piqa acc": 50.0, "piqa acc_norm": 62.5, "lambada acc": 25.0, "lambada ppl": 12.3456}


@pytest.mark.slow
def test_bundled_model_small_limit_is_deterministic():
    from fptq.models.loading import load_model

    model, tok = load_model("bundled")
    a = T.run_tasks(model, tok, ["piqa", "winogrande"], limit=8, batch_size=4, progress=False)
    b = T.run_tasks(model, tok, ["piqa", "winogrande"], limit=8, batch_size=8, progress=False)
    for task in ("piqa", "winogrande"):
        assert a[task]["acc"] == b[task]["acc"] and a[task]["n"] == 8
    assert a["piqa"]["acc"] >= 0.5  # a real 135M model beats chance on the first PIQA items
