"""Scoring the applications: accuracy and F1, confusion matrices, exact match, audited "contains", chrF (notebook 13)."""
from __future__ import annotations

import re
import string
import unicodedata

from lmkit import checks
from lmkit.apps.data import LABELS

__all__ = ['evaluate', 'plot_confusion', 'normalize_answer', 'first_line', 'exact_match', 'contains_answer', 'answer_first', 'chrf']

# ----------------------------------------------------------------------------------------------- metrics
def evaluate(y_true, y_pred, labels=LABELS) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows: true label, columns: predicted) with sklearn (notebook 13)."""
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
    """Draw :func:`evaluate`'s confusion matrix, counts in the cells (notebook 13). Returns the axes."""
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
    """Lower case, accents and punctuation removed, articles dropped, spaces collapsed (SQuAD-style, notebook 13)."""
    text = unicodedata.normalize("NFKD", str(text).lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = "".join(" " if c in string.punctuation or c in "’‘“”«»" else c for c in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def first_line(text: str) -> str:
    """The answer proper: the first non-empty line of a model's reply (notebook 13)."""
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _answers(answers, name: str = "answers", what: str = "accepted answers", example: str = "['Canberra']"):
    """``answers`` (one string or a list) as a non-empty list of strings; a one-line error otherwise."""
    return checks.texts(name, answers, what=what, fix=f"no {what} given; pass at least one, e.g. {example}")


def exact_match(prediction: str, answers) -> bool:
    """True if the normalised first line of ``prediction`` equals one normalised accepted answer (notebook 13)."""
    answers = _answers(answers)
    pred = normalize_answer(first_line(prediction))
    return any(pred == normalize_answer(a) for a in answers)


def contains_answer(prediction: str, answers) -> bool:
    """True if a normalised accepted answer occurs, as whole words, in the normalised reply (lenient, notebook 13)."""
    answers = _answers(answers)
    pred = f" {normalize_answer(prediction)} "
    return any(f" {normalize_answer(a)} " in pred for a in answers if normalize_answer(a))


_CANDIDATE = re.compile(r"[A-Z][\w'’-]*|\d+(?:[.,]\d+)?")


def answer_first(prediction: str, answers, question: str = "") -> bool:
    """:func:`contains_answer`, audited: the first name or number the reply offers must belong to an answer (notebook 13).

    "Contains" alone credits a reply such as *"The author of Pride and Prejudice is likely Elizabeth Bennet, from Jane
    Austen's novel"*: it mentions the answer but asserts another. Here the candidates are the reply's capitalised words
    and numbers that do not open a sentence and are not words of ``question``; the reply counts as right only if it
    contains an accepted answer and its first candidate (if it has any) is a word of an accepted answer.
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
        return word.split()[0] in answer_words
    return True


def chrf(prediction: str, references) -> float:
    """chrF (character n-gram F-score, Popović 2015), 0-100, of one prediction against its references (notebook 13).

    Computed by sacrebleu's ``sentence_chrf`` with its defaults (character 6-grams, beta = 2): unlike exact match, a
    near-miss or a partly right translation gets partial credit.
    """
    from sacrebleu import sentence_chrf

    references = _answers(references, "references", "reference translations", "['Bonjour.']")
    return float(sentence_chrf(str(prediction), references).score)
