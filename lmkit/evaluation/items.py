"""Multiple-choice items: the project's set, checks with one-line errors, prompt templates, shuffled choices
(notebook 16)."""
from __future__ import annotations

import random
from collections.abc import Sequence

from lmkit import checks
from lmkit.data import data_file
from lmkit.files import read_jsonl

__all__ = ["ItemError", "TEMPLATES", "LETTERS", "NORMALIZE", "check_items", "load_items", "load_famous_lines", "load_prefix_probe", "paraphrased", "render",
           "shuffle_choices"]

DATA_DIR = "evaluation"
TEMPLATES = {
    "qa": "Question: {question}\nAnswer:",
    "q_a": "Q: {question}\nA:",
    "bare": "{question}",
}
"""Prompt formats: ``{question}`` is replaced by the item's question. ``"qa"`` is the one the harness task uses."""
LETTERS = "ABCDEFGH"
NORMALIZE = ("none", "chars", "tokens")


class ItemError(ValueError):
    """A multiple-choice item or bias pair is malformed; the one-line message names it and the fix."""


def check_items(items, where: str = "items") -> list[dict]:
    """Check every item before any work: ``question`` a non-empty string, ``choices`` a list of at least two
    non-empty strings, ``answer`` an int index into ``choices``. Returns the items as a list; raises :class:`ItemError`.
    """
    if isinstance(items, dict) or isinstance(items, str) or not isinstance(items, Sequence):
        checks.fail(f"{where}: pass a list of item dicts, not a {type(items).__name__}", ItemError)
    if not items:
        checks.fail(f"{where}: no items; pass at least one {{'question', 'choices', 'answer'}} dict", ItemError)
    for i, item in enumerate(items):
        name = f"{where}, item {i}" + (f" (id {item['id']!r})" if isinstance(item, dict) and "id" in item else "")
        if not isinstance(item, dict):
            checks.fail(f"{name}: a {type(item).__name__}, not a dict with 'question', 'choices', 'answer'", ItemError)
        q, choices, answer = item.get("question"), item.get("choices"), item.get("answer")
        if not isinstance(q, str) or not q.strip():
            checks.fail(f"{name}: 'question' must be a non-empty string, got {q!r:.40}", ItemError)
        if not isinstance(choices, (list, tuple)) or not choices:
            checks.fail(f"{name}: empty or missing choice list ({choices!r:.40}); give 'choices' as a list of "
                        "at least two strings", ItemError)
        if len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            checks.fail(f"{name}: 'choices' must hold at least two non-empty strings, got {choices!r:.60}", ItemError)
        if not checks.is_integer(answer) or not 0 <= answer < len(choices):
            checks.fail(f"{name}: answer index {answer!r} is out of range for {len(choices)} choices; give 'answer' "
                        f"as the 0-based index of the right choice (0 to {len(choices) - 1})", ItemError)
    return list(items)


def load_items(name: str = "mc.jsonl", categories=None) -> list[dict]:
    """The project's multiple-choice items (``data/evaluation/mc.jsonl``: 272 items in four categories), checked.

    ``categories``: keep only these (``"knowledge"``, ``"commonsense"``, ``"arithmetic"``, ``"reading"``).
    """
    checks.text("name", name, fix="pass a file name in data/evaluation/, e.g. 'mc.jsonl'", error=ItemError)
    if categories is not None:
        categories = checks.texts("categories", categories, what="category names", error=ItemError,
                                  fix="pass e.g. ['knowledge', 'arithmetic'], or None for all")
    path = data_file(f"{DATA_DIR}/{name}")
    items = check_items(read_jsonl(path, fields=("question",)), where=str(path))
    if categories is not None:
        wanted = set(categories)
        known = {it.get("category") for it in items}
        if not wanted <= known:
            raise ItemError(f"unknown categories {sorted(wanted - known)}: use some of {sorted(known)}")
        items = [it for it in items if it.get("category") in wanted]
    return items


def paraphrased(items, name: str = "paraphrases.jsonl") -> list[dict]:
    """Copies of those ``items`` that have a reworded question in ``data/evaluation/paraphrases.jsonl`` (the 72
    knowledge items: same fact, same choices, new wording), with the question replaced; the others are left out.
    The contamination probe of notebook 16: a model that had memorised an item's wording would lose accuracy on
    its paraphrase. Raises :class:`ItemError` when none of ``items`` has one."""
    items = check_items(items)
    rows = read_jsonl(data_file(f"{DATA_DIR}/{name}"), fields=("id", "question"))
    new = {r["id"]: r["question"] for r in rows}
    out = [{**it, "question": new[it["id"]]} for it in items if it.get("id") in new]
    if not out:
        checks.fail(f"none of the {len(items)} items has an id in {name}: pass items from load_items('mc.jsonl')",
                    ItemError)
    return out


def load_famous_lines(name: str = "famous_lines.jsonl") -> list[dict]:
    """The contamination probe's positive control (notebook 16): famous public-domain lines that any web-trained
    model has read many times, each a dict with ``prefix`` (the line's opening), ``verbatim`` (its real
    continuation) and ``reworded`` (the same meaning in new words), from ``data/evaluation/famous_lines.jsonl``.
    A model that memorised the wording gives the verbatim continuation the higher log-probability. Raises
    :class:`lmkit.files.DataError` naming the file and line when a row lacks a field."""
    return read_jsonl(data_file(f"{DATA_DIR}/{name}"), fields=("prefix", "verbatim", "reworded"))


def load_prefix_probe(name: str = "prefix_probe.jsonl", kind: str | None = None) -> list[dict]:
    """The controls of notebook 16's contamination probe, built like the probe itself: the context is reworded and
    the same continuation is scored after both wordings. Each row (``data/evaluation/prefix_probe.jsonl``) has
    ``kind`` (``"famous"``: the opening of a public-domain line the web repeats endlessly, the positive control;
    ``"new"``: a line written for this workbook, which no model can have memorised, the negative control),
    ``prefix`` (the line's opening as written), ``prefix_reworded`` (the same meaning in other words) and
    ``continuation`` (the line's real rest, with its leading space). ``kind`` selects one of the two sets (None:
    both). Raises :class:`lmkit.checks.CheckError` (a ValueError) for another ``kind``, and
    :class:`lmkit.files.DataError` naming the file and line when a row lacks a field."""
    if kind is not None:
        checks.one_of("kind", kind, ("famous", "new"))
    rows = read_jsonl(data_file(f"{DATA_DIR}/{name}"), fields=("kind", "prefix", "prefix_reworded", "continuation"))
    return [r for r in rows if kind is None or r["kind"] == kind]


def render(template: str | None, item: dict) -> str:
    """The context for ``item``: ``template`` with ``{question}`` filled in (``None``: the question as is)."""
    if template is None:
        return item["question"]
    checks.text("template", template, fix="pass a prompt format with a {question} field, or None", error=ItemError)
    if "{question}" not in template:
        raise ItemError(f"template {template!r:.50} has no {{question}} field: add it where the question goes")
    return template.replace("{question}", item["question"])


def shuffle_choices(items, seed: int = 0) -> list[dict]:
    """Copies of ``items`` with their choices in a seeded random order and ``answer`` moved with the right one."""
    rng = random.Random(checks.seed("seed", seed))
    out = []
    for item in check_items(items):
        order = list(range(len(item["choices"])))
        rng.shuffle(order)
        out.append({**item, "choices": [item["choices"][k] for k in order], "answer": order.index(item["answer"])})
    return out
