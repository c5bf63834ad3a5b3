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
    # notebook 06's reply: the first name is "William Shakespeare", which holds the answer
    ('The play "Hamlet" by William Shakespeare is the culmination of the Bard\'s vast creative vision.',
     ["Shakespeare"], "Who wrote the play Hamlet?"),
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


Q_EVEREST = "What is the highest mountain on Earth?"
EVEREST = ["Mount Everest", "Everest"]


@pytest.mark.parametrize("reply, answers, question", [
    # a reply of notebook 15's closed-book run: it names the answer, then denies it
    ("The highest mountain on Earth is Mount Everest, but it's not the highest mountain on Earth. It's Mount Kila",
     EVEREST, Q_EVEREST),
    ("The author of Pride and Prejudice is likely Elizabeth Bennet, not Jane Austen.", AUSTEN, Q_AUSTEN),  # negated
    ("The capital of Australia isn't Canberra.", ["Canberra"], "What is the capital of Australia?"),
    ("Canberra. Actually, the capital is Sydney.", ["Canberra"], "What is the capital of Australia?"),  # corrected
    ("A spider has eight legs, but it does not have eight legs.", ["eight", "8"], "How many legs does a spider have?"),
])
def test_a_reply_that_negates_or_retracts_the_answer_is_not_right(reply, answers, question):
    assert apps.contains_answer(reply, answers)              # lenient: the answer occurs
    assert apps.contradicts_answer(reply, answers, question)
    assert not apps.answer_first(reply, answers, question)   # audited: taken back


@pytest.mark.parametrize("reply, answers, question", [
    ("The highest mountain on Earth is Mount Everest, Nepal.", EVEREST, Q_EVEREST),
    ("The capital of Australia is Canberra, not Sydney.", ["Canberra"], "What is the capital of Australia?"),
    ("A spider has eight legs, not six legs.", ["eight", "8"], "How many legs does a spider have?"),
    ("A spider has 8 legs, not 6.", ["eight", "8"], "How many legs does a spider have?"),
    ("At sea level, pure water boils at 100 degrees Celsius and freezes at 0 degrees Celsius.", ["100"],
     "At what temperature in degrees Celsius does water boil at sea level?"),
    ("The Mona Lisa by Leonardo da Vinci is attributed to the artist, but it is also believed to have been painted by",
     ["Leonardo da Vinci"], "Who painted the Mona Lisa?"),  # a hedge, not a denial
    ("Canberra, but the population is not large.", ["Canberra"], "What is the capital of Australia?"),
])
def test_a_negation_of_something_else_is_not_a_contradiction(reply, answers, question):
    assert not apps.contradicts_answer(reply, answers, question)


def test_contradiction_needs_a_mention_and_a_string_question():
    assert not apps.contradicts_answer("It is not Sydney.", ["Canberra"], "What is the capital of Australia?")
    with pytest.raises(ValueError, match="question must be a string"):
        apps.contradicts_answer("Canberra.", ["Canberra"], None)
    with pytest.raises(ValueError, match="no accepted answers"):
        apps.contradicts_answer("Canberra.", [], "What is the capital of Australia?")
