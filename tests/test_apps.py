"""lmkit.apps: the data sets, label-likelihood scoring, the metrics, the chat tasks and retrieval (notebook 15)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lmkit import apps

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------------- data
def test_sentiment_set_is_balanced_unique_and_shots_are_held_out():
    test, shots = apps.sentiment_data("test"), apps.sentiment_data("shots")
    assert Counter(r["label"] for r in test) == {lab: 30 for lab in apps.LABELS}
    assert Counter(r["label"] for r in shots) == {lab: 3 for lab in apps.LABELS}
    texts = [r["text"] for r in test + shots]
    assert len(set(texts)) == len(texts)
    assert len({r["id"] for r in test + shots}) == len(texts)
    with pytest.raises(ValueError, match="split='train'"):
        apps.sentiment_data("train")


def test_every_question_has_its_passage_and_the_answer_is_in_it():
    docs = {d["id"]: d for d in apps.passages()}
    questions = apps.qa_data()
    assert len(questions) == 20 and len(docs) == 24
    for q in questions:
        assert apps.normalize_answer(q["answers"][0]) in apps.normalize_answer(docs[q["passage"]]["text"]), q["id"]
        assert q["kind"] == docs[q["passage"]]["kind"]
    assert Counter(q["kind"] for q in questions) == {"world": 10, "handbook": 10}


def test_translation_rows_are_complete():
    rows = apps.translation_data()
    assert len(rows) == 12 and all(r["en"].strip() and r["fr"] and all(a.strip() for a in r["fr"]) for r in rows)


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_no_text_is_shared_with_the_fine_tuning_data():
    finetune = sorted((ROOT / "data" / "finetune").glob("*.jsonl"))
    if not finetune:
        pytest.skip("data/finetune/ has no .jsonl files here")
    theirs = "\n".join(s.lower() for p in finetune for line in p.read_text(encoding="utf-8").splitlines()
                       if line.strip() for s in _strings(json.loads(line)))
    assert len(theirs) > 1000  # the check below really ran over their data
    ours = [r["text"] for r in apps.sentiment_data("test") + apps.sentiment_data("shots")]
    ours += [q["question"] for q in apps.qa_data()] + [d["text"] for d in apps.passages()]
    ours += [r["en"] for r in apps.translation_data()]
    shared = [t for t in ours if t.lower() in theirs]
    assert not shared, shared


# ----------------------------------------------------------------------------------------------- scoring
def _manual_logprob(lm, context: str, continuation: str) -> float:
    """log P(continuation | context) from one plain forward pass over the joined ids."""
    ctx, cont = lm.encode(context)[0], lm.encode(continuation)[0]
    ids = torch.cat([ctx, cont])[None]
    with torch.no_grad():
        logp = F.log_softmax(lm.model(ids).logits[0].float(), -1)
    return sum(logp[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont.tolist()))


def test_continuation_logprobs_match_a_plain_forward_pass_single_and_multi_token(tiny_lm):
    contexts = ["the cat sat on the", "a dog", "he saw the big red house and it was old ."]
    single = [" mat", " dog", " house"]
    multi = [" mat", " big red house", " ran to the"]
    for conts in (single, multi):
        got = apps.continuation_logprobs(tiny_lm, contexts, conts, batch_size=2, progress=False)
        want = torch.tensor([[_manual_logprob(tiny_lm, c, k) for k in conts] for c in contexts])
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_batching_and_padding_do_not_change_scores(tiny_lm):
    contexts = ["the cat", "she saw a big blue dog on the mat and it ran", "one two three four five"]
    conts = [" sat", " ran to"]
    one = torch.cat([apps.continuation_logprobs(tiny_lm, [c], conts, batch_size=1, progress=False)
                     for c in contexts])
    batched = apps.continuation_logprobs(tiny_lm, contexts, conts, batch_size=8, progress=False)
    torch.testing.assert_close(batched, one, atol=1e-5, rtol=1e-5)


def test_a_shared_prefix_is_computed_once_and_gives_the_same_scores(tiny_lm):
    shared = "the big red dog ran to the house . she saw it and the cat sat on the mat . "
    contexts = [shared + t for t in ("it was", "he ate a", "two three four five")]
    for conts in ([" old", " new"], [" old cat", " new"]):
        got = apps.continuation_logprobs(tiny_lm, contexts, conts, batch_size=2, progress=False)
        want = torch.tensor([[_manual_logprob(tiny_lm, c, k) for k in conts] for c in contexts])
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert apps._common_prefix([tiny_lm.encode(c)[0].tolist() for c in contexts]) == len(tiny_lm.encode(shared)[0])


def test_scoring_rejects_bad_input(tiny_lm):
    with pytest.raises(ValueError, match="lists of strings"):
        apps.continuation_logprobs(tiny_lm, "the cat", [" sat"])
    with pytest.raises(ValueError, match="no tokens"):
        apps.continuation_logprobs(tiny_lm, [""], [" sat"])
    with pytest.raises(ValueError, match="at least one"):
        apps.continuation_logprobs(tiny_lm, ["the cat"], [])


# ----------------------------------------------------------------------------------------------- prompts
def test_plain_few_shot_prompt_lists_the_examples_then_the_text(tiny_lm):
    p = apps.SentimentPrompt("t", "Review: {text}\nSentiment:", instruction="Classify.\n\n",
                             shots=(("good", "positive"), ("bad", "negative")))
    assert p.context(tiny_lm, "meh") == ("Classify.\n\nReview: good\nSentiment: positive\n\n"
                                         "Review: bad\nSentiment: negative\n\nReview: meh\nSentiment:")


def test_chat_few_shot_prompt_puts_examples_in_earlier_turns(tiny_lm):
    p = apps.SentimentPrompt("t", "Review: {text}", labels={lab: lab for lab in apps.LABELS}, chat=True,
                             instruction="Classify. ", shots=(("good", "positive"),))
    ctx = p.context(tiny_lm, "meh")
    assert ctx == ("<|im_start|>user\nClassify. Review: good<|im_end|>\n<|im_start|>assistant\npositive<|im_end|>\n"
                   "<|im_start|>user\nReview: meh<|im_end|>\n<|im_start|>assistant\n")


def test_standard_prompts_interleave_the_shots_and_bad_templates_fail(tiny_lm):
    prompts = apps.standard_prompts()
    assert list(prompts) == ["bare", "instruction", "chat", "few-shot", "few-shot chat"]
    labels = [lab for _, lab in prompts["few-shot"].shots]
    assert labels == list(apps.LABELS) * 3
    with pytest.raises(ValueError, match="no {text} slot"):
        apps.SentimentPrompt("x", "Review:").context(tiny_lm, "hi")


def test_classify_is_the_argmax_of_the_scores_and_calibration_divides_by_the_prior(tiny_lm):
    prompt = apps.SentimentPrompt("t", "{text} it was", labels={"positive": " big", "negative": " small",
                                                                  "neutral": " old"})
    texts = ["the cat sat on the mat", "a dog ran", "she ate two red"]
    scores = apps.label_scores(tiny_lm, prompt, texts, progress=False)
    assert apps.classify(tiny_lm, prompt, texts, progress=False) == \
        [list(prompt.labels)[i] for i in scores.argmax(-1).tolist()]
    prior = apps.label_scores(tiny_lm, prompt, list(apps.CONTENT_FREE), progress=False).softmax(-1).mean(0)
    torch.testing.assert_close(apps.label_prior(tiny_lm, prompt).exp(), prior)
    calibrated = (scores.log_softmax(-1) - prior.log()).argmax(-1).tolist()
    assert apps.classify(tiny_lm, prompt, texts, calibrate=True, progress=False) == \
        [list(prompt.labels)[i] for i in calibrated]


# ----------------------------------------------------------------------------------------------- metrics
def test_evaluate_on_a_hand_made_case():
    y_true = ["positive", "positive", "negative", "neutral"]
    y_pred = ["positive", "negative", "negative", "positive"]
    r = apps.evaluate(y_true, y_pred)
    assert r["n"] == 4 and r["accuracy"] == 0.5
    assert r["confusion"].tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    # F1: positive 0.5 (P 1/2, R 1/2), negative 2/3 (P 1/2, R 1), neutral 0
    assert r["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    with pytest.raises(ValueError, match="'happy'"):
        apps.evaluate(["positive"], ["happy"])
    with pytest.raises(ValueError, match="same length"):
        apps.evaluate(["positive"], [])


def test_plot_confusion_labels_the_axes():
    import matplotlib.pyplot as plt

    ax = apps.plot_confusion(apps.evaluate(["positive", "neutral"], ["positive", "positive"]))
    assert ax.get_xlabel() == "predicted label" and ax.get_ylabel() == "true label"
    assert "accuracy 50%" in ax.get_title()
    plt.close(ax.figure)


@pytest.mark.parametrize("pred, answers, em, contains", [
    ("The Silver Heron.", ["Silver Heron"], True, True),
    ("Où est la gare ?", ["ou est la gare"], True, True),
    ("Canberra is the capital of Australia.", ["Canberra"], False, True),
    ("Canberras", ["Canberra"], False, False),
    ("Jupiter\nIt is a gas giant.", ["jupiter"], True, True),
    ("  \n 8 legs", ["8"], False, True),
    ("Sydney", ["Canberra", "the capital"], False, False),
])
def test_exact_match_and_contains(pred, answers, em, contains):
    assert apps.exact_match(pred, answers) is em
    assert apps.contains_answer(pred, answers) is contains


def test_answer_metrics_need_answers():
    with pytest.raises(ValueError, match="no accepted answers"):
        apps.exact_match("x", [])


# ----------------------------------------------------------------------------------------------- chat tasks
def test_ask_is_the_greedy_chat_reply_and_stops_at_a_newline(tiny_lm):
    from lmkit.generate import generate

    reply = apps.ask(tiny_lm, "the cat sat", max_new_tokens=6)
    assert reply == generate(tiny_lm, "the cat sat", chat=True, do_sample=False, max_new_tokens=6).strip()
    assert "\n" not in apps.answer_question(tiny_lm, "who ran ?", "the dog ran .", max_new_tokens=6)
    assert apps.answer is apps.answer_question  # the earlier name still works


def test_qa_prompt_includes_the_passage_only_when_given():
    assert "Passage" not in apps.qa_prompt("Who?")
    assert "Passage: Bob did.\n\nQuestion: Who?" in apps.qa_prompt("Who?", "Bob did.")


# ----------------------------------------------------------------------------------------------- retrieval
@pytest.fixture(scope="module")
def retriever():
    return apps.Retriever(apps.passages())


def test_retriever_finds_a_passage_from_its_own_words(retriever):
    for doc in retriever.docs[::5]:
        (best, score), = retriever.search(doc["text"], k=1)
        assert best["id"] == doc["id"] and score > 0.8
    scores = retriever.scores("Which boat goes to Gull Island?")
    assert scores.shape == (len(retriever.docs),) and float(scores.max()) <= 1.0 + 1e-5
    assert apps.recall_at_k(retriever, apps.qa_data(), k=len(retriever.docs)) == 1.0


def test_retriever_rejects_bad_input(retriever):
    with pytest.raises(ValueError, match="k=0"):
        retriever.search("ferry", k=0)
    with pytest.raises(ValueError, match="empty"):
        retriever.search("  ")
    with pytest.raises(ValueError, match="non-empty list"):
        apps.Retriever([])


def test_qa_run_rejects_a_bad_mode(tiny_lm):
    with pytest.raises(ValueError, match="mode='open'"):
        apps.qa_run(tiny_lm, apps.qa_data()[:1], mode="open")
    with pytest.raises(ValueError, match="needs a retriever"):
        apps.qa_run(tiny_lm, apps.qa_data()[:1], mode="retrieved")


def test_qa_run_scores_each_reply(tiny_lm, retriever):
    df = apps.qa_run(tiny_lm, apps.qa_data()[:2], mode="retrieved", retriever=retriever, progress=False)
    assert list(df["id"]) == ["q01", "q02"]
    for _, row in df.iterrows():
        q = next(q for q in apps.qa_data() if q["id"] == row["id"])
        assert row["exact"] == apps.exact_match(row["reply"], q["answers"])
        assert row["right passage"] == (q["passage"] in row["passage found"].split(","))


# ----------------------------------------------------------------------------------------------- the real model
@pytest.mark.integration
def test_real_model_reads_sentiment_from_clear_reviews(real_lm):
    texts = ["This is the best day of my life, I love it!", "Awful, broken and useless. I hate it."]
    for name, prompt in apps.standard_prompts().items():
        p = apps.label_scores(real_lm, prompt, texts, progress=False).softmax(-1)
        assert p[1, 1] > p[0, 1] and p[0, 0] > p[1, 0], name  # negative more likely for the negative review
    # raw, the few-shot prompt's lean towards "positive" wins even here; calibrated, both are right
    assert apps.classify(real_lm, apps.standard_prompts()["few-shot"], texts, calibrate=True,
                         progress=False) == ["positive", "negative"]


@pytest.mark.integration
def test_real_model_answers_from_the_right_passage(real_lm):
    q = next(q for q in apps.qa_data() if q["id"] == "q14")
    df = apps.qa_run(real_lm, [q], mode="oracle", progress=False)
    assert bool(df["contains"].iloc[0]), df["reply"].iloc[0]


# ----------------------------------------------------------------------------------------------- exercises 15.x
def test_exercise_15_1_calibration_by_hand(tiny_lm, monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    prompt = apps.SentimentPrompt("t", "{text} it was", labels={"positive": " big", "negative": " small",
                                                                  "neutral": " old"})
    names = list(prompt.labels)
    # raw scores = the prompt's own lean plus a small nudge towards each label in turn: raw, every text gets the
    # prior's favourite; calibrated, each text gets its nudge
    prior = apps.label_prior(tiny_lm, prompt)
    gaps = (prior[:, None] - prior[None, :]).abs()
    nudge = 0.1 * float(gaps[gaps > 0].min()) * torch.eye(3)
    raw = prior + nudge
    calibrated = [names[i] for i in (raw.log_softmax(-1) - prior).argmax(-1).tolist()]
    uncalibrated = [names[i] for i in raw.argmax(-1).tolist()]
    doubled = [names[i] for i in (raw.log_softmax(-1) + prior).argmax(-1).tolist()]
    assert calibrated != uncalibrated and calibrated != doubled  # the check below can tell them apart
    assert exercises.check("15.1", calibrated, lm=tiny_lm, prompt=prompt, raw=raw)
    assert not exercises.check("15.1", uncalibrated, lm=tiny_lm, prompt=prompt, raw=raw)  # the prompt's lean kept
    assert not exercises.check("15.1", doubled, lm=tiny_lm, prompt=prompt, raw=raw)       # multiplied by the prior
    assert not exercises.check("15.1", calibrated[:-1], lm=tiny_lm, prompt=prompt, raw=raw)  # one label missing


def test_exercise_15_2_label_margin_from_the_logits(tiny_lm, monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    prompt = apps.SentimentPrompt("t", "{text} it was", labels={"positive": " big", "negative": " small",
                                                                  "neutral": " old"})
    text = "the cat sat on the mat"
    s = apps.label_scores(tiny_lm, prompt, [text], progress=False)[0]
    right = (s[0] - s[1]).item()
    assert exercises.check("15.2", right, lm=tiny_lm, prompt=prompt, text=text)
    assert not exercises.check("15.2", -right, lm=tiny_lm, prompt=prompt, text=text)          # the wrong way round
    assert not exercises.check("15.2", s[0].exp().item() - s[1].exp().item(), lm=tiny_lm,     # probabilities
                               prompt=prompt, text=text)


def test_data_sets_are_read_by_the_validating_reader(monkeypatch, tmp_path):
    """A BOM-prefixed file is accepted; a malformed or incomplete line names the file, the line and the fix."""
    from lmkit.data import DataError

    path = tmp_path / "sentiment.jsonl"
    monkeypatch.setattr(apps.data, "data_file", lambda name: path)
    path.write_bytes('\ufeff{"id": "a", "split": "test", "text": "Great.", "label": "positive"}\n'.encode())
    assert [r["label"] for r in apps.sentiment_data("test")] == ["positive"]
    path.write_text('{"id": "a", "split": "test", "text": "Great.", "label": "positive"}\n{"id": "b", "split"\n')
    with pytest.raises(DataError, match=r"sentiment\.jsonl, line 2: invalid JSON .* one complete JSON object per line"):
        apps.sentiment_data("test")
    path.write_text('{"id": "a", "split": "test", "text": "Great."}\n')
    with pytest.raises(DataError, match=r"line 1: missing field 'label'"):
        apps.sentiment_data("test")
    path.write_text('{"id": "q", "question": "Capital?", "answers": "Paris", "passage": "p"}\n')
    with pytest.raises(DataError, match=r"line 1: field 'answers' must be a non-empty list"):
        apps.qa_data()


@pytest.mark.parametrize("batch_size", [0, -2, 1.5, None, True])
def test_scoring_refuses_a_bad_batch_size_before_any_work(tiny_lm, batch_size):
    with pytest.raises(ValueError, match=f"batch_size={batch_size!r} must be a positive integer") as err:
        apps.continuation_logprobs(tiny_lm, ["the cat"], [" sat"], batch_size=batch_size)
    assert "\n" not in str(err.value)


def test_exercise_15_5_weighted_f1(monkeypatch):
    from sklearn.metrics import f1_score

    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    y_true = ["a"] * 6 + ["b"] * 3 + ["c"]
    y_pred = ["a"] * 4 + ["b"] * 2 + ["b"] * 3 + ["a"]
    right = f1_score(y_true, y_pred, average="weighted", zero_division=0)
    by_prediction = f1_score(y_pred, y_pred, average="weighted", zero_division=0)  # weights from the predictions
    assert exercises.check("15.5", right, y_true=y_true, y_pred=y_pred)
    assert not exercises.check("15.5", f1_score(y_true, y_pred, average="macro", zero_division=0),
                               y_true=y_true, y_pred=y_pred)
    assert not exercises.check("15.5", by_prediction, y_true=y_true, y_pred=y_pred)


def test_exercise_15_6_rouge2(monkeypatch):
    from rouge_score import rouge_scorer

    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    summary = "The cats sat on the mat and the dog sat on the rug."
    reference = "A cat sat on the mat while the dog slept on the rug."
    scores = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=True).score(reference, summary)
    # by hand: 13 stemmed tokens each ("cats" -> "cat"), so 12 pairs each; clipped matches: "cat sat" 1, "sat on"
    # min(2, 1) = 1, "on the" min(2, 2) = 2, "the mat" 1, "the dog" 1, "the rug" 1 -> 7; P = R = F = 7/12
    assert scores["rouge2"].fmeasure == pytest.approx(7 / 12)
    assert exercises.check("15.6", 7 / 12, summary=summary, reference=reference)
    assert not exercises.check("15.6", scores["rouge1"].fmeasure, summary=summary, reference=reference)
    assert not exercises.check("15.6", 0.0, summary=summary, reference=reference)  # a stub returning 0 fails
    zero_pair = exercises.check("15.6", 0.0, summary="the cat sat", reference="a dog ran")
    assert not zero_pair and "word pair" in zero_pair.message  # a pair with ROUGE-2 0 could not fail such a stub
    unstemmed = rouge_scorer.RougeScorer(["rouge2"], use_stemmer=False).score(reference, summary)["rouge2"].fmeasure
    assert unstemmed != pytest.approx(7 / 12)  # "cats" no longer matches "cat": one pair fewer
    assert not exercises.check("15.6", unstemmed, summary=summary, reference=reference)
