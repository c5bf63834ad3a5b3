"""Exercise checkers of notebook 03 (a tokenizer from scratch)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("03.1", hint="answer with a tuple of two ints: regex.findall(GPT2_PATTERN, text) gives the chunks; count "
                       "each distinct chunk once, weighted by its frequency (collections.Counter), and add up the "
                       "pairs zip(b, b[1:]) of its UTF-8 bytes b. The most frequent pair wins (any one of a tie).")
def _first_merge(answer, *, text):
    from collections import Counter

    import regex

    from lmkit.bpe import GPT2_SPLIT, count_pairs

    counts: dict = {}
    for chunk, f in Counter(regex.findall(GPT2_SPLIT, text)).items():
        count_pairs(list(chunk.encode("utf-8")), counts, f)
    a, b = answer
    return counts.get((int(a), int(b)), -1) == max(counts.values())


@exercise("03.2", hint="answer with a pair of ints (ours, smollm2): len(tok.encode(s)) and "
                       "len(smol.encode(s, add_special_tokens=False)).")
def _emoji_tokens(answer, *, tok, lm, text):
    ours, theirs = answer
    return (int(ours) == len(tok.encode(text))
            and int(theirs) == len(lm.tokenizer.encode(text, add_special_tokens=False)))


@exercise("03.3", hint="answer with a float: len(bpe.BPE(tok.merges[:k]).encode(text)) / len(text), tokens per "
                       "character of the whole text.")
def _truncated(answer, *, tok, k, text):
    from lmkit.bpe import BPE

    return _close(answer, len(BPE(tok.merges[:k], pattern=tok.pattern).encode(text)) / len(text), rel=1e-9)
