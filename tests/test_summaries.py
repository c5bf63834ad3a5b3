"""lmkit.apps.summaries (lead-n, ROUGE) and data/apps/summaries.jsonl, the summarisation set of notebook 15.

The ROUGE expectations are counted by hand below (unigram and bigram overlaps, the longest common subsequence), on
words of three letters or fewer, which the Porter stemmer leaves alone; one test shows the stemmer at work.
"""
from __future__ import annotations

import json

import pytest

from lmkit import apps
from lmkit.checks import CheckError
from lmkit.files import DataError


def f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


# ----------------------------------------------------------------------------------------------- rouge by hand
# 1. one word swapped. Reference "the cat sat on the mat", prediction "the cat lay on the mat": 6 words each.
#    Unigrams shared (clipped): the x2, cat, on, mat = 5 of 6 each side.  Bigrams: 5 each side, shared "the cat",
#    "on the", "the mat" = 3.  LCS: "the cat on the mat" = 5.
SWAP = ("the cat lay on the mat", "the cat sat on the mat", {"rouge1": f1(5 / 6, 5 / 6), "rouge2": f1(3 / 5, 3 / 5),
                                                            "rougeL": f1(5 / 6, 5 / 6)})
# 2. order matters. Reference "red dog ran to the big house" (7 words), prediction "the big red dog ran" (5 words).
#    Unigrams shared: the, big, red, dog, ran = 5 -> P = 5/5, R = 5/7.  Bigrams: prediction has 4 (the big, big red,
#    red dog, dog ran), reference 6 (red dog, dog ran, ran to, to the, the big, big house); shared 3 -> P = 3/4,
#    R = 3/6.  LCS: "red dog ran" = 3 ("the big" is only 2) -> P = 3/5, R = 3/7.
ORDER = ("the big red dog ran", "red dog ran to the big house", {"rouge1": f1(1, 5 / 7), "rouge2": f1(3 / 4, 3 / 6),
                                                                 "rougeL": f1(3 / 5, 3 / 7)})
# 3. nothing shared: every F-measure is 0.
NONE = ("one two", "red blue", {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0})
CASES = [SWAP, ORDER, NONE]


@pytest.mark.parametrize("prediction, reference, expected", CASES, ids=["swap", "order", "none"])
def test_rouge_matches_counts_made_by_hand(prediction, reference, expected):
    got = apps.rouge([prediction], [reference])
    assert got["n"] == 1
    for kind, value in expected.items():
        assert got[kind] == pytest.approx(value, abs=1e-12), kind
        assert got["per_item"][kind] == pytest.approx([value], abs=1e-12), kind


def test_rouge_values_by_hand_are_what_they_say():
    """The hand counts above, written out as fractions: so a wrong f1 helper cannot hide a wrong expectation."""
    assert SWAP[2]["rouge1"] == pytest.approx(5 / 6) and SWAP[2]["rouge2"] == pytest.approx(3 / 5)
    assert ORDER[2]["rouge1"] == pytest.approx(5 / 6)   # 2 * 1 * 5/7 / (12/7)
    assert ORDER[2]["rouge2"] == pytest.approx(3 / 5)   # 2 * 3/8 / (5/4)
    assert ORDER[2]["rougeL"] == pytest.approx(1 / 2)   # 2 * 9/35 / (36/35)


def test_rouge_averages_over_pairs_and_keeps_their_order():
    got = apps.rouge([c[0] for c in CASES], [c[1] for c in CASES])
    assert got["n"] == 3 and set(got) == {"rouge1", "rouge2", "rougeL", "n", "per_item"}
    for kind in apps.ROUGE_TYPES:
        values = [c[2][kind] for c in CASES]
        assert got["per_item"][kind] == pytest.approx(values, abs=1e-12)
        assert got[kind] == pytest.approx(sum(values) / 3, abs=1e-12)
        assert type(got[kind]) is float and all(type(v) is float for v in got["per_item"][kind])


def test_rouge_ignores_case_and_punctuation_and_stems_words():
    assert apps.rouge(["The cat, the MAT."], ["the cat the mat"])["rouge1"] == pytest.approx(1.0)
    # "dogs" (4 letters) is stemmed to "dog": with the stemmer off this would be 2/3.
    assert apps.rouge(["the dogs ran"], ["the dog ran"])["rouge1"] == pytest.approx(1.0)


@pytest.mark.parametrize("predictions, references, message", [
    ([], ["a b"], r"predictions must be a non-empty list"),
    (["a b"], [], r"references must be a non-empty list"),
    (["a b", "c d"], ["a b"], r"got 2 predictions and 1 references: pass one reference for each prediction"),
    (["a b", "  "], ["a b", "c d"], r"predictions must be a non-empty list of summaries, none of them blank"),
])
def test_rouge_refuses_bad_lists_in_one_line(predictions, references, message):
    with pytest.raises(CheckError, match=message) as err:
        apps.rouge(predictions, references)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------- lead-n
TEXT = "One fish swims. Two birds fly! Does it rain? It costs 3.5 pounds, she said. The end."


def test_sentences_split_on_end_marks_followed_by_a_capital():
    assert apps.sentences(TEXT) == ["One fish swims.", "Two birds fly!", "Does it rain?",
                                    "It costs 3.5 pounds, she said.", "The end."]
    # a closing quote stays with its sentence; a lower-case word after a full stop does not start one
    assert apps.sentences('She said "Stop." Then she left. then nothing.') == [
        'She said "Stop."', "Then she left. then nothing."]


def test_lead_n_keeps_the_first_n_sentences():
    assert apps.lead_n(TEXT, 1) == "One fish swims."
    assert apps.lead_n(TEXT) == "One fish swims. Two birds fly! Does it rain?"
    assert apps.lead_n(TEXT, 5) == " ".join(TEXT.split())


def test_lead_n_refuses_a_text_with_too_few_sentences():
    with pytest.raises(CheckError, match=r"n=3 but the text has only 2 sentence\(s\): pass n <= 2") as err:
        apps.lead_n("Only two here. Really.", 3)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "3", None])
def test_lead_n_refuses_a_bad_n(n):
    with pytest.raises(CheckError, match=r"n=.* must be an integer >= 1: pass the number of leading sentences") as err:
        apps.lead_n(TEXT, n)
    assert "\n" not in str(err.value)


def test_lead_n_refuses_a_blank_text():
    with pytest.raises(CheckError, match=r"text=.* is empty"):
        apps.lead_n("   ")


# ----------------------------------------------------------------------------------------------- the data set
FAIR_LEAD = {"bread", "sky", "compost", "tides"}          # the first three sentences summarise the article
BURIED_LEAD = {"handwashing", "longitude", "scurvy", "fridge"}  # an anecdote or background comes first


@pytest.fixture(scope="module")
def rows():
    return apps.load_summaries()


def test_summary_rows_are_complete_and_in_range(rows):
    assert len(rows) == 8
    assert {r["id"] for r in rows} == FAIR_LEAD | BURIED_LEAD
    for r in rows:
        assert 300 <= len(r["source"].split()) <= 600, r["id"]
        assert 40 <= len(r["reference"].split()) <= 70, r["id"]
        assert 2 <= len(apps.sentences(r["reference"])) <= 3, r["id"]
        assert r["title"].strip()


def test_references_paraphrase_rather_than_copy_the_lead(rows):
    """No run of six words of a reference appears in its source."""
    for r in rows:
        words, source = r["reference"].lower().split(), " ".join(r["source"].lower().split())
        runs = [" ".join(words[i:i + 6]) for i in range(len(words) - 5)]
        assert not [run for run in runs if run in source], r["id"]


def test_lead_3_is_a_baseline_that_can_be_beaten(rows):
    leads = [apps.lead_n(r["source"], 3) for r in rows]
    for lead, r in zip(leads, rows):
        assert len(lead.split()) < len(r["source"].split()), r["id"]
    scores = apps.rouge(leads, [r["reference"] for r in rows])["per_item"]["rouge1"]
    by_id = dict(zip([r["id"] for r in rows], scores))
    assert sum(s < 0.5 for s in scores) >= 3, by_id
    # the data is built as it says: where the key point comes late, lead-3 scores below every fair lead
    assert max(by_id[i] for i in BURIED_LEAD) < min(by_id[i] for i in FAIR_LEAD), by_id


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_the_loader_names_the_bad_row_and_the_fix(monkeypatch, tmp_path, rows):
    path = tmp_path / "summaries.jsonl"
    monkeypatch.setattr(apps.data, "data_file", lambda name: path)
    good = dict(rows[0])
    _write(path, [good, {**good, "id": "short", "source": "Too short to summarise."}])
    with pytest.raises(DataError, match=r"row 2 \(id 'short'\): 'source' has 4 words; write 300 to 600 words") as err:
        apps.load_summaries()
    assert "\n" not in str(err.value)
    _write(path, [good, {**good, "id": "long", "reference": " ".join(["word"] * 71)}])
    with pytest.raises(DataError, match=r"row 2 \(id 'long'\): 'reference' has 71 words; write 40 to 70 words"):
        apps.load_summaries()
    _write(path, [good, good])
    with pytest.raises(DataError, match=r"row 2 .*the id is used twice; give every row its own id"):
        apps.load_summaries()
    _write(path, [{**good, "reference": " "}])
    with pytest.raises(DataError, match=r"line 1: field 'reference' must be a non-empty str"):
        apps.load_summaries()
