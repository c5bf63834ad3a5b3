"""Perplexity of a causal LM over text of any length, with a sliding window (notebook 01); and the scores of a
classifier, precision, recall and F1 per class and averaged (notebook 15).

Definition used everywhere in lmkit: the exp of the mean negative log-likelihood of every token after the first,
each given all tokens before it (as far back as the window reaches), over the ids exactly as the tokenizer returns
them (no special tokens added). For a text that fits in one window this equals ``exp(model(ids, labels=ids).loss)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lmkit import checks
from lmkit.env import show_progress

__all__ = ["DEFAULT_WINDOW", "HELDOUT_WINDOW", "check_window", "window_starts", "token_nll", "perplexity",
           "heldout_perplexity", "classification_scores"]

DEFAULT_WINDOW = 1024


def check_window(window, stride) -> int:
    """Check a sliding window's arguments before any work; return the stride (``None``: ``window // 2``).

    ``window`` is an int >= 2 (one token of context and one to score); ``stride`` an int with
    ``1 <= stride <= window - 1``, so that the first token each window scores has at least one earlier token of
    the same window as context. Anything else is a one-line ValueError; nothing is silently replaced by a default.
    """
    window = checks.integer("window", window, low=2, must="an integer of at least 2 tokens",
                            fix=f"one of context and one to score (default {DEFAULT_WINDOW})")
    if stride is None:
        return max(1, window // 2)
    return checks.integer("stride", stride, low=1, high=window - 1, must=f"an integer from 1 to window-1={window - 1}",
                          fix="each window keeps at least one earlier token as context (or leave stride=None for "
                              "window//2)")


def _text_ids(lm, text) -> torch.Tensor:
    """The 1-D ids of ``text`` (a string, or ids as a 1-D or ``[1, T]`` tensor, NumPy array or list), checked against
    the vocabulary."""
    if isinstance(text, str):
        if not text:
            raise ValueError("text is empty: pass at least two tokens of text")
        return lm.encode(text)[0]
    if isinstance(text, (torch.Tensor, list, tuple)) or type(text).__name__ == "ndarray":
        ids = torch.as_tensor(text)
        if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.dim() > 2 or ids.dim() == 2 and ids.shape[0] != 1:
            raise ValueError(f"ids of dtype {ids.dtype} and shape {tuple(ids.shape)}: pass one sequence of integer "
                             "token ids, shape [T] or [1, T] (score several texts one by one)")
        ids = ids.flatten().to(lm.device)
        vocab = lm.model.get_input_embeddings().num_embeddings
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(f"token ids range from {int(ids.min())} to {int(ids.max())}: the model's vocabulary has "
                             f"ids 0..{vocab - 1}; encode the text with this model's tokenizer")
        return ids
    raise ValueError(f"text of type {type(text).__name__}: pass a string, or token ids as a tensor, array or list")


def window_starts(n: int, window: int, stride: int) -> range:
    """Start positions of the windows over ``n`` tokens: ``0, stride, 2·stride, ...`` until one reaches the end."""
    n = checks.integer("n", n, low=0, fix="the number of tokens")
    window = checks.integer("window", window, low=1, fix=f"the window length (default {DEFAULT_WINDOW})")
    stride = checks.integer("stride", stride, low=1, fix="the step between windows, as check_window returns")
    return range(0, max(n - window, 0) + stride, stride)


def token_nll(lm, text: str | torch.Tensor, *, window: int = DEFAULT_WINDOW, stride: int | None = None,
              progress: bool | None = None) -> torch.Tensor:
    """Negative log-likelihood (nats) of tokens 1..n-1 of ``text``, a float32 tensor of length n-1 (notebook 01).

    Windows of ``window`` tokens start every ``stride`` tokens (default ``window // 2``); each token after the first
    is scored exactly once, in the first window that holds it and has not scored it yet, so it sees at least
    ``window - stride`` (>= 1) tokens of context when the text has them. This is the sliding-window evaluation of
    Hugging Face's "Perplexity of fixed-length models" guide, with no token left out at window borders.

    Errors (one line, before any forward pass): ``window``/``stride`` out of range or not integers (see
    :func:`check_window`), an empty text, a text of fewer than 2 tokens, ids outside the vocabulary.
    """
    stride = check_window(window, stride)
    ids = _text_ids(lm, text)
    n = ids.numel()
    if n < 2:
        raise ValueError(f"text has {n} token(s): perplexity needs at least 2; pass a longer text")
    nll = torch.empty(n - 1, dtype=torch.float32)
    scored = 1  # token 0 has no context and is never scored
    starts = window_starts(n, window, stride)
    with torch.inference_mode():
        quiet = not show_progress(progress) or len(starts) < 4
        for begin in tqdm(starts, desc="perplexity", disable=quiet, leave=False):
            end = min(begin + window, n)
            if end <= scored:
                continue
            logits = lm.model(ids[begin:end].unsqueeze(0)).logits[0].float()
            # logits[j] predicts token begin+j+1; score tokens scored..end-1 (begin < scored: stride < window)
            logp = F.log_softmax(logits[scored - begin - 1:end - begin - 1], dim=-1)
            nll[scored - 1:end - 1] = -logp.gather(1, ids[scored:end].unsqueeze(1)).squeeze(1).cpu()
            scored = end
            if end == n:
                break
    return nll


def perplexity(lm, text: str | torch.Tensor, *, window: int = DEFAULT_WINDOW, stride: int | None = None,
               progress: bool | None = None) -> float:
    """Perplexity ``exp(mean NLL)`` of ``text`` under ``lm``, with a sliding window (notebook 01)."""
    return math.exp(token_nll(lm, text, window=window, stride=stride, progress=progress).mean().item())


HELDOUT_WINDOW = DEFAULT_WINDOW
"""The one window used for held-out perplexity: the whole of :func:`lmkit.data.heldout_text` fits in it."""


def heldout_perplexity(lm, *, max_chars: int | None = None, progress: bool | None = None) -> float:
    """Perplexity of ``lm`` on the project's one held-out text, in one fixed window (notebooks 00, 01, 08, 12, 14).

    The text is :func:`lmkit.data.heldout_text` (*Hamlet* from ``ACT I.``, 3,000 characters; ``max_chars`` takes a
    shorter prefix for quick runs), scored with ``window=HELDOUT_WINDOW``: figures from different notebooks are then
    figures for the same tokens. A different passage or window gives a different number (see ``heldout_text``).
    """
    from lmkit.data import heldout_text

    return perplexity(lm, heldout_text(max_chars), window=HELDOUT_WINDOW, progress=progress)


def classification_scores(y_true, y_pred, labels=None):
    """Precision, recall, F1 and support per class, then the micro, macro and weighted averages (notebook 15).

    ``y_true``, ``y_pred``: equal-length, non-empty sequences of labels (strings or ints); ``labels``: the classes
    and their order, by default the sorted labels that occur in either. Returns a ``pandas.DataFrame`` indexed by
    the classes and then ``"micro avg"``, ``"macro avg"``, ``"weighted avg"``, with columns ``precision``,
    ``recall``, ``f1``, ``support`` (the number of true items of the class; the total on the average rows).

    For class c with TP, FP, FN counted against every other class (one-vs-rest): precision = TP / (TP + FP),
    recall = TP / (TP + FN), F1 = 2PR / (P + R), their harmonic mean (van Rijsbergen 1979). A class that is never
    predicted has precision 0 (scikit-learn's ``zero_division=0``). Micro pools the counts of every class (for
    single-label data it equals accuracy), macro is the unweighted mean over classes, weighted the mean weighted by
    support. Equal to ``sklearn.metrics.precision_recall_fscore_support`` (which computes it here) and
    ``classification_report``. Raises ValueError, before any work, for lists of different lengths, empty lists or a
    label that is not in ``labels``.
    """
    import pandas as pd
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred = list(y_true), list(y_pred)
    if not y_true or len(y_true) != len(y_pred):
        checks.fail(f"got {len(y_true)} true and {len(y_pred)} predicted labels: pass two non-empty lists of the "
                    "same length, one label per item")
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred))
    labels = list(labels)
    known = set(labels)
    for name, ys in (("y_true", y_true), ("y_pred", y_pred)):
        bad = next((y for y in ys if y not in known), None)
        if bad is not None:
            checks.fail(f"{name} has the label {bad!r}, which is not in labels={labels}: add it to labels or map it "
                        "to one of them first")
    rows = {}
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, lab in enumerate(labels):
        rows[lab] = {"precision": p[i], "recall": r[i], "f1": f[i], "support": int(s[i])}
    for avg in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        rows[f"{avg} avg"] = {"precision": p, "recall": r, "f1": f, "support": len(y_true)}
    return pd.DataFrame.from_dict(rows, orient="index")[["precision", "recall", "f1", "support"]]
