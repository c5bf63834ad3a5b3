"""Exercise checkers of notebook 03 (a tokenizer from scratch): each recomputes the answer from the context it is
given (the tokenizer, the texts, the training lines), never from a stored value."""
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


@exercise("03.3", hint="answer with a pair (float, bool): len(bpe.BPE(tok.merges[:k]).encode(text)) / len(text), "
                       "tokens per character of the whole text; then whether bpe.BPE.train(train_lines, 256 + k).merges "
                       "== tok.merges[:k] (training is greedy: are the first merges of a bigger table the whole table "
                       "of a smaller one?).")
def _truncated(answer, *, tok, k, text, train):
    from lmkit.bpe import BPE

    per_char, same = answer
    if not isinstance(same, bool):
        return False
    expected = len(BPE(tok.merges[:k], pattern=tok.pattern).encode(text)) / len(text)
    return _close(per_char, expected, rel=1e-9) and same == (BPE.train(train, 256 + k).merges == tok.merges[:k])


def _longest_digit_token(tok, text) -> int:
    """The most digits that any one token of ``tok.encode(text)`` holds."""
    return max((sum(ch.isdigit() for ch in tok.decode([i])) for i in tok.encode(text)), default=0)


@exercise("03.4", hint="answer with a pair of ints (gpt2, gpt4): train bpe.BPE.train(ledger, 1024) with "
                       "pattern=bpe.GPT2_SPLIT and with pattern=bpe.GPT4_SPLIT, encode the text with each, and count "
                       "the digits in each token (sum(ch.isdigit() for ch in tok.decode([i]))); give the largest "
                       "count for each tokenizer.")
def _digit_groups(answer, *, train, vocab_size, text):
    from lmkit.bpe import BPE, GPT2_SPLIT, GPT4_SPLIT

    gpt2, gpt4 = (int(a) for a in answer)
    return (gpt2 == _longest_digit_token(BPE.train(train, vocab_size, pattern=GPT2_SPLIT), text)
            and gpt4 == _longest_digit_token(BPE.train(train, vocab_size, pattern=GPT4_SPLIT), text))
