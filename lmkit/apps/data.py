"""The project's sentiment, Q&A, passage and translation sets (``data/apps/``), each read and checked line by line (notebook 13)."""
from __future__ import annotations

from lmkit.data import data_file
from lmkit.files import read_jsonl

__all__ = ['DATA_DIR', 'LABELS', 'SCHEMAS', 'sentiment_data', 'qa_data', 'passages', 'translation_data']

DATA_DIR = "apps"
"""The project's sentiment, Q&A, passage and translation sets under ``data/`` (see ``data/apps/README.md``); found
by :func:`lmkit.data.data_file`, from the checkout or, after a pip install (Colab), downloaded once."""
LABELS = ("positive", "negative", "neutral")


# ----------------------------------------------------------------------------------------------- data
SCHEMAS = {"sentiment": {"text": str, "label": str, "split": str},
           "qa": {"id": str, "question": str, "answers": list, "passage": str},
           "passages": {"id": str, "text": str},
           "translation": {"en": str, "fr": list}}
"""The fields every row of each data set must have, checked line by line by :func:`lmkit.files.read_jsonl`."""


def _rows(name: str) -> list[dict]:
    return read_jsonl(data_file(f"{DATA_DIR}/{name}.jsonl"), SCHEMAS[name])


def sentiment_data(split: str = "test") -> list[dict]:
    """The labelled sentiment set: ``split="test"`` (90 rows, 30 per label) or ``"shots"`` (9 prompt examples)."""
    if split not in ("test", "shots"):
        raise ValueError(f"split={split!r}: use 'test' (the scored set) or 'shots' (the few-shot examples)")
    return [r for r in _rows("sentiment") if r["split"] == split]


def qa_data() -> list[dict]:
    """Questions with their accepted answers and the id of the passage that holds the answer (notebook 13)."""
    return _rows("qa")


def passages() -> list[dict]:
    """The passages that retrieval searches: common knowledge, and a fictional town's handbook (notebook 13)."""
    return _rows("passages")


def translation_data() -> list[dict]:
    """Short English sentences with reference French translations (notebook 13)."""
    return _rows("translation")
