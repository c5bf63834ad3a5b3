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


# ----------------------------------------------------------------------------------------------- every window/stride
def _reference_nll(lm, ids, window, stride):
    """Token t scored from the first window (starts 0, stride, 2·stride ...) that reaches past it, one pass per token."""
    out = []
    for t in range(1, ids.numel()):
        k = 0 if t < window else (t - window) // stride + 1
        begin = k * stride
        assert begin < t  # at least one token of context
        logits = lm.model(ids[begin:t].unsqueeze(0)).logits[0, -1].float()
        out.append(-F.log_softmax(logits, -1)[ids[t]].item())
    return torch.tensor(out)


@pytest.mark.parametrize("window, stride", [(2, 1), (3, 1), (3, 2), (4, 3), (5, 2), (6, 5), (7, 3), (40, 39),
                                            (2, None), (9, None), (64, None)])
def test_windowed_nll_equals_independent_per_token_scoring(tiny_lm, window, stride):
    ids = tiny_lm.encode(TEXT)[0]
    nll = metrics.token_nll(tiny_lm, TEXT, window=window, stride=stride, progress=False)
    expected = _reference_nll(tiny_lm, ids, window, stride if stride is not None else max(1, window // 2))
    assert nll.shape == expected.shape == (ids.numel() - 1,)
    torch.testing.assert_close(nll, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("text", ["a b", "the cat", "the cat sat"])
def test_short_texts_with_small_windows(tiny_lm, text):
    ids = tiny_lm.encode(text)[0]
    for window in (2, 3):
        nll = metrics.token_nll(tiny_lm, text, window=window, stride=window - 1, progress=False)
        torch.testing.assert_close(nll, _reference_nll(tiny_lm, ids, window, window - 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw, match", [
    ({"window": 2, "stride": 2}, r"stride=2 must be an integer from 1 to window-1=1"),  # the reported crash
    ({"window": 8, "stride": 8}, r"stride=8 .* window-1=7"),
    ({"window": 8, "stride": 0}, r"stride=0"),  # no longer silently replaced by the default
    ({"window": 8, "stride": -3}, r"stride=-3"),
    ({"window": 8, "stride": 2.0}, r"stride=2\.0"),
    ({"window": 8, "stride": True}, r"stride=True"),
    ({"window": 0}, r"window=0 must be an integer of at least 2"),
    ({"window": -5}, r"window=-5"),
    ({"window": 4.5}, r"window=4\.5"),
    ({"window": "16"}, r"window='16'"),
    ({"window": None}, r"window=None"),
])
def test_every_invalid_window_argument_is_one_line(tiny_lm, kw, match):
    for fn in (metrics.token_nll, metrics.perplexity):
        with pytest.raises(ValueError, match=match) as err:
            fn(tiny_lm, TEXT, progress=False, **kw)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, match", [
    ("", "text is empty"),
    (None, "type NoneType"),
    (42, "type int"),
    (torch.tensor([[1, 2, 3], [4, 5, 6]]), r"shape \(2, 3\)"),
    (torch.tensor([1.0, 2.0, 3.0]), "dtype torch.float32"),
    (torch.tensor([5, 6, 10_000]), "vocabulary has ids 0.."),
    (torch.tensor([5, -1, 6]), "range from -1"),
    (torch.tensor([7]), "1 token"),
])
def test_bad_texts_are_one_line_errors(tiny_lm, text, match):
    with pytest.raises(ValueError, match=match) as err:
        metrics.token_nll(tiny_lm, text, window=4, progress=False)
    assert "\n" not in str(err.value)


def test_ids_as_tensor_list_or_row_give_the_same_scores(tiny_lm):
    ids = tiny_lm.encode(TEXT)
    a = metrics.token_nll(tiny_lm, TEXT, window=5, stride=2, progress=False)
    for form in (ids, ids[0], ids[0].tolist()):
        torch.testing.assert_close(metrics.token_nll(tiny_lm, form, window=5, stride=2, progress=False), a)


# ----------------------------------------------------------------------------------------------- classification_scores
def test_classification_scores_equal_sklearn_on_random_labels():
    import numpy as np
    from sklearn.metrics import classification_report

    from lmkit.metrics import classification_scores
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d"]
    for trial in range(20):
        y_true = list(rng.choice(labels[:3], 40))
        y_pred = list(rng.choice(labels[:2] + ["d"], 40))      # "c" is never predicted, "d" never true
        got = classification_scores(y_true, y_pred, labels=labels)
        rep = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
        assert list(got.index) == labels + ["micro avg", "macro avg", "weighted avg"]
        for lab in labels + ["macro avg", "weighted avg"]:
            assert got.loc[lab, "precision"] == pytest.approx(rep[lab]["precision"])
            assert got.loc[lab, "recall"] == pytest.approx(rep[lab]["recall"])
            assert got.loc[lab, "f1"] == pytest.approx(rep[lab]["f1-score"])
        assert got.loc["c", "precision"] == 0 and got.loc["d", "support"] == 0
        accuracy = np.mean(np.array(y_true) == np.array(y_pred))
        assert got.loc["micro avg", "f1"] == pytest.approx(accuracy)   # single-label: micro F1 is accuracy


def test_classification_scores_by_hand():
    from lmkit.metrics import classification_scores
    got = classification_scores(["x", "x", "x", "y"], ["x", "y", "y", "y"])
    # x: TP 1, FP 0, FN 2 -> P 1, R 1/3, F1 0.5; y: TP 1, FP 2, FN 0 -> P 1/3, R 1, F1 0.5
    assert got.loc["x", ["precision", "recall", "f1"]].tolist() == pytest.approx([1, 1 / 3, 0.5])
    assert got.loc["y", ["precision", "recall", "f1"]].tolist() == pytest.approx([1 / 3, 1, 0.5])
    assert got.loc["weighted avg", "recall"] == pytest.approx((3 * 1 / 3 + 1 * 1) / 4)


@pytest.mark.parametrize("args, match", [
    ((["a"], ["a", "b"]), "1 true and 2 predicted"),
    (([], []), "0 true and 0 predicted"),
    ((["a", "z"], ["a", "a"], ["a", "b"]), "'z', which is not in labels"),
])
def test_classification_scores_refuses_bad_input(args, match):
    from lmkit.metrics import classification_scores
    with pytest.raises(ValueError, match=match):
        classification_scores(*args)
