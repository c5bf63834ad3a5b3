"""Judging summaries: the lead-n baseline and ROUGE-1/2/L against a written reference (notebook 15).

- :func:`lead_n`: the first ``n`` sentences of a text. Lead-3 is the standard extractive baseline for news
  summarisation (Nallapati et al. 2017, "SummaRuNNer: a recurrent neural network based sequence model for extractive
  summarization of documents";
  See et al. 2017, "Get to the point: summarization with pointer-generator networks"): a model's summary is worth
  something only where it beats it.
- :func:`rouge`: ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Lin 2004, "ROUGE: A package for automatic evaluation of
  summaries"), computed by Google's ``rouge_score`` package, the implementation most papers report.

The project's articles with their reference summaries are read by :func:`lmkit.apps.load_summaries`.
"""
from __future__ import annotations

import re

from lmkit import checks

__all__ = ["SENTENCE_END", "ROUGE_TYPES", "sentences", "lead_n", "rouge"]

SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+(?=[\"'“‘(]?[A-Z])")
"""Where one sentence ends and the next begins: ``.``, ``!`` or ``?`` (optionally followed by a closing quote or
bracket), then white space, then a capital letter (optionally after an opening quote or bracket).

A deliberately simple rule, written so that a reader can check it by eye. It splits wrongly after an abbreviation
followed by a capital ("Dr. Smith", "U.S. Navy") and does not split before a sentence that starts with a digit or a
lower-case letter; the project's summary sources are written without such cases. nltk's punkt tokenizer would handle
abbreviations, but it needs its model downloaded (``nltk.download("punkt_tab")``), which fails offline."""

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
"""The scores :func:`rouge` returns: unigram overlap, bigram overlap, and the longest common subsequence (LCS)."""


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences by :data:`SENTENCE_END`, each stripped, white space inside kept as it was
    (notebook 15). A one-line ``ValueError`` for a text that is not a non-blank string."""
    checks.text("text", text, fix="pass the text to split into sentences")
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def lead_n(text: str, n: int = 3) -> str:
    """The first ``n`` sentences of ``text``, joined by one space: the lead-n baseline summary (notebook 15).

    - ``text``: a non-blank string; sentences are found by :data:`SENTENCE_END` (see its caveats).
    - ``n``: a positive ``int`` (``bool`` refused); lead-3 (``n=3``) is the usual baseline (See et al. 2017;
      Nallapati et al. 2017).
    - Returns a ``str``. The first ``n`` sentences of a text with more than ``n`` are always shorter than the text.
    - Errors: a one-line :class:`lmkit.checks.CheckError` (a ``ValueError``) for a bad ``n``, a blank text, or a
      text with fewer than ``n`` sentences (the message gives ``n``, the count and the fix).
    """
    n = checks.integer("n", n, low=1, fix="pass the number of leading sentences to keep, e.g. n=3")
    found = sentences(text)
    if len(found) < n:
        checks.fail(f"n={n} but the text has only {len(found)} sentence(s): pass n <= {len(found)}, or a longer "
                    "text (sentences end with . ! or ? followed by a space and a capital)")
    return " ".join(found[:n])


def rouge(predictions, references) -> dict:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of each prediction against its reference, and their means
    (Lin 2004; notebook 15).

    - ``predictions``, ``references``: lists of non-blank strings of the same length, paired by position (one
      string each is also accepted). One reference per prediction.
    - Returns ``{"rouge1": mean, "rouge2": mean, "rougeL": mean, "n": pairs, "per_item": {"rouge1": [...],
      "rouge2": [...], "rougeL": [...]}}``: F-measures, plain ``float`` in ``[0, 1]`` (unitless; 1 is identical
      token sequences), the means taken over the pairs, the lists in the order of the pairs.
    - What is counted (``rouge_score`` 0.1.2): text is lower-cased and cut into runs of letters and digits
      (punctuation dropped); ROUGE-N is the F-measure of the clipped n-gram overlap, ROUGE-L that of the longest
      common subsequence of the whole texts (not the per-sentence "rougeLsum"). F = 2PR / (P + R), 0 when nothing
      overlaps.
    - The Porter stemmer is **on** (``use_stemmer=True``), as in See et al. 2017 and most summarisation papers, so
      "rises" and "rise" match: a summary is not punished for choosing a different inflection of the source's
      words. The stemmer only touches tokens longer than three characters.
    - Errors: a one-line :class:`lmkit.checks.CheckError` (a ``ValueError``) for empty lists, a blank or non-string
      item, or lists of different lengths.
    """
    from rouge_score import rouge_scorer

    predictions = checks.texts("predictions", predictions, what="summaries",
                               fix="pass one summary per reference, e.g. [lead_n(source)]")
    references = checks.texts("references", references, what="reference summaries",
                              fix="pass one written reference per prediction")
    if len(predictions) != len(references):
        checks.fail(f"got {len(predictions)} predictions and {len(references)} references: pass one reference for "
                    "each prediction, in the same order")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    per_item = {kind: [] for kind in ROUGE_TYPES}
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)  # rouge_score's order: (target, prediction)
        for kind in ROUGE_TYPES:
            per_item[kind].append(float(scores[kind].fmeasure))
    means = {kind: sum(values) / len(values) for kind, values in per_item.items()}
    return {**means, "n": len(predictions), "per_item": per_item}
