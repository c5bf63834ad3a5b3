"""Scoring the applications: accuracy and F1, confusion matrices, exact match, audited "contains", chrF (notebook 15)."""
from __future__ import annotations

import re
import string
import unicodedata

from lmkit import checks
from lmkit.apps.data import LABELS

__all__ = ['evaluate', 'plot_confusion', 'normalize_answer', 'first_line', 'exact_match', 'contains_answer',
           'contradicts_answer', 'answer_first', 'chrf']

# ----------------------------------------------------------------------------------------------- metrics
def evaluate(y_true, y_pred, labels=LABELS) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows: true label, columns: predicted) with sklearn (notebook 15)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y_true, y_pred, labels = list(y_true), list(y_pred), list(labels)
    if len(y_true) != len(y_pred) or not y_true:
        checks.fail(f"got {len(y_true)} true and {len(y_pred)} predicted labels: pass two non-empty lists of the same "
                    "length")
    for y in y_true + y_pred:
        checks.one_of("label", y, labels, fix="map it to one of them first")
    return {"n": len(y_true), "accuracy": accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
            "confusion": confusion_matrix(y_true, y_pred, labels=labels), "labels": labels}


def plot_confusion(result: dict, ax=None, title: str = "confusion matrix"):
    """Draw :func:`evaluate`'s confusion matrix, counts in the cells (notebook 15). Returns the axes."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.6))
    ConfusionMatrixDisplay(result["confusion"], display_labels=result["labels"]).plot(
        ax=ax, colorbar=False, cmap="Blues", values_format="d")
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"{title}\naccuracy {result['accuracy']:.0%}, n={result['n']}", fontsize=10)
    return ax


def normalize_answer(text: str) -> str:
    """Lower case, accents and punctuation removed, articles dropped, spaces collapsed (SQuAD-style, notebook 15)."""
    text = unicodedata.normalize("NFKD", str(text).lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = "".join(" " if c in string.punctuation or c in "’‘“”«»" else c for c in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def first_line(text: str) -> str:
    """The answer proper: the first non-empty line of a model's reply (notebook 15)."""
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _answers(answers, name: str = "answers", what: str = "accepted answers", example: str = "['Canberra']"):
    """``answers`` (one string or a list) as a non-empty list of strings; a one-line error otherwise."""
    return checks.texts(name, answers, what=what, fix=f"no {what} given; pass at least one, e.g. {example}")


def exact_match(prediction: str, answers) -> bool:
    """True if the normalised first line of ``prediction`` equals one normalised accepted answer (notebook 15)."""
    answers = _answers(answers)
    pred = normalize_answer(first_line(prediction))
    return any(pred == normalize_answer(a) for a in answers)


def contains_answer(prediction: str, answers) -> bool:
    """True if a normalised accepted answer occurs, as whole words, in the normalised reply (lenient, notebook 15)."""
    answers = _answers(answers)
    pred = f" {normalize_answer(prediction)} "
    return any(f" {normalize_answer(a)} " in pred for a in answers if normalize_answer(a))


_CANDIDATE = re.compile(r"[A-Z][\w'’-]*|\d+(?:[.,]\d+)?")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[.!?:;\n]")
_NEGATIONS = {"not", "no", "never", "nor", "neither", "nothing", "none"}
_CORRECTIONS = {"actually"}
_NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
                 "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million"}
_STOP = {"what", "which", "where", "when", "whom", "whose", "does", "have", "with", "from", "that", "this", "there",
         "their", "many", "much", "name", "called"}


def _is_candidate(text: str, start: int, word: str) -> bool:
    """A name or number the reply offers: capitalised but not opening a sentence, digits, or a number word."""
    if word.lower() in _NUMBER_WORDS:
        return True
    if not _CANDIDATE.fullmatch(word):
        return False
    before = text[:start].rstrip(" \t\"'“‘*(")
    return word[0].isdigit() or bool(before) and before[-1] not in ".:!?\n"


def _items(text: str) -> list[dict]:
    """The reply as normalised words (articles dropped), each with its flags; "|" marks a sentence end."""
    items = []
    for m in _WORD.finditer(text):
        word = m.group(0)
        if word in ".!?:;\n":
            items.append({"norm": "|", "neg": False, "cand": False})
            continue
        low = word.lower().replace("’", "'")
        if low in _NEGATIONS or low.endswith("n't"):
            items.append({"norm": "not", "neg": True, "cand": False})
            continue
        cand = _is_candidate(text, m.start(), word)
        for part in normalize_answer(word).split():
            items.append({"norm": part, "neg": False, "cand": cand})
    return items


def contradicts_answer(prediction: str, answers, question: str = "") -> bool:
    """True if the reply mentions an accepted answer and then negates or takes it back (notebook 15).

    A rule over the reply's words (normalised as in :func:`normalize_answer`), in three parts:

    - **negated**: a negation (*not, no, never, …n't*) is among the two words just before a mention of an answer:
      *"Elizabeth Bennet, not Jane Austen"*;
    - **denied**: after the first mention, a negation that is not followed within two words by another name or number
      is followed, in the same sentence, by a content word of ``question``: *"Mount Everest, but it's not the highest
      mountain on Earth"* (whereas *"Canberra, not Sydney"* and *"8 legs, not 6"* negate the other candidate);
    - **corrected**: after the first mention, *actually* is followed by a name or number that is neither an answer nor
      a word of ``question`` and is not itself negated: *"Neptune, but it's actually Uranus"*.

    A reply that does not mention an answer is not a contradiction (:func:`contains_answer` is False there). A
    heuristic, like every rule over free text: read the flagged replies (the notebook prints them).
    """
    answers = _answers(answers)
    if not isinstance(question, str):
        checks.fail(f"question must be a string, not {type(question).__name__}: pass the question asked, or ''")
    text = str(prediction)
    items = _items(text)
    norms = [it["norm"] for it in items]
    spans = [(i, i + len(seq)) for seq in (normalize_answer(a).split() for a in answers) if seq
             for i in range(len(norms) - len(seq) + 1) if norms[i:i + len(seq)] == seq]
    if not spans:
        return False
    answer_words = {w for a in answers for w in normalize_answer(a).split()}
    question_words = set(normalize_answer(question).split())
    content = {w for w in question_words if len(w) >= 4 and w not in _STOP}
    other = lambda it: it["cand"] and it["norm"] not in answer_words and it["norm"] not in question_words
    if any(it["neg"] for start, _ in spans for it in items[max(start - 2, 0):start]):
        return True  # negated
    first_end = min(end for _, end in spans)
    for j in range(first_end, len(items)):
        it = items[j]
        if it["neg"] and not any(other(x) for x in items[j + 1:j + 3]):
            rest = norms[j + 1:]
            sentence = rest[:rest.index("|")] if "|" in rest else rest
            if content & set(sentence):
                return True  # denied
        if it["norm"] in _CORRECTIONS:
            for k in range(j + 1, len(items)):
                if other(items[k]) and not any(x["neg"] for x in items[max(k - 2, 0):k]):
                    return True  # corrected
    return False


def answer_first(prediction: str, answers, question: str = "") -> bool:
    """:func:`contains_answer`, audited: the reply offers an answer first and does not take it back (notebook 15).

    "Contains" alone credits a reply such as *"The author of Pride and Prejudice is likely Elizabeth Bennet, from Jane
    Austen's novel"*: it mentions the answer but asserts another. Here the candidates are the reply's capitalised words
    and numbers that do not open a sentence and are not words of ``question``; the reply counts as right only if it
    contains an accepted answer, the name its first candidate opens (if it has any: consecutive capitalised words,
    so *William Shakespeare*) holds a word of an accepted answer, and
    :func:`contradicts_answer` finds no negation or retraction of it (*"Mount Everest, but it's not the highest
    mountain on Earth"*).
    """
    answers = _answers(answers)
    if not contains_answer(prediction, answers):
        return False
    answer_words = {w for a in answers for w in normalize_answer(a).split()}
    question_words = set(normalize_answer(question).split())
    text = str(prediction)
    for m in _CANDIDATE.finditer(text):
        before = text[: m.start()].rstrip(" \t\"'“‘*(")
        if not before or before[-1] in ".:!?\n":  # opens a sentence: capitalised by grammar, not a name
            continue
        word = normalize_answer(m.group(0))
        if not word or word in question_words:
            continue
        name, end = [word], m.end()  # the whole name it opens: "William Shakespeare", not just "William"
        for nxt in _CANDIDATE.finditer(text, end):
            if text[end:nxt.start()].strip(" ") or not nxt.group(0)[0].isupper():
                break
            name, end = name + [normalize_answer(nxt.group(0))], nxt.end()
        if not any(w in answer_words for part in name for w in part.split()):
            return False
        break
    return not contradicts_answer(prediction, answers, question)


def chrf(prediction: str, references) -> float:
    """chrF (character n-gram F-score, Popović 2015), 0-100, of one prediction against its references (notebook 15).

    Computed by sacrebleu's ``sentence_chrf`` with its defaults (character 6-grams, beta = 2): unlike exact match, a
    near-miss or a partly right translation gets partial credit.
    """
    from sacrebleu import sentence_chrf

    references = _answers(references, "references", "reference translations", "['Bonjour.']")
    return float(sentence_chrf(str(prediction), references).score)
