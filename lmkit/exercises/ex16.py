"""Exercise checkers of notebook 16 (evaluation)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("16.1", hint="Wilson (1927): with p = k/n and z = 1.96, centre = (p + z²/2n) / (1 + z²/n) and half-width = "
                       "z/(1 + z²/n) · sqrt(p(1-p)/n + z²/4n²); answer = (centre - half, centre + half).")
def _wilson(answer, *, k, n):
    from lmkit.evaluation import accuracy_interval

    lo, hi = answer
    want = accuracy_interval(k, n)
    return _close(lo, want[0], abs_=1e-4) and _close(hi, want[1], abs_=1e-4)


@exercise("16.2", hint="tokenize the context alone and context + choice together; the choice's ids are what follows "
                       "the context's ids. Run lm.model on the whole ids once, log_softmax the logits, and add up "
                       "the entries at positions t-1 for each choice token t.")
def _choice_loglikelihood(answer, *, lm, context, choice):
    from lmkit.evaluation import loglikelihoods

    ((want, _, _),) = loglikelihoods(lm, [(context, choice)])
    return _close(answer, want, rel=1e-3, abs_=1e-3)


@exercise("16.3", hint="for each item divide every choice's log-likelihood by its number of tokens "
                       "(result['n_tokens']), take the argmax, compare with result['answer'] and average.")
def _acc_per_token(answer, *, result):
    import numpy as np

    hits = [int(np.argmax(np.array(ll) / np.array(n))) == a
            for ll, n, a in zip(result["loglikelihoods"], result["n_tokens"], result["answer"])]
    return _close(answer, sum(hits) / len(hits), abs_=1e-9)
