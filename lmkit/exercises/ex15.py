"""Exercise checkers of notebook 15 (applications)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("15.1", hint="contextual calibration: turn each row of log-likelihoods into a distribution over the three "
                       "labels (softmax), do the same for the content-free inputs and AVERAGE them into the prompt's "
                       "prior, then DIVIDE each text's label probabilities by that prior (subtract its log) before the "
                       "argmax. The argmax of the raw scores alone keeps the prompt's lean; multiplying by the prior "
                       "doubles it; averaging unnormalised content-free scores weights the inputs unequally.")
def _calibration(answer, *, lm, prompt, raw):
    """Right if ``answer`` is the calibrated label of each text: argmax of p(label | text) / prior(label), where the
    prior is the mean label distribution over :data:`lmkit.apps.CONTENT_FREE` (Zhao et al. 2021), recomputed here
    from the real model; ``raw`` is the ``[texts, labels]`` log-likelihood table the learner started from."""
    import torch

    from lmkit.apps import CONTENT_FREE, label_scores

    raw = torch.as_tensor(raw, dtype=torch.float32)
    names = list(prompt.labels)
    answer = list(answer)
    if raw.ndim != 2 or raw.shape[1] != len(names) or len(answer) != raw.shape[0]:
        raise ValueError(f"answer needs one label per text ({raw.shape[0]}), each one of {names}; got {len(answer)}")
    free = label_scores(lm, prompt, list(CONTENT_FREE), progress=False)
    prior = free.log_softmax(-1).exp().mean(0).log()
    calibrated = [names[i] for i in (raw.log_softmax(-1) - prior).argmax(-1).tolist()]
    return answer == calibrated


@exercise("15.2", hint="build the context with prompt.context(lm, text), run the model on lm.encode(context), "
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


@exercise("15.5", hint="for each class count TP (true c, predicted c), FP (predicted c, true other) and FN (true c, "
                       "predicted other); precision TP/(TP+FP), recall TP/(TP+FN), F1 their harmonic mean (0 when "
                       "both are 0); weighted F1 averages the per-class F1 weighted by each class's number of TRUE "
                       "items, not by how often it was predicted.")
def _weighted_f1(answer, *, y_true, y_pred):
    """Right if ``answer`` is the support-weighted mean of the per-class F1 of ``y_pred`` against ``y_true``
    (scikit-learn's ``f1_score(average="weighted", zero_division=0)``)."""
    from sklearn.metrics import f1_score

    return _close(answer, f1_score(list(y_true), list(y_pred), average="weighted", zero_division=0), rel=1e-6)


@exercise("15.6", hint="tokenise both texts as rouge1_f does (lower-case, runs of letters and digits, Porter stem of "
                       "words longer than three characters), then count word PAIRS (consecutive tokens) instead of "
                       "words: the overlap sums min(count in summary, count in reference) over pairs, precision divides "
                       "it by the summary's number of pairs, recall by the reference's, F1 is their harmonic mean.")
def _rouge2(answer, *, summary, reference):
    """Right if ``answer`` is the ROUGE-2 F-measure of ``summary`` against ``reference`` as ``rouge-score`` computes
    it with the Porter stemmer on (:func:`lmkit.apps.rouge`). A pair with ROUGE-2 0 raises ValueError: a stub
    returning 0 must be able to fail."""
    from lmkit.apps import rouge

    expected = rouge([summary], [reference])["rouge2"]
    if expected == 0:
        raise ValueError("15.6 needs a summary that shares at least one word pair with its reference (ROUGE-2 is 0 "
                         "here, so an answer of 0 would pass unchecked): pass another pair")
    return _close(answer, expected, rel=1e-9, abs_=1e-12)
