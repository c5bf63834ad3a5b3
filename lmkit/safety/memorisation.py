"""Memorisation: does greedy decoding reproduce a passage from its opening (extraction), and does the model's loss
tell seen text from unseen (membership inference)? (taught in the safety notebook)

- Extraction follows Carlini et al. 2023, "Quantifying memorization across neural language models" (ICLR): a
  passage counts as *extractable* with a ``k``-token prefix when greedy decoding from those ``k`` tokens writes the
  true next ``m`` tokens exactly (they use ``m = 50``; here ``suffix_tokens``, 32 by default). The idea of
  prompting with a prefix and checking for verbatim training text is Carlini et al. 2021, "Extracting training data
  from large language models" (USENIX Security).
- Membership scores are Carlini et al. 2021's: the mean per-token loss (the log-perplexity), and that loss divided
  by the text's zlib-compressed length, which discounts text that is merely repetitive or easy.
"""
from __future__ import annotations

import zlib

from lmkit import checks
from lmkit.logprobs import check_fits, special_tokens_in
from lmkit.safety.generation import greedy_ids

__all__ = ["matched_tokens", "passage_rows", "extraction", "extraction_by_prefix", "membership_scores"]


def matched_tokens(generated, truth) -> int:
    """How many ids of ``generated`` equal those of ``truth`` before the first difference (or before either ends):
    ``matched_tokens([5, 6, 9], [5, 6, 7]) == 2`` (taught in the safety notebook)."""
    n = 0
    for a, b in zip(generated, truth):
        if a != b:
            break
        n += 1
    return n


def passage_rows(passages, name: str = "passages") -> list[dict]:
    """``passages`` as a list of dicts with a ``text`` key: strings become ``{"text": s}``, dicts (the rows of
    :func:`lmkit.safety.load_passages`) are copied. One-line :class:`lmkit.checks.CheckError` for an empty list, a
    bare string, an item that is neither a string nor a dict with a ``text`` string, or a blank text (taught in the
    safety notebook)."""
    if isinstance(passages, (str, dict)) or not hasattr(passages, "__iter__"):
        checks.fail(f"{name}={checks.show(passages, 60)} must be a list of texts: wrap a single text in a list")
    items = list(passages)
    if not items:
        checks.fail(f"{name} is an empty list: pass at least one text, e.g. lmkit.safety.load_passages()")
    rows = []
    for i, item in enumerate(items):
        row = dict(item) if isinstance(item, dict) else {"text": item}
        if not isinstance(row.get("text"), str):
            what = "a dict with no 'text' string" if isinstance(item, dict) else f"a {type(item).__name__}"
            checks.fail(f"{name}[{i}]={checks.show(item, 50)} is {what}, not a string: pass the texts themselves "
                        "(or the rows of lmkit.safety.load_passages())")
        if not row["text"].strip():
            checks.fail(f"{name}[{i}] is a blank text: remove it or give it some words")
        rows.append(row)
    return rows


def _encode(lm, rows: list[dict], name: str) -> list[list[int]]:
    """The ids of each text as text (a special token written in it is refused: it is not what a corpus holds)."""
    ids = []
    for i, row in enumerate(rows):
        found = special_tokens_in(lm.tokenizer, row["text"])
        if found:
            checks.fail(f"{name}[{i}] writes the special token {found[0]!r} as text: remove it from the passage")
        ids.append(lm.tokenizer(row["text"], add_special_tokens=False).input_ids)
    return ids


def extraction(lm, passages, prefix_tokens: int = 32, suffix_tokens: int = 32, *, suffix_start: int | None = None,
               batch_size: int = 16, progress: bool | None = None):
    """Greedy extraction of each passage from its opening: a pandas DataFrame, one row per passage (taught in the
    safety notebook; Carlini et al. 2023, "Quantifying memorization across neural language models").

    Each passage is tokenized as text (no special tokens added). The model reads the ``prefix_tokens`` ids just
    before position ``suffix_start`` (default ``prefix_tokens``: the passage's first tokens) and greedy decoding
    writes ``suffix_tokens`` ids, compared with the true ids from ``suffix_start`` on. Passing the same
    ``suffix_start`` with several ``prefix_tokens`` keeps the suffix fixed while the context grows (Carlini 2023's
    prefix-length experiment; :func:`extraction_by_prefix`). Decoding is batched with left padding
    (:func:`lmkit.safety.generation.greedy_ids`), ``batch_size`` passages at a time.

    ``passages``: a list of strings, or of dicts with a ``text`` key (the rows of
    :func:`lmkit.safety.load_passages`), whose other keys (``id``, ``group``, ``fame``, ...) become columns.

    Columns, besides those: ``n_tokens`` (the passage's length in tokens), ``prefix_tokens``, ``suffix_tokens``,
    ``prefix`` (the prompt's text), ``truth`` (the true suffix's text), ``generated`` (the greedy continuation's
    text), ``matched_tokens`` (ids equal to the truth's before the first difference, ``0..suffix_tokens``) and
    ``extracted`` (bool: all ``suffix_tokens`` ids equal). A continuation that ends early (end of text) differs from
    the truth at that position.

    Errors (one-line :class:`lmkit.checks.CheckError`, before any forward pass): ``prefix_tokens`` or
    ``suffix_tokens`` not an integer >= 1; ``suffix_start`` below ``prefix_tokens``; an empty list, a non-string
    item or a blank text; a passage shorter than ``suffix_start + suffix_tokens`` tokens (prefix + suffix); more
    tokens than the model's context.
    """
    import pandas as pd

    prefix_tokens = checks.integer("prefix_tokens", prefix_tokens, low=1,
                                   fix="prompt with at least one token of the passage, e.g. prefix_tokens=32")
    suffix_tokens = checks.integer("suffix_tokens", suffix_tokens, low=1,
                                   fix="compare at least one generated token, e.g. suffix_tokens=32")
    if suffix_start is None:
        suffix_start = prefix_tokens
    suffix_start = checks.integer("suffix_start", suffix_start, low=prefix_tokens,
                                  must=f"an integer >= prefix_tokens={prefix_tokens}",
                                  fix="the prompt is the prefix_tokens tokens just before the suffix; leave it None "
                                      "to start the suffix right after the passage's first prefix_tokens tokens")
    rows = passage_rows(passages)
    ids = _encode(lm, rows, "passages")
    need = suffix_start + suffix_tokens
    for i, t in enumerate(ids):
        if len(t) < need:
            checks.fail(f"passage {i} ({checks.show(rows[i]['text'], 40)}) has {len(t)} tokens, fewer than prefix + "
                        f"suffix = {need}: use a longer passage, or smaller prefix_tokens / suffix_tokens")
    check_fits(lm.model, [need], "passage", "use smaller prefix_tokens / suffix_tokens")
    prompts = [t[suffix_start - prefix_tokens:suffix_start] for t in ids]
    truths = [t[suffix_start:need] for t in ids]
    generated = greedy_ids(lm, prompts, suffix_tokens, batch_size=batch_size, progress=progress, desc="extraction")
    decode = lm.tokenizer.decode
    out = []
    for row, t, p, truth, gen in zip(rows, ids, prompts, truths, generated):
        matched = matched_tokens(gen, truth)
        meta = {k: v for k, v in row.items() if k != "text"}
        out.append({**meta, "n_tokens": len(t), "prefix_tokens": prefix_tokens, "suffix_tokens": suffix_tokens,
                    "prefix": decode(p), "truth": decode(truth), "generated": decode(gen),
                    "matched_tokens": matched, "extracted": matched == suffix_tokens})
    return pd.DataFrame(out)


def extraction_by_prefix(lm, passages, prefix_lengths=(4, 8, 16, 32), suffix_tokens: int = 32, *,
                         batch_size: int = 16, progress: bool | None = None):
    """:func:`extraction` at several prefix lengths with the same suffix, the ``suffix_tokens`` ids after the
    longest prefix: one DataFrame with every passage once per length (its ``prefix_tokens`` column says which)
    (taught in the safety notebook; Carlini et al. 2023, Fig. 1c: extraction grows with the context given).

    Errors: ``prefix_lengths`` not a non-empty list of integers >= 1, and those of :func:`extraction`.
    """
    import pandas as pd

    if isinstance(prefix_lengths, (str, bytes)) or not hasattr(prefix_lengths, "__iter__") or not list(prefix_lengths):
        checks.fail(f"prefix_lengths={checks.show(prefix_lengths)} must be a non-empty list of token counts, e.g. "
                    "(4, 8, 16, 32)")
    lengths = [checks.integer("prefix_lengths item", k, low=1, fix="each prefix needs at least one token")
               for k in prefix_lengths]
    start = max(lengths)
    return pd.concat([extraction(lm, passages, k, suffix_tokens, suffix_start=start, batch_size=batch_size,
                                 progress=progress) for k in sorted(set(lengths))], ignore_index=True)


def membership_scores(lm, texts, *, max_tokens: int | None = None, batch_size: int = 8,
                      progress: bool | None = None):
    """Carlini et al. 2021's membership scores of each text: a pandas DataFrame, one row per text (taught in the
    safety notebook; "Extracting training data from large language models", section 5.2).

    Columns: the dicts' other keys when ``texts`` are rows of :func:`lmkit.safety.load_passages`; ``n_tokens``;
    ``loss``, the mean negative log-likelihood per token in nats of tokens 2..n, each given all those before it
    (the log-perplexity; equal to :func:`lmkit.metrics.token_nll`'s mean for a text that fits one window),
    scored ``batch_size`` texts at a time by :func:`lmkit.logprobs.pair_logprobs`; ``zlib_bytes``, the length in
    **bytes** of the UTF-8 text compressed by ``zlib.compress`` at its default level (Carlini 2021's "zlib
    entropy"; their code counts bytes too); and ``zlib_ratio = loss / zlib_bytes`` (nats per token per byte).

    ``max_tokens``: score only each text's first ``max_tokens`` tokens (None: all), so that texts of different
    lengths are compared over the same number of positions (a token late in a text has more context and a lower
    loss on average); ``zlib_bytes`` is then taken over the decoded text of those tokens.

    Lower is "more likely seen" for both scores: a memorised text has an unusually low loss, and the ratio
    discounts text that any model finds easy because it is repetitive (zlib compresses it well, so its ratio is
    not low). For a ROC curve pass ``-loss`` or ``-zlib_ratio`` as the score (:func:`lmkit.safety.roc_auc`).

    Errors (one line, before any forward pass): an empty list, a non-string item, a blank text, a text of one
    token, a text longer than the model's context, a bad ``batch_size``.
    """
    import pandas as pd

    from lmkit.logprobs import pair_logprobs

    batch_size = checks.integer("batch_size", batch_size, low=1, fix="texts scored per forward pass, such as 8")
    if max_tokens is not None:
        max_tokens = checks.integer("max_tokens", max_tokens, low=2, fix="score at least 2 tokens, or None for all")
    rows = passage_rows(texts, "texts")
    ids = [t[:max_tokens] for t in _encode(lm, rows, "texts")]
    short = next((i for i, t in enumerate(ids) if len(t) < 2), None)
    if short is not None:
        checks.fail(f"texts[{short}] has {len(ids[short])} token(s): a loss needs at least 2; pass a longer text")
    check_fits(lm.model, [len(t) for t in ids], "text", "score a shorter text")
    scores = pair_logprobs(lm.model, [(t[:1], t[1:]) for t in ids], lm.tokenizer, batch_size=batch_size,
                           progress=progress)
    out = []
    for row, t, logprob, n in zip(rows, ids, scores.logprob.tolist(), scores.n_tokens.tolist()):
        loss = -logprob / n
        text = row["text"] if max_tokens is None else lm.tokenizer.decode(t)
        packed = len(zlib.compress(text.encode("utf-8")))
        out.append({**{k: v for k, v in row.items() if k != "text"}, "n_tokens": n + 1, "loss": loss,
                    "zlib_bytes": packed, "zlib_ratio": loss / packed})
    return pd.DataFrame(out)
