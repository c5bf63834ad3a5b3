"""Exercise checkers of notebook 06 (generation)."""
from __future__ import annotations

from .registry import _close, exercise


def _logits(lm, ids):
    """The raw next-token logits at every position of ``ids`` [1, T], as float32 [T, vocab]."""
    import torch

    with torch.inference_mode():
        return lm.model(ids).logits[0].float()


@exercise("06.1", hint="start from a tensor full of -inf, copy in the k=5 largest logits of z (torch.topk gives "
                       "their values and indices), then softmax; answer with the whole [vocab] probability tensor.")
def _top_k(answer, *, lm, prompt, k=5):
    import torch
    from transformers import TopKLogitsWarper

    z = _logits(lm, lm.encode(prompt))[-1:]
    expected = torch.softmax(TopKLogitsWarper(top_k=k)(None, z.clone()), -1)[0]
    answer = torch.as_tensor(answer, dtype=torch.float32).flatten()
    return answer.shape == expected.shape and torch.allclose(answer, expected, atol=1e-5)


@exercise("06.2", hint="keep a growing tensor of ids; at each step run lm.model on ALL of it (no cache), take the "
                       "argmax of the logits at the last position, append it, and stop at EOS or after "
                       "max_new_tokens; answer with the list of new ids (ints), without the prompt.")
def _greedy(answer, *, lm, prompt, max_new_tokens):
    from lmkit import generate as G

    return [int(i) for i in answer] == G.reference(lm, prompt, max_new_tokens=max_new_tokens)


def nucleus_sizes(probs, top_p: float) -> list[set[int]]:
    """For each row of ``probs`` [n, vocab], the nucleus sizes that float noise allows (each a set of 1 or 2 ints).

    One count comes from transformers' ``TopPLogitsWarper`` (what ``model.generate`` keeps), one from sorting the
    probabilities in decreasing order in float64 and counting until the mass reaches ``top_p``; they differ only
    when a cumulative sum sits within rounding of ``top_p``.
    """
    import torch
    from transformers import TopPLogitsWarper

    kept = (TopPLogitsWarper(top_p=top_p)(None, probs.log().float()) > float("-inf")).sum(-1).tolist()
    csum = probs.double().sort(-1, descending=True).values.cumsum(-1)
    by_sort = (torch.searchsorted(csum, torch.full((len(probs), 1), float(top_p), dtype=torch.float64)) + 1)
    return [{int(a), int(b)} for a, b in zip(kept, by_sort.flatten().tolist())]


@exercise("06.3", hint="one forward pass over the prompt ids followed by the greedy ids of section 1 gives the "
                       "distribution of every step (position T0-1+t predicts step t); sort each softmax in "
                       "decreasing order, take the cumulative sum and count the tokens needed to reach top_p; "
                       "answer with a list of ints, one per step.")
def _nucleus(answer, *, lm, prompt, max_new_tokens, top_p):
    import torch

    from lmkit import generate as G

    prompt_ids = lm.encode(prompt)
    new = G.reference(lm, prompt, max_new_tokens=max_new_tokens)
    answer = [int(n) for n in answer]
    if len(answer) != len(new):
        return False
    full = torch.cat([prompt_ids, torch.tensor([new[:-1]], dtype=prompt_ids.dtype)], 1) if len(new) > 1 else prompt_ids
    probs = torch.softmax(_logits(lm, full)[prompt_ids.shape[1] - 1:], -1)
    return all(n in allowed for n, allowed in zip(answer, nucleus_sizes(probs, top_p)))


def temperature_at_half(z) -> float:
    """The temperature at which the most likely token of ``softmax(z / T)`` falls to probability 0.5.

    ``max softmax(z / T)`` decreases with ``T`` (its log-derivative is ``(E[z] - max z) / T**2 <= 0``), so a
    bisection in ``log T`` finds the crossing.
    """
    import math

    import torch

    z = torch.as_tensor(z, dtype=torch.float64).flatten()
    p_top = lambda t: torch.softmax(z / t, -1).max().item()  # noqa: E731
    lo, hi = math.log(1e-6), math.log(1e6)
    if not p_top(math.exp(lo)) >= 0.5 > p_top(math.exp(hi)):
        raise ValueError("the top token's probability does not cross 0.5 for T in [1e-6, 1e6]")
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_top(math.exp(mid)) >= 0.5 else (lo, mid)
    return math.exp(hi)


@exercise("06.4", hint="only softmax(z / T) depends on T, so no new forward pass is needed; the top token's "
                       "probability falls as T grows: bisect T between a value where it is above 0.5 and one "
                       "where it is below; answer with the temperature (a float).")
def _half_temperature(answer, *, lm, prompt):
    return _close(answer, temperature_at_half(_logits(lm, lm.encode(prompt))[-1]), rel=2e-3)


@exercise("06.5", hint="seed with torch.manual_seed right before the prefill; run lm.model once on the whole prompt "
                       "with past_key_values=DynamicCache(config=lm.model.config), then per step take the last "
                       "logits as float32, divide by the temperature, keep the top_k largest (the rest -inf), "
                       "softmax, draw with torch.multinomial from a [1, vocab] tensor, and run lm.model on that one "
                       "token with the same cache; stop at max_new_tokens or EOS; answer with the list of new ids.")
def _cached_sampling(answer, *, lm, prompt, seed, temperature, top_k, max_new_tokens):
    from lmkit import generate as G

    expected = G.reference(lm, prompt, do_sample=True, seed=seed, temperature=temperature, top_k=top_k,
                           max_new_tokens=max_new_tokens)
    return [int(i) for i in answer] == expected
