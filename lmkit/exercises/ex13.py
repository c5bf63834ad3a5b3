"""Exercise checkers of notebook 13 (applications)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("13.1", hint="accuracy = (number of positions where the prediction equals the gold label) / (number of "
                       "texts); zip the two lists and count, no library needed.")
def _accuracy(answer, *, y_true, y_pred):
    y_true, y_pred = list(y_true), list(y_pred)
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError("y_true and y_pred must be non-empty and of the same length")
    return _close(answer, sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true))


@exercise("13.2", hint="build the context with prompt.context(lm, text), run the model on lm.encode(context), "
                       "log_softmax the logits at the LAST position, and subtract the entries of the token ids of "
                       "the two label words (prompt.labels['positive'] and prompt.labels['negative'], leading space "
                       "included).")
def _label_margin(answer, *, lm, prompt, text):
    import torch

    context = prompt.context(lm, text)
    with torch.inference_mode():
        logp = torch.log_softmax(lm.model(lm.encode(context)).logits[0, -1].float(), dim=-1)
    (pos,) = lm.tokenizer.encode(prompt.labels["positive"], add_special_tokens=False)
    (neg,) = lm.tokenizer.encode(prompt.labels["negative"], add_special_tokens=False)
    return _close(answer, (logp[pos] - logp[neg]).item(), rel=1e-3, abs_=1e-3)
