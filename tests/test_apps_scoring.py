"""lmkit.apps scoring of free-text answers: contains, audited by answer_first; chrF for translation."""
import pytest

from lmkit import apps

AUSTEN = ["Jane Austen", "Austen"]
Q_AUSTEN = "Who wrote Pride and Prejudice?"


def test_answer_first_rejects_a_reply_that_asserts_another_name():
    reply = "The author of Pride and Prejudice is likely Elizabeth Bennet, from Jane Austen's novel."
    assert apps.contains_answer(reply, AUSTEN)                 # lenient: the answer occurs
    assert not apps.answer_first(reply, AUSTEN, Q_AUSTEN)      # audited: it names Elizabeth Bennet first


@pytest.mark.parametrize("reply, answers, question", [
    ("The answer to this question is: The novel by Jane Austen is a classic.", AUSTEN, Q_AUSTEN),
    ("The capital of Australia is Canberra.", ["Canberra"], "What is the capital of Australia?"),
    ("The currency of Japan is the yen.", ["yen"], "What is the currency of Japan?"),      # no capitalised candidate
    ("A spider has 8 legs.", ["eight", "8"], "How many legs does a spider have?"),
])
def test_answer_first_accepts_right_replies(reply, answers, question):
    assert apps.answer_first(reply, answers, question)


def test_answer_first_needs_the_answer_at_all():
    assert not apps.answer_first("The capital of Australia is Sydney.", ["Canberra"], "What is the capital of Australia?")


def test_chrf_gives_partial_credit_where_exact_match_gives_none():
    assert apps.chrf("Bonjour.", ["Bonjour."]) == pytest.approx(100.0)
    near, wrong = apps.chrf("Le chat est noire.", ["Le chat est noir."]), apps.chrf("Je m'aime.", ["Le chat est noir."])
    assert not apps.exact_match("Le chat est noire.", ["Le chat est noir."])
    assert 50 < near < 100 and wrong < 20
    with pytest.raises(ValueError, match="no reference"):
        apps.chrf("Bonjour.", [])
