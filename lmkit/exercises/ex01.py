"""Exercise checkers of notebook 01 (language models)."""
from __future__ import annotations

from .registry import _close, exercise


def _seqs(train):
    import numpy as np

    if isinstance(train, np.ndarray) and train.ndim == 1:
        train = [train]
    return [np.asarray(s, dtype=np.int64).ravel() for s in train]


@exercise("01.1", hint="count the bigrams of each training work (no pair spans two works) and how often each token "
                       "starts one, c(h); then P(w | h) = (c(h w) + 1) / (c(h) + V) for each of the len(held) - 1 "
                       "pairs of held, and the perplexity is exp of the mean of -log P. Answer with one float.")
def _laplace_perplexity(answer, *, train, held, vocab_size):
    import numpy as np

    V = int(vocab_size)
    seqs = _seqs(train)
    pairs = np.sort(np.concatenate([s[:-1] * V + s[1:] for s in seqs]))
    c_h = np.bincount(np.concatenate([s[:-1] for s in seqs]), minlength=V)
    x = np.asarray(held, dtype=np.int64).ravel()
    keys = x[:-1] * V + x[1:]
    c_hw = np.searchsorted(pairs, keys, side="right") - np.searchsorted(pairs, keys, side="left")
    p = (c_hw + 1) / (c_h[x[:-1]] + V)
    return _close(answer, np.exp(-np.log(p).mean()))


@exercise("01.2", hint="answer with a dict {number of training works k: perplexity on held}, with k = 1 and "
                       "k = len(train_ids) among the keys; for each k fit NGramLM(4, vocab_size=V) on train_ids[:k] "
                       "and take .perplexity(held).")
def _data_size(answer, *, train, held, vocab_size):
    from lmkit.ngram import NGramLM

    seqs = _seqs(train)
    got = {int(k): float(v) for k, v in dict(answer).items()}
    if len(got) < 2 or 1 not in got or len(seqs) not in got or not all(1 <= k <= len(seqs) for k in got):
        return False
    return all(_close(v, NGramLM(4, vocab_size=int(vocab_size)).fit(seqs[:k]).perplexity(held))
               for k, v in got.items())


@exercise("01.3", hint="answer with a pair (entropy at T = 0.5, entropy at T = 1.5), in bits, of the 3-gram's "
                       "next-token distribution after prompt_ids, rescaled as sample() does: p ** (1 / T), "
                       "renormalised to sum to 1; the entropy is -sum q log2 q.")
def _temperature_entropy(answer, *, model, prompt):
    import numpy as np

    log_p = np.log(model.probs(prompt))

    def entropy(t):
        q = np.exp((log_p - log_p.max()) / t)
        q /= q.sum()
        q = q[q > 0]
        return float(-(q * np.log2(q)).sum())

    low, high = answer
    return _close(low, entropy(0.5)) and _close(high, entropy(1.5))
