"""The one held-out text (lmkit.data.heldout_text) and its perplexity in one fixed window (lmkit.metrics)."""
import math

import pytest
import torch

from lmkit import data, metrics


def test_heldout_text_is_hamlet_from_act_one_in_whole_lines():
    text = data.heldout_text()
    hamlet = data.read_work("hamlet")
    assert text.startswith("ACT I.\n") and text in hamlet
    assert hamlet.index(text) > 0                       # the title page and the cast list are skipped
    assert text.endswith("\n") and len(text) <= data.HELDOUT_CHARS
    assert data.HELDOUT_CHARS - len(text) < 200         # cut back to a line break, not much further
    assert data.heldout_text() == text                  # fixed


def test_quick_prefix_is_a_prefix_of_the_same_text():
    short = data.heldout_text(max_chars=500)
    assert data.heldout_text().startswith(short) and len(short) <= 500 and short.endswith("\n")
    assert data.heldout_text(max_chars=10**9) == data.heldout_text()
    with pytest.raises(data.DataError, match="max_chars=0"):
        data.heldout_text(max_chars=0)


def test_heldout_perplexity_uses_the_text_and_one_window(tiny_lm, monkeypatch):
    seen = {}
    real = metrics.perplexity

    def spy(lm, text, **kw):
        seen.update(text=text, **kw)
        return real(lm, text, **kw)

    monkeypatch.setattr(metrics, "perplexity", spy)
    value = metrics.heldout_perplexity(tiny_lm, max_chars=300)
    assert seen["text"] == data.heldout_text(300) and seen["window"] == metrics.HELDOUT_WINDOW
    ids = tiny_lm.encode(seen["text"])
    assert ids.shape[1] <= metrics.HELDOUT_WINDOW       # one window: equal to the model's own loss
    with torch.inference_mode():
        loss = tiny_lm.model(ids, labels=ids).loss.item()
    assert math.isclose(value, math.exp(loss), rel_tol=1e-4)
