"""An n-gram language model over token ids, with interpolated modified Kneser-Ney smoothing (notebook 01).

The model works on the *same* token ids as the neural model (its tokenizer's ids), over the whole vocabulary of
``vocab_size`` ids, so its perplexities compare directly with :func:`lmkit.metrics.perplexity`.

Smoothing: interpolated Kneser-Ney (Kneser & Ney 1995), with the three discounts per order of Chen & Goodman (1998,
"modified" KN). With :math:`c` the count of the n-gram ``h w`` (raw counts at the top order, *continuation* counts
``N1+(• h w)`` at lower orders) and :math:`h'` the history without its first token::

    P(w | h) = (max(c(h w) - D(c), 0) + gamma(h) * P(w | h')) / c(h •)
    gamma(h) = D1 * N1(h •) + D2 * N2(h •) + D3+ * N3+(h •)

and at the bottom the unigram interpolates with the uniform 1/V. A history never seen in training backs off to
``P(w | h')`` entirely. Every id in the vocabulary gets a positive probability and, for every history, the
probabilities sum to 1 over the vocabulary: a real distribution, so perplexity means what it says (stupid backoff,
by contrast, gives scores that do not sum to 1). Pass ``discount=d`` for plain interpolated KN with one discount.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lmkit import checks
from lmkit.env import show_progress

MIN_DISCOUNT = 0.05
"""Estimated discounts are clipped into ``[MIN_DISCOUNT, j - MIN_DISCOUNT]``: every id keeps a positive probability
and no seen n-gram loses all of its count."""


@dataclass
class _Order:
    """The tables of one order k: sorted k-gram keys and their counts; per history: total, gamma numerator."""

    keys: np.ndarray          # int64 [G], sorted, key = sum id_j * V**(k-1-j)
    counts: np.ndarray        # int64 [G]: raw (top order) or continuation counts
    discounts: np.ndarray     # float64 [4]: discount for count 0 (unused), 1, 2, 3+
    ctx_keys: np.ndarray      # int64 [H], sorted: the distinct histories (k-1 first ids)
    ctx_start: np.ndarray     # int64 [H + 1]: k-grams of history i are keys[ctx_start[i]:ctx_start[i+1]]
    ctx_total: np.ndarray     # float64 [H]: c(h •)
    ctx_gamma: np.ndarray     # float64 [H]: D1 N1(h •) + D2 N2(h •) + D3+ N3+(h •)

    def discount(self, counts: np.ndarray) -> np.ndarray:
        return self.discounts[np.minimum(counts, 3)]


def _as_sequences(ids) -> list[np.ndarray]:
    """One sequence (1-D ids) or a list of sequences, as a list of int64 arrays."""
    if hasattr(ids, "detach"):  # a torch tensor
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, np.ndarray) or (len(ids) > 0 and np.isscalar(ids[0])):
        ids = [ids]
    seqs = [np.asarray(s.detach().cpu().numpy() if hasattr(s, "detach") else s, dtype=np.int64).ravel()
            for s in ids]
    return seqs


def ngram_keys(ids: np.ndarray, k: int, vocab_size: int) -> np.ndarray:
    """The key ``sum id_j * V**(k-1-j)`` of every k-gram of ``ids``, in order (notebook 01)."""
    k = checks.integer("k", k, low=1, fix="the n-gram order")
    vocab_size = checks.integer("vocab_size", vocab_size, low=1, fix="the tokenizer's size, len(tokenizer)")
    if len(ids) < k:
        return np.empty(0, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(ids, k)
    powers = vocab_size ** np.arange(k - 1, -1, -1, dtype=np.int64)
    return windows @ powers


def count_of_counts_discounts(counts: np.ndarray) -> np.ndarray:
    """Chen & Goodman's modified-KN discounts ``[0, D1, D2, D3+]`` from counts of counts n1..n4 (notebook 01).

    ``Y = n1 / (n1 + 2 n2)``, ``Dj = j - (j + 1) Y n_{j+1} / n_j``; a term that cannot be estimated (tiny corpus)
    (tiny corpus: n_j or n_{j+1} is 0) falls back to ``Y``; each is clipped into ``[MIN_DISCOUNT, j - MIN_DISCOUNT]``.
    """
    n = [int(np.count_nonzero(counts == j)) for j in range(5)]
    y = n[1] / (n[1] + 2 * n[2]) if n[1] + 2 * n[2] > 0 else 0.5
    out = np.zeros(4)
    for j in (1, 2, 3):
        d = j - (j + 1) * y * n[j + 1] / n[j] if n[j] > 0 and n[j + 1] > 0 else y
        out[j] = min(max(d, MIN_DISCOUNT), j - MIN_DISCOUNT)
    return out


class NGramLM:
    """An order-``order`` n-gram LM over ids ``0..vocab_size-1`` with interpolated (modified) Kneser-Ney (notebook 01).

    ``NGramLM(3, vocab_size=len(tokenizer)).fit(ids)``; then :meth:`probs` (the next-id distribution after a history),
    :meth:`token_nll` and :meth:`perplexity` (same definition as :func:`lmkit.metrics.perplexity`) and
    :meth:`sample`. Everything is vectorised with numpy: fitting 1.5 M tokens takes seconds.
    """

    def __init__(self, order: int, vocab_size: int, discount: float | None = None):
        order = checks.integer("order", order, low=1, fix="use 1 (unigram), 2 (bigram), ...")
        vocab_size = checks.integer("vocab_size", vocab_size, low=2, fix="pass the tokenizer's size, len(tokenizer)")
        top = int(63 * math.log(2) / math.log(vocab_size) - 1e-9)
        checks.integer("order", order, high=top, fix=f"n-gram keys of vocab_size={vocab_size} ids must fit in 64 bits, "
                                                     f"so use order <= {top}")
        if discount is not None:
            discount = checks.real("discount", discount, low=0, high=1, low_open=True,
                                   fix="or None to estimate modified-KN discounts")
        self.order, self.vocab_size, self.fixed_discount = order, vocab_size, discount
        self.orders: dict[int, _Order] = {}
        self.unigram: np.ndarray | None = None
        self.n_train_tokens = 0

    def __repr__(self) -> str:
        state = f"{self.n_train_tokens:,} training tokens" if self.unigram is not None else "not fitted"
        kind = "modified KN" if self.fixed_discount is None else f"KN, D={self.fixed_discount}"
        return f"NGramLM(order={self.order}, vocab_size={self.vocab_size:,}, {kind}, {state})"

    # ------------------------------------------------------------------------------------------------- fitting
    def fit(self, ids) -> "NGramLM":
        """Count the n-grams of ``ids`` (one 1-D sequence, or a list of them: no n-gram spans two) (notebook 01)."""
        seqs = _as_sequences(ids)
        for s in seqs:
            if s.size and (s.min() < 0 or s.max() >= self.vocab_size):
                bad = s[(s < 0) | (s >= self.vocab_size)][0]
                checks.fail(f"token id {bad} is outside the vocabulary 0..{self.vocab_size - 1}: "
                        "fit with the same vocab_size as the tokenizer")
        self.n_train_tokens = int(sum(s.size for s in seqs))
        if self.n_train_tokens == 0:
            checks.fail("fit() got no tokens: pass a non-empty sequence of token ids")
        V = self.vocab_size
        # Top order: raw counts. Lower orders: continuation counts N1+(• g) = distinct left extensions of g.
        keys, counts = np.unique(np.concatenate([ngram_keys(s, self.order, V) for s in seqs]), return_counts=True)
        self.orders = {}
        for k in range(self.order, 0, -1):
            self.orders[k] = self._tables(k, keys, counts.astype(np.int64))
            if k > 1:  # the (k-1)-gram suffix of each distinct k-gram, counted once per distinct k-gram
                keys, counts = np.unique(keys % V ** (k - 1), return_counts=True)
        o1 = self.orders[1]
        dense = np.zeros(V)
        dense[o1.keys] = np.maximum(o1.counts - o1.discount(o1.counts), 0)
        self.unigram = (dense + o1.ctx_gamma[0] / V) / o1.ctx_total[0]
        return self

    def _tables(self, k: int, keys: np.ndarray, counts: np.ndarray) -> _Order:
        if self.fixed_discount is None:
            discounts = count_of_counts_discounts(counts)
        else:
            discounts = np.array([0.0] + [min(self.fixed_discount, j) for j in (1, 2, 3)])
        ctx = keys // self.vocab_size
        ctx_keys, start = np.unique(ctx, return_index=True)  # keys sorted, so each history is a contiguous run
        bounds = np.append(start, len(keys))
        disc = discounts[np.minimum(counts, 3)]
        total = np.add.reduceat(counts.astype(np.float64), start)
        gamma = np.add.reduceat(disc, start)
        return _Order(keys, counts, discounts, ctx_keys, bounds, total, gamma)

    def _check_fitted(self):
        if self.unigram is None:
            checks.fail("this NGramLM is not fitted: call .fit(train_ids) first")

    # ------------------------------------------------------------------------------------------------- probabilities
    def probs(self, history=()) -> np.ndarray:
        """``P(w | history)`` for every id w, a float64 array of ``vocab_size`` summing to 1 (notebook 01).

        Only the last ``order - 1`` ids of ``history`` matter.
        """
        self._check_fitted()
        h = _as_sequences(history)[0] if len(history) else np.empty(0, dtype=np.int64)
        h = h[len(h) - min(len(h), self.order - 1):]
        p = self.unigram.copy()
        for k in range(2, len(h) + 2):
            o = self.orders[k]
            ctx = int(ngram_keys(h[len(h) - (k - 1):], k - 1, self.vocab_size)[0])
            i = np.searchsorted(o.ctx_keys, ctx)
            if i == len(o.ctx_keys) or o.ctx_keys[i] != ctx:
                continue  # unseen history: P(w | h) = P(w | h')
            lo, hi = o.ctx_start[i], o.ctx_start[i + 1]
            c = o.counts[lo:hi]
            p *= o.ctx_gamma[i]
            p[o.keys[lo:hi] % self.vocab_size] += np.maximum(c - o.discount(c), 0)
            p /= o.ctx_total[i]
        return p

    def token_probs(self, ids) -> np.ndarray:
        """``P(ids[i] | ids[:i])`` for i = 1..n-1 (the first id has no history), vectorised (notebook 01)."""
        self._check_fitted()
        x = _as_sequences(ids)[0]
        if len(x) < 2:
            raise ValueError(f"the text has {len(x)} token(s): scoring needs at least 2; pass a longer text")
        if x.min() < 0 or x.max() >= self.vocab_size:
            raise ValueError(f"token ids must be in 0..{self.vocab_size - 1}: encode with the model's tokenizer")
        V = self.vocab_size
        p = self.unigram[x[1:]]
        for k in range(2, self.order + 1):
            if len(x) < k:
                break
            o = self.orders[k]
            grams = ngram_keys(x, k, V)          # grams[j] ends at target position j + k - 1 -> p[j + k - 2]
            ctx = grams // V
            i = np.minimum(np.searchsorted(o.ctx_keys, ctx), len(o.ctx_keys) - 1)
            seen = o.ctx_keys[i] == ctx
            g = np.minimum(np.searchsorted(o.keys, grams), len(o.keys) - 1)
            c = np.where(o.keys[g] == grams, o.counts[g], 0)
            numer = np.maximum(c - o.discount(c), 0) * (c > 0)
            lower = p[k - 2:]
            p[k - 2:] = np.where(seen, (numer + o.ctx_gamma[i] * lower) / o.ctx_total[i], lower)
        return p

    def token_nll(self, ids) -> np.ndarray:
        """Negative log-likelihood (nats) of ids 1..n-1, as :func:`lmkit.metrics.token_nll` (notebook 01)."""
        return -np.log(self.token_probs(ids))

    def perplexity(self, ids) -> float:
        """``exp(mean NLL)`` over ids 1..n-1: the definition of :func:`lmkit.metrics.perplexity` (notebook 01)."""
        return float(np.exp(self.token_nll(ids).mean()))

    # ------------------------------------------------------------------------------------------------- sampling
    def sample(self, n_tokens: int, prompt=(), *, temperature: float = 1.0, seed: int | None = 0) -> list[int]:
        """``n_tokens`` ids drawn one at a time from :meth:`probs`, after ``prompt`` (ids) (notebook 01).

        ``temperature`` rescales as for a neural model: ``p ** (1 / T)``, renormalised. Returns only the new ids.
        """
        self._check_fitted()
        n_tokens = checks.integer("n_tokens", n_tokens, low=0, fix="the number of ids to draw, such as 20")
        temperature = checks.real("temperature", temperature, low=0, low_open=True,
                                  fix="use a small value such as 0.1 for near-greedy")
        if seed is not None:
            seed = checks.seed("seed", seed, fix="pass e.g. seed=0, or None for a fresh draw each call")
        rng = np.random.default_rng(seed)
        history = list(_as_sequences(prompt)[0]) if len(prompt) else []
        out = []
        for _ in range(n_tokens):
            p = self.probs(history[-(self.order - 1):] if self.order > 1 else ())
            if temperature != 1.0:
                p = np.exp((np.log(p) - np.log(p).max()) / temperature)
            cdf = np.cumsum(p)
            nxt = int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), self.vocab_size - 1))
            out.append(nxt)
            history.append(nxt)
        return out

    # ------------------------------------------------------------------------------------------------- inspection
    def count(self, gram) -> int:
        """The count stored for ``gram`` (raw at the top order, continuation below) (notebook 01)."""
        self._check_fitted()
        g = _as_sequences(gram)[0]
        if not 1 <= len(g) <= self.order:
            raise ValueError(f"gram has {len(g)} ids: pass between 1 and order={self.order}")
        o = self.orders[len(g)]
        key = int(ngram_keys(g, len(g), self.vocab_size)[0])
        i = np.searchsorted(o.keys, key)
        return int(o.counts[i]) if i < len(o.keys) and o.keys[i] == key else 0

    def _seen_grams(self, ids) -> np.ndarray:
        self._check_fitted()
        x = _as_sequences(ids)[0]
        grams = ngram_keys(x, self.order, self.vocab_size)
        if grams.size == 0:
            raise ValueError(f"the text has {len(x)} token(s): it needs at least order={self.order}")
        o = self.orders[self.order]
        i = np.minimum(np.searchsorted(o.keys, grams), len(o.keys) - 1)
        return o.keys[i] == grams

    def seen_fraction(self, ids) -> float:
        """Fraction of the order-n n-grams of ``ids`` that occur in training (notebook 01)."""
        return float(np.mean(self._seen_grams(ids)))

    def covered(self, ids) -> np.ndarray:
        """For ids 1..n-1 (aligned with :meth:`token_nll`): did the full n-gram ending there occur in training?

        The first ``order - 2`` ids have a shorter history and count as not covered (notebook 01).
        """
        return np.concatenate([np.zeros(max(self.order - 2, 0), bool), self._seen_grams(ids)])

def neural_nll_with_context(lm, ids, context: int, *, batch_size: int = 64, progress: bool | None = None):
    """NLL (nats) of ids 1..n-1 under the neural ``lm``, each token seeing only its last ``context`` ids (notebook 01).

    The neural model on an n-gram's diet: with ``context = n - 1`` it sees exactly what an n-gram sees. Equal to
    ``lmkit.metrics.token_nll(lm, ids, window=context + 1, stride=1)``, but batched (one row per token).
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    context = checks.integer("context", context, low=1, fix="each token needs at least 1 token of context")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="rows per forward pass, such as 64")
    x = torch.as_tensor(_as_sequences(ids)[0]).to(lm.device)
    n = x.numel()
    if n < 2:
        raise ValueError(f"the text has {n} token(s): scoring needs at least 2; pass a longer text")
    nll = torch.empty(n - 1, dtype=torch.float32)
    head = min(context, n - 1)  # tokens 1..head see all of their (short) history: one pass
    with torch.inference_mode():
        logits = lm.model(x[: head].unsqueeze(0)).logits[0].float()
        nll[: head] = F.cross_entropy(logits, x[1: head + 1], reduction="none").cpu()
        rows = torch.arange(head + 1, n)  # token i is predicted from x[i - context: i]
        chunks = range(0, len(rows), batch_size)
        quiet = not show_progress(progress) or len(chunks) < 4
        for s in tqdm(chunks, desc=f"neural, {context}-token context", disable=quiet, leave=False):
            idx = rows[s: s + batch_size]
            batch = x[idx.unsqueeze(1) + torch.arange(-context, 0)]
            last = lm.model(batch, logits_to_keep=1).logits[:, -1].float()
            nll[idx - 1] = F.cross_entropy(last, x[idx], reduction="none").cpu()
    return nll
