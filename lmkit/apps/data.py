"""The project's sentiment, Q&A, passage, translation and summary sets (``data/apps/``), each read and checked line by line (notebook 15)."""
from __future__ import annotations

from lmkit.data import data_file
from lmkit.files import DataError, read_jsonl

__all__ = ['DATA_DIR', 'LABELS', 'SCHEMAS', 'SUMMARY_WORDS', 'sentiment_data', 'qa_data', 'passages',
           'translation_data', 'load_summaries']

DATA_DIR = "apps"
"""The project's sentiment, Q&A, passage, translation and summary sets under ``data/`` (see ``data/apps/README.md``); found
by :func:`lmkit.data.data_file`, from the checkout or, after a pip install (Colab), downloaded once."""
LABELS = ("positive", "negative", "neutral")


# ----------------------------------------------------------------------------------------------- data
SCHEMAS = {"sentiment": {"text": str, "label": str, "split": str},
           "qa": {"id": str, "question": str, "answers": list, "passage": str},
           "passages": {"id": str, "text": str},
           "translation": {"en": str, "fr": list},
           "summaries": {"id": str, "title": str, "source": str, "reference": str}}
"""The fields every row of each data set must have, checked line by line by :func:`lmkit.files.read_jsonl`."""


def _rows(name: str) -> list[dict]:
    return read_jsonl(data_file(f"{DATA_DIR}/{name}.jsonl"), SCHEMAS[name])


def sentiment_data(split: str = "test") -> list[dict]:
    """The labelled sentiment set: ``split="test"`` (90 rows, 30 per label) or ``"shots"`` (9 prompt examples)."""
    if split not in ("test", "shots"):
        raise ValueError(f"split={split!r}: use 'test' (the scored set) or 'shots' (the few-shot examples)")
    return [r for r in _rows("sentiment") if r["split"] == split]


def qa_data() -> list[dict]:
    """Questions with their accepted answers and the id of the passage that holds the answer (notebook 15)."""
    return _rows("qa")


def passages() -> list[dict]:
    """The passages that retrieval searches: common knowledge, and a fictional town's handbook (notebook 15)."""
    return _rows("passages")


def translation_data() -> list[dict]:
    """Short English sentences with reference French translations (notebook 15)."""
    return _rows("translation")


SUMMARY_WORDS = {"source": (300, 600), "reference": (40, 70)}
"""The word counts (white-space separated words, inclusive) that :func:`load_summaries` requires of each row."""


def load_summaries() -> list[dict]:
    """The summarisation set: 8 articles written for this project, each with one written reference summary
    (notebook 15).

    Each row is a dict with ``id``, ``title``, ``source`` (300 to 600 words) and ``reference`` (2 to 3 sentences,
    40 to 70 words, paraphrased rather than copied from the source). In some sources the first three sentences are
    a fair summary, in others an anecdote or background comes first, so that lead-3
    (:func:`lmkit.apps.lead_n`) is a baseline a model can beat or lose to. Word counts are ``len(text.split())``.

    Errors: :class:`lmkit.files.DataError` (a ``ValueError``) in one line naming the row and the fix, for a missing
    or empty field, a repeated ``id``, or a word count outside :data:`SUMMARY_WORDS`.
    """
    rows, seen = _rows("summaries"), set()
    for number, row in enumerate(rows, 1):
        where = f"data/{DATA_DIR}/summaries.jsonl, row {number} (id {row['id']!r})"
        if row["id"] in seen:
            raise DataError(f"{where}: the id is used twice; give every row its own id")
        seen.add(row["id"])
        for field, (low, high) in SUMMARY_WORDS.items():
            words = len(row[field].split())
            if not low <= words <= high:
                raise DataError(f"{where}: {field!r} has {words} words; write {low} to {high} words")
    return rows
