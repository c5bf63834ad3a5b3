"""Perplexity of a causal LM over text of any length, with a sliding window (notebook 01).

Definition used everywhere in lmkit: the exp of the mean negative log-likelihood of every token after the first,
each given all tokens before it (as far back as the window reaches), over the ids exactly as the tokenizer returns
them (no special tokens added). For a text that fits in one window this equals ``exp(model(ids, labels=ids).loss)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

DEFAULT_WINDOW = 1024


def token_nll(lm, text: str | torch.Tensor, *, window: int = DEFAULT_WINDOW, stride: int | None = None,
              progress: bool = True) -> torch.Tensor:
    """Negative log-likelihood (nats) of tokens 1..n-1 of ``text``, a float32 tensor of length n-1 (notebook 01).

    Windows of ``window`` tokens advance by ``stride`` (default ``window // 2``); each token is scored once, in the
    first window whose new part holds it, so it sees at least ``window - stride`` tokens of context when there are any.
    """
    ids = lm.encode(text)[0] if isinstance(text, str) else torch.as_tensor(text).flatten().to(lm.device)
    n = ids.numel()
    if n < 2:
        raise ValueError(f"text has {n} token(s): perplexity needs at least 2; pass a longer text")
    if window < 2:
        raise ValueError(f"window={window} is too small: use at least 2 (default {DEFAULT_WINDOW})")
    stride = stride or max(1, window // 2)
    if not 1 <= stride <= window:
        raise ValueError(f"stride={stride} must be between 1 and window={window}")
    nll = torch.empty(n - 1, dtype=torch.float32)
    scored = 1  # token 0 has no context and is never scored
    starts = range(0, max(n - window, 0) + stride, stride)
    with torch.inference_mode():
        for begin in tqdm(starts, desc="perplexity", disable=not progress or len(starts) < 4, leave=False):
            end = min(begin + window, n)
            if end <= scored:
                continue
            logits = lm.model(ids[begin:end].unsqueeze(0)).logits[0].float()
            # logits[j] predicts token begin+j+1; score tokens scored..end-1
            first = scored - begin - 1
            logp = F.log_softmax(logits[first:end - begin - 1], dim=-1)
            targets = ids[scored:end]
            nll[scored - 1:end - 1] = -logp.gather(1, targets.unsqueeze(1)).squeeze(1).cpu()
            scored = end
            if end == n:
                break
    return nll


def perplexity(lm, text: str | torch.Tensor, *, window: int = DEFAULT_WINDOW, stride: int | None = None,
               progress: bool = True) -> float:
    """Perplexity ``exp(mean NLL)`` of ``text`` under ``lm``, with a sliding window (notebook 01)."""
    return math.exp(token_nll(lm, text, window=window, stride=stride, progress=progress).mean().item())


HELDOUT_WINDOW = DEFAULT_WINDOW
"""The one window used for held-out perplexity: the whole of :func:`lmkit.data.heldout_text` fits in it."""


def heldout_perplexity(lm, *, max_chars: int | None = None, progress: bool = False) -> float:
    """Perplexity of ``lm`` on the project's one held-out text, in one fixed window (notebooks 00, 01, 05, 06, 08).

    The text is :func:`lmkit.data.heldout_text` (*Hamlet* from ``ACT I.``, 3,000 characters; ``max_chars`` takes a
    shorter prefix for quick runs), scored with ``window=HELDOUT_WINDOW``: figures from different notebooks are then
    figures for the same tokens. A different passage or window gives a different number (see ``heldout_text``).
    """
    from lmkit.data import heldout_text

    return perplexity(lm, heldout_text(max_chars), window=HELDOUT_WINDOW, progress=progress)
