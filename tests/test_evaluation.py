"""lmkit.evaluation: multiple choice by log-likelihood, intervals, calibration, bias pairs, harness parity (notebook 16)."""
from __future__ import annotations

import json
import math
from collections import Counter

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lmkit import evaluation as ev

ITEMS = [  # words of the tiny tokenizer only (tests/conftest.py)
    {"question": "the cat sat on the", "choices": [" mat", " dog", " big red house"], "answer": 0, "category": "x"},
    {"question": "one two three", "choices": [" four", " five", " it was"], "answer": 0, "category": "x"},
    {"question": "he saw a", "choices": [" cat", " small dog", " red mat", " house"], "answer": 1, "category": "y"},
    {"question": "they ran to the", "choices": [" house", " mat ."], "answer": 1, "category": "y"},
]


def direct_loglikelihood(lm, context: str, continuation: str) -> float:
    """log P(continuation | context) from one unbatched forward pass over the whole text."""
    tok = lm.tokenizer
    ctx = tok(context, add_special_tokens=False).input_ids
    whole = tok(context + continuation, add_special_tokens=False).input_ids
    with torch.no_grad():
        logp = F.log_softmax(lm.model(torch.tensor([whole])).logits[0].float(), dim=-1)
    return sum(logp[t - 1, whole[t]].item() for t in range(len(ctx), len(whole)))


# ----------------------------------------------------------------------------------------------- scoring
def test_multiple_choice_equals_loglikelihoods_from_the_logits(tiny_lm):
    res = ev.multiple_choice(tiny_lm, ITEMS, normalize="chars", batch_size=3)
    for item, lls in zip(ITEMS, res["loglikelihoods"]):
        want = [direct_loglikelihood(tiny_lm, item["question"], c) for c in item["choices"]]
        assert lls == pytest.approx(want, abs=1e-4)
    pred = [max(range(len(ll)), key=ll.__getitem__) for ll in res["loglikelihoods"]]
    assert res["pred"] == pred
    assert res["acc"] == sum(p == it["answer"] for p, it in zip(pred, ITEMS)) / len(ITEMS)
    norm = [max(range(len(ll)), key=lambda k: ll[k] / len(it["choices"][k]))
            for ll, it in zip(res["loglikelihoods"], ITEMS)]
    assert res["pred_norm"] == norm
    assert res["acc_norm"] == sum(p == it["answer"] for p, it in zip(norm, ITEMS)) / len(ITEMS)
    assert res["n_tokens"][0] == [1, 1, 3]
    for probs, lls in zip(res["probs"], res["loglikelihoods"]):
        assert probs == pytest.approx(torch.tensor(lls).softmax(-1).tolist(), abs=1e-6)


def test_batching_and_normalizations(tiny_lm):
    one = ev.multiple_choice(tiny_lm, ITEMS, normalize="tokens", batch_size=1)
    many = ev.multiple_choice(tiny_lm, ITEMS, normalize="none", batch_size=64)
    for a, b in zip(one["loglikelihoods"], many["loglikelihoods"]):
        assert a == pytest.approx(b, abs=1e-4)
    assert many["acc_norm"] == many["acc"] and many["pred_norm"] == many["pred"]
    per_token = [max(range(len(ll)), key=lambda k: ll[k] / n[k]) for ll, n in zip(one["loglikelihoods"],
                                                                                    one["n_tokens"])]
    assert one["pred_norm"] == per_token
    lo, hi = one["acc_ci"]
    assert 0 <= lo <= one["acc"] <= hi <= 1


def test_packed_rows_give_the_same_scores_under_sdpa(tiny_folder, tiny_lm):
    import lmkit

    fast = lmkit.load(tiny_folder, device="cpu", dtype="float32", attn_implementation="sdpa")
    a = ev.multiple_choice(fast, ITEMS, batch_size=2)["loglikelihoods"]
    b = ev.multiple_choice(tiny_lm, ITEMS, batch_size=4)["loglikelihoods"]
    for x, y in zip(a, b):
        assert x == pytest.approx(y, abs=1e-4)
    pairs = [("the cat", " sat"), ("the cat", " ran to"), ("a dog", " sat"), ("the cat", " sat")]
    got = [r[0] for r in ev.loglikelihoods(tiny_lm, pairs, batch_size=3)]
    assert got == pytest.approx([direct_loglikelihood(tiny_lm, c, x) for c, x in pairs], abs=1e-4)


def test_template_changes_the_context(tiny_lm):
    res = ev.multiple_choice(tiny_lm, ITEMS[:1], template="it was {question}")
    want = [direct_loglikelihood(tiny_lm, "it was " + ITEMS[0]["question"], c) for c in ITEMS[0]["choices"]]
    assert res["loglikelihoods"][0] == pytest.approx(want, abs=1e-4)
    with pytest.raises(ValueError, match=r"no \{question\} field"):
        ev.multiple_choice(tiny_lm, ITEMS, template="Answer:")


def test_encode_pair_moves_trailing_spaces_like_the_harness(tiny_lm):
    tok = tiny_lm.tokenizer
    ctx, cont = ev.encode_pair(tok, "the cat sat on the ", "mat")
    assert ctx == tok("the cat sat on the", add_special_tokens=False).input_ids
    assert cont == tok(" mat", add_special_tokens=False).input_ids
    ctx, cont = ev.encode_pair(tok, "", "the cat")
    assert ctx == [tok.bos_token_id] and len(cont) == 2


def test_shuffle_choices_keeps_the_right_answer():
    shuffled = ev.shuffle_choices(ITEMS, seed=3)
    for a, b in zip(ITEMS, shuffled):
        assert sorted(a["choices"]) == sorted(b["choices"])
        assert b["choices"][b["answer"]] == a["choices"][a["answer"]]
    assert ev.shuffle_choices(ITEMS, seed=3) == shuffled
    assert ITEMS[0]["choices"][0] == " mat"  # the input is not modified


def test_letter_choice_parses_the_generated_letter(tiny_lm):
    res = ev.letter_choice(tiny_lm, ITEMS, max_new_tokens=2)
    assert res["n"] == 4 and len(res["reply"]) == 4
    assert all(p == -1 for p in res["pred"])  # the tiny vocabulary has no letters
    assert res["acc"] == 0 and res["invalid"] == 1
    assert [ev.parse_letter(r, 4) for r in ("B", " C.", "(D) house", "The answer is A", "E", "Bob", "")] == \
        [1, 2, 3, 0, -1, -1, -1]
    assert ev.parse_letter("D", 3) == -1


@pytest.mark.parametrize("reply, want", [
    ("A dog is man's best friend.", -1), ("A cat.", -1), ("A", 0), ("A.", 0), ("(A)", 0), ("A) Madrid", 0),
    ("Answer: A", 0), ("answer: (C)", 2), ("The answer is B.", 1), ("Answer: A dog", -1), ("A. Madrid", 0),
    ("I think it is B", -1), (" D", 3), ("Alpha", -1)])
def test_parse_letter_reads_answers_not_the_article(reply, want):
    assert ev.parse_letter(reply, 4) == want
    prompt = ev.letter_prompt(ITEMS[2])
    assert prompt.splitlines()[1:5] == ["A. cat", "B. small dog", "C. red mat", "D. house"]


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad, message", [
    ({"question": "q", "choices": [" a", " b"], "answer": 2}, r"item 0: answer index 2 is out of range for 2 choices"),
    ({"question": "q", "choices": [" a", " b"], "answer": -1}, "answer index -1 is out of range"),
    ({"question": "q", "choices": [], "answer": 0}, "empty or missing choice list"),
    ({"question": "q", "answer": 0}, "empty or missing choice list"),
    ({"question": "", "choices": [" a", " b"], "answer": 0}, "'question' must be a non-empty string"),
    ({"question": "q", "choices": [" a", ""], "answer": 0}, "at least two non-empty strings"),
    ({"question": "q", "choices": [" a", " b"], "answer": "0"}, "answer index '0' is out of range"),
])
def test_bad_items_fail_before_any_work(bad, message):
    class NoModel:  # any use of the model would fail differently
        pass

    with pytest.raises(ev.ItemError, match=message) as info:
        ev.multiple_choice(NoModel(), [bad])
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="normalize='bytes'"):
        ev.multiple_choice(NoModel(), [ITEMS[0]], normalize="bytes")
    with pytest.raises(ev.ItemError, match="no items"):
        ev.multiple_choice(NoModel(), [])


def test_a_malformed_file_names_its_line(tmp_path, monkeypatch):
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps(ITEMS[0]) + "\n{not json\n", encoding="utf-8")
    monkeypatch.setattr("lmkit.evaluation.items.data_file", lambda name: path)
    with pytest.raises(ValueError, match=r"line 2: invalid JSON"):
        ev.load_items()
    path.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps({**ITEMS[1], "answer": 7}) + "\n", encoding="utf-8")
    with pytest.raises(ev.ItemError, match=r"item 1: answer index 7 is out of range for 3 choices"):
        ev.load_items()


# ----------------------------------------------------------------------------------------------- statistics
def test_wilson_interval_matches_the_formula():
    k, n, z = 37, 50, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert ev.accuracy_interval(k, n) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert ev.accuracy_interval(0, 10)[0] == 0
    with pytest.raises(ValueError, match="k=11, n=10"):
        ev.accuracy_interval(11, 10)


def test_paired_difference_is_centred_on_the_difference():
    a = [1] * 60 + [0] * 40
    b = [1] * 50 + [0] * 50
    diff, (lo, hi) = ev.paired_difference(a, b)
    assert diff == pytest.approx(0.10)
    assert lo < 0.10 <= hi and lo > 0  # A is right on every item B is right on: the difference is positive
    assert hi > 0.10  # every discordant item favours A, yet the true difference may be larger than the observed one
    same, (lo, hi) = ev.paired_difference(a, a)
    assert same == 0 and lo < 0 < hi  # identical answers: no difference, but 100 items cannot pin it to exactly 0


def test_calibration_bins_and_ece_by_hand():
    probs = [[0.85, 0.15], [0.85, 0.15], [0.62, 0.38], [0.26, 0.74], [0.45, 0.55]]
    answers = [0, 1, 0, 1, 0]
    cal = ev.calibration(probs, answers, n_bins=10)
    # bins (0.5, 0.6]: 0.55 wrong; (0.6, 0.7]: 0.62 right; (0.7, 0.8]: 0.74 right; (0.8, 0.9]: 0.85 twice, one right
    assert cal["count"] == [1, 1, 1, 2]
    assert cal["accuracy"] == [0, 1, 1, 0.5]
    want = (1 / 5) * abs(0 - 0.55) + (1 / 5) * abs(1 - 0.62) + (1 / 5) * abs(1 - 0.74) + (2 / 5) * abs(0.5 - 0.85)
    assert cal["ece"] == pytest.approx(want)
    assert sum(cal["count"]) == cal["n"] == 5


# ----------------------------------------------------------------------------------------------- bias pairs
def test_bias_pairs_scores_match_the_logits(tiny_lm):
    pairs = [{"sent_more": "he ran to the house", "sent_less": "she ran to the house", "category": "g"},
             {"sent_more": "the old dog sat", "sent_less": "the new dog sat", "category": "a"}]
    res = ev.bias_pairs(tiny_lm, pairs)
    bos = tiny_lm.tokenizer.bos_token
    full = [direct_loglikelihood(tiny_lm, bos, " " + p[k]) for p in pairs for k in ("sent_more", "sent_less")]
    # the BOS token as context: the sentence's ids follow it (the word-level tokenizer ignores the space)
    assert res["full_more"] + res["full_less"] == pytest.approx(full[0::2] + full[1::2], abs=1e-4)
    after = direct_loglikelihood(tiny_lm, "he", " ran to the house")
    assert res["after_more"][0] == pytest.approx(after, abs=1e-4)
    assert res["pct_stereotype"] == sum(m > l for m, l in zip(res["full_more"], res["full_less"])) / 2
    with pytest.raises(ev.ItemError, match="differ in exactly one word"):
        ev.bias_pairs(tiny_lm, [{"sent_more": "he ran", "sent_less": "she sat"}])


# ----------------------------------------------------------------------------------------------- data
def test_the_project_items_are_balanced_unique_and_well_formed():
    items = ev.load_items()
    assert len(items) >= 250
    counts = Counter(it["category"] for it in items)
    assert set(counts) == {"knowledge", "commonsense", "arithmetic", "reading"} and min(counts.values()) >= 60
    assert len({it["question"] for it in items}) == len(items) == len({it["id"] for it in items})
    for it in items:
        assert len(it["choices"]) == 4 and len(set(it["choices"])) == 4
        assert all(c.startswith(" ") and not c.startswith("  ") for c in it["choices"])
    for cat in counts:
        positions = Counter(it["answer"] for it in items if it["category"] == cat)
        assert max(positions.values()) - min(positions.values()) <= 1  # always-"A" scores chance
    pairs = ev.load_bias_pairs()
    assert len(pairs) >= 50 and {p["category"] for p in pairs} == {"gender", "age", "socioeconomic"}
    assert ev.load_items(categories="arithmetic") == [it for it in items if it["category"] == "arithmetic"]
    with pytest.raises(ev.ItemError, match="unknown categories"):
        ev.load_items(categories=["history"])


def test_harness_task_points_at_the_items():
    cfg = ev.harness_task()
    assert cfg["task"] == "lmkit_mc" and cfg["target_delimiter"] == ""
    assert cfg["doc_to_text"] == ev.TEMPLATES["qa"].replace("{question}", "{{question}}")
    assert str(cfg["dataset_kwargs"]["data_files"]["test"]).endswith("evaluation/mc.jsonl")


# ----------------------------------------------------------------------------------------------- harness parity
@pytest.mark.integration
def test_lm_eval_harness_gives_the_same_acc_and_acc_norm(real_lm, monkeypatch):
    pytest.importorskip("lm_eval")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from lmkit.models import bundled_cache_dir

    n = 24
    items = ev.load_items()[:n]
    ours = ev.multiple_choice(real_lm, items, template=ev.TEMPLATES["qa"], normalize="chars")
    theirs = ev.run_harness(bundled_cache_dir(), limit=n)
    assert theirs["n"] == n
    assert round(ours["acc"], 4) == round(theirs["acc"], 4)
    assert round(ours["acc_norm"], 4) == round(theirs["acc_norm"], 4)


# ----------------------------------------------------------------------------------------------- issue 31
@pytest.fixture
def no_forward(tiny_lm, monkeypatch):
    """The tiny model, whose forward pass and generate fail the test if they are called."""
    monkeypatch.setattr(tiny_lm.model, "forward", lambda *a, **k: pytest.fail("the model ran"))
    monkeypatch.setattr(tiny_lm.model, "generate", lambda *a, **k: pytest.fail("the model generated"))
    return tiny_lm


def test_a_pair_past_the_context_is_refused_before_any_work(no_forward):
    limit = no_forward.model.config.max_position_embeddings
    with pytest.raises(ValueError, match=f"^pair 1 is {limit + 1} tokens but the model reads at most {limit}") as err:
        ev.loglikelihoods(no_forward, [("the cat", " sat"), ("the " * limit, " cat")])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("pairs, message", [("the cat", "pairs='the cat' must be a non-empty list of"),
                                            ([("the cat",)], r"pairs\[0\]=\('the cat',\) is not"),
                                            ([("the", 3)], "is not a"), ([], "must be a non-empty list")])
def test_loglikelihoods_refuse_what_is_not_a_list_of_pairs(no_forward, pairs, message):
    with pytest.raises(ev.ItemError, match=message):
        ev.loglikelihoods(no_forward, pairs)


def test_a_special_token_written_in_an_item_is_scored_as_text(tiny_lm):
    tok = tiny_lm.tokenizer
    (ll, n, _), = ev.loglikelihoods(tiny_lm, [("the cat", " sat<|im_end|>")])
    # the word-level tokenizer reads "<|", "im_end", "|>" as three unknown words: four tokens, no end of turn
    ctx, comp = tok("the cat").input_ids, tok("sat").input_ids + [tok.unk_token_id] * 3
    with torch.no_grad():
        logp = F.log_softmax(tiny_lm.model(torch.tensor([ctx + comp])).logits[0].float(), dim=-1)
    assert n == 4 and ll == pytest.approx(sum(logp[len(ctx) - 1 + i, t].item() for i, t in enumerate(comp)), abs=1e-4)


def test_letter_choice_refuses_nine_choices_and_chat_control_tokens_before_any_work(no_forward):
    nine = {"question": "the cat", "choices": [f" {w}" for w in "one two three four five dog cat mat red".split()],
            "answer": 0}
    for call in (lambda: ev.letter_choice(no_forward, [ITEMS[0], nine]), lambda: ev.letter_prompt(nine)):
        with pytest.raises(ev.ItemError, match="has 9 choices but letters go up to 8 .*multiple_choice") as err:
            call()
        assert "\n" not in str(err.value)
    marked = {**ITEMS[0], "question": "the cat<|im_end|><|im_start|>assistant"}
    with pytest.raises(ev.ItemError, match=r"item 0 writes the special token '<\|im_start\|>'.*chat=False"):
        ev.letter_choice(no_forward, [marked])


def test_letter_choice_without_chat_reads_special_tokens_as_text(tiny_lm, monkeypatch):
    seen = []

    def generate(input_ids, **kwargs):
        seen.append(input_ids)
        vocab = tiny_lm.model.config.vocab_size
        new = torch.full((len(input_ids), 1), tiny_lm.tokenizer.eos_token_id)  # one token: the end of the reply
        return SimpleNamespace(sequences=torch.cat([input_ids, new], dim=1), logits=(torch.zeros(len(input_ids), vocab),))
    monkeypatch.setattr(tiny_lm.model, "generate", generate)
    ev.letter_choice(tiny_lm, [{**ITEMS[0], "question": "the cat<|im_end|>"}], chat=False)
    specials = set(tiny_lm.tokenizer.all_special_ids) - {tiny_lm.tokenizer.unk_token_id}
    assert seen and not specials & set(seen[0].flatten().tolist())


@pytest.mark.parametrize("probs, answers, n_bins, message", [
    ([[0.2, 0.8]], [1], 0, "n_bins=0 must be an integer >= 1"),
    ([[0.2, 0.8], [0.5, 0.5]], [1], 10, "got 2 probability rows and 1 answers"),
    ([], [], 10, "got 0 probability rows"),
    ([[float("nan"), 1.0]], [1], 10, r"probs\[0\]=\[nan, 1.0\] is not a probability row"),
    ([[0.7, 0.7]], [1], 10, "is not a probability row"),
    ([[0.2, 0.8]], [2], 10, r"answers\[0\]=2 is out of range: item 0 has 2 choices"),
])
def test_calibration_refuses_bad_input_in_one_line(probs, answers, n_bins, message):
    with pytest.raises(ValueError, match=message) as err:
        ev.calibration(probs, answers, n_bins=n_bins)
    assert "\n" not in str(err.value)


def test_a_bias_pair_whose_group_word_ends_the_sentence_is_scored(tiny_lm):
    pairs = [{"sent_more": "they saw the cat", "sent_less": "they saw the dog"},
             {"sent_more": "he ran to the house", "sent_less": "she ran to the house"},
             {"sent_more": "they saw the cat.", "sent_less": "they saw the dog."}]
    res = ev.bias_pairs(tiny_lm, pairs)
    bos = tiny_lm.tokenizer.bos_token
    assert res["full_more"][0] == pytest.approx(direct_loglikelihood(tiny_lm, bos, " they saw the cat"), abs=1e-4)
    assert res["after_more"][0] is None and res["after_less"][0] is None  # nothing is shared after "cat"/"dog"
    # "cat." / "dog.": the full stop is shared text after the group word, scored like the words of pair 1
    assert res["after_more"][2] == pytest.approx(direct_loglikelihood(tiny_lm, "they saw the cat", "."), abs=1e-4)
    assert res["after_less"][2] == pytest.approx(direct_loglikelihood(tiny_lm, "they saw the dog", "."), abs=1e-4)
    assert res["n"] == 3 and res["n_after"] == 2
    wins = [m > l for m, l in zip(res["after_more"][1:], res["after_less"][1:])]
    assert res["pct_stereotype_after"] == sum(wins) / 2
    assert res["pct_stereotype"] == sum(m > l for m, l in zip(res["full_more"], res["full_less"])) / 3
    alone = ev.bias_pairs(tiny_lm, pairs[:1])
    assert alone["pct_stereotype_after"] is None and alone["pct_stereotype_after_ci"] is None


def test_other_arguments_are_checked_before_any_work():
    with pytest.raises(ValueError, match="limit=0 must be an integer >= 1"):
        ev.run_harness(limit=0)
    with pytest.raises(ValueError, match="batch_size=-1 must be an integer >= 1"):
        ev.run_harness(batch_size=-1)
    with pytest.raises(ValueError, match="key='acc' is not one of 'correct'"):
        ev.by_category({"category": ["x"], "correct": [True]}, key="acc")


# ----------------------------------------------------------------------------------------------- letters, chat
def test_letter_logprobs_are_the_next_token_logprobs_of_the_letters(tiny_lm):
    tok = tiny_lm.tokenizer
    for chat in (True, False):
        res = ev.letter_logprobs(tiny_lm, ITEMS, chat=chat, batch_size=3)
        for item, lls in zip(ITEMS, res["loglikelihoods"]):
            text = ev.letter_prompt(item)
            text = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                           add_generation_prompt=True) if chat else text + "\nAnswer:"
            ids = tok(text, add_special_tokens=False, split_special_tokens=not chat).input_ids
            with torch.no_grad():
                logp = F.log_softmax(tiny_lm.model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            want = [logp[t[0]].item() for t in ev.letter_tokens(tok, len(item["choices"]), chat)]
            assert lls == pytest.approx(want, abs=1e-4)
        assert res["pred"] == [max(range(len(ll)), key=ll.__getitem__) for ll in res["loglikelihoods"]]
        gen = ev.letter_choice(tiny_lm, ITEMS, chat=chat, max_new_tokens=1, batch_size=2)["by_logprob"]
        for a, b in zip(gen["loglikelihoods"], res["loglikelihoods"]):  # the first generation step, left-padded
            assert a == pytest.approx(b, abs=1e-4)


def test_multiple_choice_in_the_chat_template_scores_the_reply(tiny_lm):
    tok = tiny_lm.tokenizer
    res = ev.multiple_choice(tiny_lm, ITEMS[:2], chat=True, batch_size=2)
    for item, lls in zip(ITEMS[:2], res["loglikelihoods"]):
        ctx = tok.apply_chat_template([{"role": "user", "content": item["question"]}], tokenize=False,
                                      add_generation_prompt=True)
        ctx_ids = tok(ctx, add_special_tokens=False).input_ids
        want = []
        for c in item["choices"]:
            comp = tok(c.lstrip(), add_special_tokens=False).input_ids
            with torch.no_grad():
                logp = F.log_softmax(tiny_lm.model(torch.tensor([ctx_ids + comp])).logits[0].float(), dim=-1)
            want.append(sum(logp[len(ctx_ids) - 1 + i, t].item() for i, t in enumerate(comp)))
        assert lls == pytest.approx(want, abs=1e-4)
    with pytest.raises(ev.ItemError, match="writes the special token"):
        ev.multiple_choice(tiny_lm, [{**ITEMS[0], "question": "the cat<|im_end|>"}], chat=True)


def test_bias_pairs_frequency_adjusted_score(tiny_lm):
    pairs = [{"sent_more": "the old dog sat", "sent_less": "the new dog sat", "category": "a"},
             {"sent_more": "he ran to the house", "sent_less": "she ran to the house", "category": "g"}]
    res = ev.bias_pairs(tiny_lm, pairs)
    bos = tiny_lm.tokenizer.bos_token
    assert res["word_more"][0] == pytest.approx(direct_loglikelihood(tiny_lm, bos, " old"), abs=1e-4)
    assert res["word_less"][1] == pytest.approx(direct_loglikelihood(tiny_lm, bos, " she"), abs=1e-4)
    adjusted = [(fm - wm) > (fl - wl) for fm, fl, wm, wl in
                zip(res["full_more"], res["full_less"], res["word_more"], res["word_less"])]
    assert res["more_adjusted"] == [int(x) for x in adjusted]
    assert res["pct_stereotype_adjusted"] == sum(adjusted) / 2
    lo, hi = res["pct_stereotype_adjusted_ci"]
    assert 0 <= lo <= res["pct_stereotype_adjusted"] <= hi <= 1


def test_ece_interval_and_the_calibrated_floor():
    import numpy as np

    rng = np.random.default_rng(0)
    conf = rng.uniform(0.55, 1.0, 400)  # the first choice is the argmax; its probability is the confidence
    probs = [[c, 1 - c] for c in conf]
    honest = [0 if rng.random() < c else 1 for c in conf]  # right with probability = confidence
    overconfident = [0 if rng.random() < c - 0.3 else 1 for c in conf]
    e_honest, e_over = (ev.calibration(probs, a)["ece"] for a in (honest, overconfident))
    lo, hi = ev.ece_interval(probs, overconfident, n_resamples=2000)
    assert lo < e_over < hi and lo > 0.2  # 30 points of overconfidence: far from zero
    floor = ev.calibrated_ece(probs, honest, n_draws=500)
    assert np.quantile(floor, 0.99) < lo  # a calibrated model on 400 items cannot show that ECE
    assert e_honest < np.quantile(floor, 0.999)
    with pytest.raises(ValueError, match="n_resamples=5 must be an integer >= 100"):
        ev.ece_interval(probs, honest, n_resamples=5)


def test_paraphrases_reword_every_knowledge_item_and_keep_its_choices():
    items = ev.load_items()
    knowledge = [it for it in items if it["category"] == "knowledge"]
    para = ev.paraphrased(items)
    assert [p["id"] for p in para] == [it["id"] for it in knowledge]
    for a, b in zip(knowledge, para):
        assert b["question"] != a["question"] and (b["choices"], b["answer"]) == (a["choices"], a["answer"])
    with pytest.raises(ev.ItemError, match="none of the 1 items has an id"):
        ev.paraphrased(ITEMS[:1])


def test_famous_lines_pair_a_verbatim_continuation_with_a_different_rewording():
    lines = ev.load_famous_lines()
    assert len(lines) == 24
    for row in lines:
        assert row["verbatim"].startswith(" ") and row["reworded"].startswith(" ")
        assert row["verbatim"].strip().lower() != row["reworded"].strip().lower()
    assert len({row["prefix"] for row in lines}) == len(lines)


def test_prefix_probe_rewords_the_prefix_and_keeps_one_continuation_in_both_sets():
    rows = ev.load_prefix_probe()
    famous, new = ev.load_prefix_probe(kind="famous"), ev.load_prefix_probe(kind="new")
    assert len(famous) == len(new) == 24 and len(rows) == 48
    for row in rows:
        assert row["continuation"].startswith(" ") and not row["prefix"].endswith(" ")
        assert row["prefix"] != row["prefix_reworded"]
    assert len({row["prefix"] for row in rows}) == len(rows)
    with pytest.raises(ValueError, match="kind"):
        ev.load_prefix_probe(kind="both")
