"""lmkit.metrics: sliding-window perplexity."""
import math

import pytest
import torch
import torch.nn.functional as F

from lmkit import metrics

TEXT = "the cat sat on the mat and the dog ran to the big red house . one two three four five"


def test_single_window_equals_the_models_own_loss(tiny_lm):
    ids = tiny_lm.encode(TEXT)
    loss = tiny_lm.model(ids, labels=ids).loss.item()
    assert metrics.perplexity(tiny_lm, TEXT) == pytest.approx(math.exp(loss), rel=1e-5)


def test_sliding_window_scores_every_token_once_with_the_stated_context(tiny_lm):
    ids = tiny_lm.encode(TEXT)[0]
    window, stride = 6, 2
    nll = metrics.token_nll(tiny_lm, TEXT, window=window, stride=stride)
    assert nll.shape == (ids.numel() - 1,) and torch.isfinite(nll).all()
    # Recompute token 10 by hand: it is scored in the window that starts at the last stride step before it.
    t = 10
    begin = max(0, ((t - window) // stride + 1) * stride) if t >= window else 0
    logits = tiny_lm.model(ids[begin:t].unsqueeze(0)).logits[0, -1]
    expected = -F.log_softmax(logits.float(), -1)[ids[t]]
    assert nll[t - 1].item() == pytest.approx(expected.item(), rel=1e-5)


def test_window_larger_than_text_matches_stride_choice(tiny_lm):
    a = metrics.perplexity(tiny_lm, TEXT, window=64)
    b = metrics.perplexity(tiny_lm, TEXT, window=64, stride=7)
    assert a == pytest.approx(b, rel=1e-6)


@pytest.mark.parametrize("kw, match", [({"window": 1}, "window=1"), ({"window": 4, "stride": 5}, "stride=5")])
def test_bad_windows(tiny_lm, kw, match):
    with pytest.raises(ValueError, match=match):
        metrics.perplexity(tiny_lm, TEXT, **kw)


def test_one_token_text_is_refused(tiny_lm):
    with pytest.raises(ValueError, match="at least 2"):
        metrics.perplexity(tiny_lm, "cat")
