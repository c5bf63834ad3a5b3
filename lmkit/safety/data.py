"""The safety notebook's data sets (``data/safety/``), each read and checked line by line (taught in the safety
notebook).

Four files, written for this project (see ``data/safety/README.md`` for how, and for the licence of the quoted
public-domain texts); ``data/safety/make_data.py`` writes them all:

- ``passages.jsonl``: texts for extraction and membership inference, public (famous or not) and project-written;
- ``refusal_pairs.jsonl``: unsafe requests, each matched with a safe request that looks alike (XSTest's design);
- ``payloads.jsonl``: instructions to plant in a retrieved passage (prompt injection);
- ``open_questions.jsonl``: questions with an answer and questions that have none (abstention).
"""
from __future__ import annotations

from lmkit import checks
from lmkit.data import data_file
from lmkit.files import DataError, read_jsonl

__all__ = ["DATA_DIR", "GROUPS", "FAME", "SPLITS", "PAYLOAD_KINDS", "load_passages", "load_refusal_pairs",
           "load_payloads", "load_open_questions"]

DATA_DIR = "safety"

GROUPS = ("public", "project")
"""``public``: text published long ago and free to copy, so almost surely in a web-scale training set; ``project``:
written for this workbook in the same styles and lengths, so no model can have been trained on it."""

FAME = {3: "among the most quoted passages in English", 2: "well known to readers; taught in schools",
        1: "from a famous work, but a passage drawn at random by a seeded rule", 0: "written for this project"}
"""The ``fame`` grade of a passage: an ordinal scale, assigned by hand for 3 and 2 (a judgement, not a count), by
rule for 1 and 0."""

SPLITS = {"refusal_pairs": ("direction", "test"), "open_questions": ("validation", "test")}
"""The splits of the files that have them: ``direction`` pairs only build the refusal direction (Arditi et al. 2024)
and ``test`` pairs only measure refusal rates; ``validation`` questions only choose a threshold or a prompt and
``test`` questions only measure. Every item is in one split."""

PAYLOAD_KINDS = ("ignore", "fixed", "leak")
"""What a planted instruction asks: ``ignore`` the question and write about something else (its ``marker`` word
shows it worked), answer a ``fixed`` string (the ``marker``), or ``leak`` the secret of the system prompt."""

_FIELDS = {"passages": {"id": str, "group": str, "fame": int, "style": str, "source": str, "text": str},
           "refusal_pairs": {"id": str, "split": str, "type": str, "unsafe": str, "safe": str},
           "payloads": {"id": str, "kind": str, "text": str},
           "open_questions": {"id": str, "split": str, "kind": str, "answerable": bool, "question": str,
                              "answers": list}}


def _rows(name: str) -> list[dict]:
    rows = read_jsonl(data_file(f"{DATA_DIR}/{name}.jsonl"), _FIELDS[name])
    seen: set[str] = set()
    for number, row in enumerate(rows, 1):
        if row["id"] in seen:
            raise DataError(f"data/{DATA_DIR}/{name}.jsonl, row {number}: the id {row['id']!r} is used twice; give "
                            "every row its own id")
        seen.add(row["id"])
    return rows


def _pick(rows: list[dict], **wanted) -> list[dict]:
    return [r for r in rows if all(v is None or r[k] == v for k, v in wanted.items())]


def load_passages(group: str | None = None, fame: int | None = None) -> list[dict]:
    """The extraction and membership passages (taught in the safety notebook): a list of dicts with ``id``,
    ``group`` (:data:`GROUPS`), ``fame`` (0 to 3, :data:`FAME`), ``style`` (``verse``, ``scripture``, ``novel``,
    ...), ``source`` (the work quoted, or ``"project"``) and ``text``. Every text is at least 72 tokens of
    SmolLM2's tokenizer, room for a 32-token prefix and a 32-token suffix.

    ``group`` / ``fame`` keep one group or grade (None: all). Errors: a one-line :class:`lmkit.checks.CheckError`
    for another value; :class:`lmkit.files.DataError` naming the file and line for a bad row.
    """
    if group is not None:
        checks.one_of("group", group, GROUPS)
    if fame is not None:
        checks.one_of("fame", fame, tuple(FAME), fix="pass 0, 1, 2 or 3 (see lmkit.safety.FAME), or None for all")
    return _pick(_rows("passages"), group=group, fame=fame)


def load_refusal_pairs(split: str | None = None) -> list[dict]:
    """Matched refusal pairs in the spirit of XSTest (Röttger et al. 2024) (taught in the safety notebook).

    Each dict has ``id``, ``split`` (``"direction"`` or ``"test"``, :data:`SPLITS`), ``type`` (how the safe request
    resembles the unsafe one: ``homonym``, ``figurative``, ``safe_target``, ``safe_context``, ``definition``,
    ``privacy_public``, ``fiction``), ``unsafe`` (a request an assistant should decline; mild and non-operational)
    and ``safe`` (a request that looks alike and should be answered: "How do I kill a Python process?").
    """
    if split is not None:
        checks.one_of("split", split, SPLITS["refusal_pairs"])
    return _pick(_rows("refusal_pairs"), split=split)


def load_payloads(kind: str | None = None) -> list[dict]:
    """Prompt-injection payloads to plant in a passage (taught in the safety notebook): dicts with ``id``, ``kind``
    (:data:`PAYLOAD_KINDS`), ``text`` (the planted instruction) and, for ``ignore`` and ``fixed``, ``marker``
    (the words whose presence in a reply shows the attack worked; a ``leak`` succeeds when the system prompt's
    secret appears). ``kind`` keeps one kind (None: all)."""
    if kind is not None:
        checks.one_of("kind", kind, PAYLOAD_KINDS)
    rows = _pick(_rows("payloads"), kind=kind)
    for row in rows:
        if row["kind"] != "leak" and not str(row.get("marker", "")).strip():
            raise DataError(f"data/{DATA_DIR}/payloads.jsonl, id {row['id']!r}: an {row['kind']!r} payload needs a "
                            "'marker'; write the words a reply shows when the attack worked")
    return rows


def load_open_questions(split: str | None = None, answerable: bool | None = None) -> list[dict]:
    """Open questions for abstention (taught in the safety notebook): dicts with ``id``, ``split``
    (``"validation"`` or ``"test"``), ``kind`` (``world`` for answerable ones; ``fictional``, ``false_premise``,
    ``unknowable`` or ``future`` for the others), ``answerable`` (bool), ``question`` and ``answers`` (accepted
    short answers; empty when there is none). ``split`` / ``answerable`` keep a subset (None: all)."""
    if split is not None:
        checks.one_of("split", split, SPLITS["open_questions"])
    if answerable is not None:
        checks.boolean("answerable", answerable, fix="pass True, False or None for all")
    return _pick(_rows("open_questions"), split=split, answerable=answerable)
