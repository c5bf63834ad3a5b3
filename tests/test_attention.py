"""lmkit.attention: the formula against the model, the statistics, the plots and the explorer (notebook 04)."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")  # tests only; notebooks keep their inline backend

from lmkit import attention as A  # noqa: E402

TEXT = "the big cat sat on the red mat and the small dog ran to the house ."


def _png(ex) -> bytes:
    assert len(ex.output.outputs) == 1  # one map at a time, replaced on each redraw
    return ex.output_image


# ----------------------------------------------------------------------------------------------- the model's own
def test_attentions_shape_rows_sum_to_one_and_causal(tiny_lm):
    tokens, att = A.attentions(tiny_lm, TEXT)
    cfg = tiny_lm.model.config
    t = len(TEXT.split())
    assert tokens == TEXT.split()
    assert att.shape == (cfg.num_hidden_layers, cfg.num_attention_heads, t, t)
    torch.testing.assert_close(att.sum(-1), torch.ones(att.shape[:-1]), atol=1e-6, rtol=0)
    future = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
    assert att[..., future].abs().max().item() == 0.0
    assert (att[..., ~future] > 0).all()


def test_attentions_never_empty_under_sdpa_and_implementation_restored(tiny_folder):
    import lmkit

    lm = lmkit.load(tiny_folder, device="cpu", dtype="float32", attn_implementation="sdpa")
    _, att = A.attentions(lm, TEXT)
    assert att.numel() > 0 and torch.isfinite(att).all()
    assert lm.model.config._attn_implementation == "sdpa"
    eager = lmkit.load(tiny_folder, device="cpu", dtype="float32")
    torch.testing.assert_close(att, A.attentions(eager, TEXT)[1])


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_refused(tiny_lm, text):
    with pytest.raises(ValueError, match="empty"):
        A.attentions(tiny_lm, text)


def test_long_text_refused_with_the_fix(tiny_lm):
    with pytest.raises(ValueError, match=r"20 tokens, more than max_tokens=8"):
        A.attentions(tiny_lm, " ".join(["cat"] * 20), max_tokens=8)


# ----------------------------------------------------------------------------------------------- the formula
@pytest.mark.parametrize("overrides", [
    {},                                                   # GQA: 4 query heads share 2 KV heads
    {"hidden_size": 48, "num_attention_heads": 6, "num_key_value_heads": 2,
     "rope_parameters": {"rope_type": "default", "rope_theta": 500.0}},
    {"num_attention_heads": 4, "num_key_value_heads": 4},  # plain multi-head attention
    {"num_attention_heads": 4, "num_key_value_heads": 1, "attention_bias": True},
])
def test_recompute_equals_the_model_for_every_layer(overrides):
    import lmkit
    from conftest import make_model, make_tokenizer

    tok = make_tokenizer()
    model = make_model(len(tok), seed=3, num_hidden_layers=3, **overrides)
    lm = lmkit.LM(model=model, tokenizer=tok, device=torch.device("cpu"), name="tiny")
    _, own = A.attentions(lm, TEXT)
    for layer in range(3):
        torch.testing.assert_close(A.recompute(lm, TEXT, layer), own[layer], atol=1e-6, rtol=1e-5)
    table = A.verify(lm, TEXT)
    assert table["equal"].all() and len(table) == 3
    assert table["output_max_abs"].min() > 0  # the block output compared is not trivially zero


def test_verify_catches_a_wrong_formula(tiny_lm, monkeypatch):
    assert A.verify(tiny_lm, TEXT)["equal"].all()
    monkeypatch.setattr(A.formula, "rope", lambda x, theta: x)  # forget the rotary embedding
    assert not A.verify(tiny_lm, TEXT)["equal"].any()


def test_steps_shapes_and_gqa_sharing(tiny_lm):
    tr = A.trace(tiny_lm, TEXT)
    s = A.attention_steps(tiny_lm, tr.inputs[1], 1)
    t = len(tr.tokens)
    assert s.q.shape == (4, t, 8) and s.k.shape == (2, t, 8) and s.v.shape == (2, t, 8)
    assert s.output.shape == (t, 32)
    assert torch.isinf(s.scores[:, 0, 1:]).all()  # the first token sees only itself
    # query heads 0 and 1 share KV head 0: their scores use the same keys
    manual = s.q_rot[1] @ s.k_rot[0].T / 8 ** 0.5
    torch.testing.assert_close(s.scores[1].tril(), manual.tril())


def test_rope_is_a_rotation_that_keeps_position_zero():
    x = torch.randn(3, 7, 16)
    y = A.rope(x, 10000.0)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))  # rotations keep lengths
    torch.testing.assert_close(y[:, 0], x[:, 0])                 # angle 0 at position 0
    # scores depend on relative position only: q at i+s with k at j+s equals q at i with k at j
    q, k = torch.randn(16), torch.randn(16)
    seq_q, seq_k = q.expand(7, 16), k.expand(7, 16)
    rq, rk = A.rope(seq_q, 100.0), A.rope(seq_k, 100.0)
    assert torch.allclose(rq[5] @ rk[2], rq[4] @ rk[1], atol=1e-5)


@pytest.mark.parametrize("layer", [2, -3, 1.0, "0"])
def test_bad_layer_refused(tiny_lm, layer):
    with pytest.raises(ValueError, match="layer="):
        A.recompute(tiny_lm, TEXT, layer)


# ----------------------------------------------------------------------------------------------- statistics
def _pattern(kind: str, t: int = 8) -> torch.Tensor:
    if kind == "previous-token":
        a = torch.zeros(t, t)
        a[0, 0] = 1
        a[torch.arange(1, t), torch.arange(0, t - 1)] = 1
    elif kind == "first-token":
        a = torch.zeros(t, t)
        a[:, 0] = 1
    elif kind == "diagonal":
        a = torch.eye(t)
    else:  # broad: uniform over the visible tokens
        a = torch.ones(t, t).tril()
        a = a / a.sum(-1, keepdim=True)
    return a


def test_head_stats_classifies_the_four_patterns():
    kinds = ["previous-token", "first-token", "diagonal", "broad"]
    att = torch.stack([_pattern(k) for k in kinds])[None]  # [1 layer, 4 heads, T, T]
    stats = A.head_stats(att)
    assert list(stats["kind"]) == kinds
    assert stats.loc[3, "norm_entropy"] == pytest.approx(1.0)
    assert stats.loc[2, "entropy_bits"] == pytest.approx(0.0)
    mixed = 0.4 * _pattern("previous-token") + 0.4 * _pattern("diagonal") + 0.2 * _pattern("first-token")
    assert A.head_stats(mixed[None, None])["kind"][0] == "mixed"


def test_entropy_bits_of_uniform_rows():
    a = _pattern("broad", 5)
    torch.testing.assert_close(A.entropy_bits(a), torch.log2(torch.arange(1, 6).float()))


def test_head_stats_refuses_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        A.head_stats(torch.ones(3, 3))
    with pytest.raises(ValueError, match="at least 3"):
        A.head_stats(torch.ones(1, 1, 2, 2))


def test_rollout():
    t = 6
    eye = torch.eye(t).expand(3, 2, t, t)
    torch.testing.assert_close(A.rollout(eye)[-1], torch.eye(t))  # nobody mixes: rollout is the identity
    att = torch.stack([_pattern("previous-token", t), _pattern("first-token", t)]).expand(3, 2, t, t)
    r = A.rollout(att, residual=0.0)
    mean = att[0].mean(0)
    torch.testing.assert_close(r[2], mean @ mean @ mean)
    torch.testing.assert_close(A.rollout(att)[-1].sum(-1), torch.ones(t))
    assert (A.rollout(att)[-1].triu(1) == 0).all()  # still causal
    with pytest.raises(ValueError, match="residual"):
        A.rollout(att, residual=2)


def test_logit_lens_last_row_is_the_model(tiny_lm):
    lens = A.logit_lens(tiny_lm, TEXT)
    tr = A.trace(tiny_lm, TEXT)
    n = tiny_lm.model.config.num_hidden_layers
    assert lens.top_probs.shape == (n + 1, len(tr.tokens)) and lens.row_labels[0] == "embed"
    torch.testing.assert_close(lens.last_probs[-1], tr.logits[-1].softmax(-1), atol=1e-6, rtol=1e-5)
    assert torch.equal(lens.top_ids[-1], tr.logits.argmax(-1))
    top = int(lens.top_ids[-1, -1])
    assert lens.rank(top)[-1] == 0
    first = lens.first_layer(top)
    assert first is not None and -1 <= first <= n - 1 and lens.rank(top)[first + 1] == 0
    assert (lens.rank(top)[:first + 1] > 0).all()


# ----------------------------------------------------------------------------------------------- plots
def test_plots_return_labelled_axes(tiny_lm):
    import matplotlib.pyplot as plt

    tokens, att = A.attentions(tiny_lm, TEXT)
    ax = A.plot_head(att[0, 1], tokens, query=3)
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens and ax.get_title()
    assert ax.get_xlabel() and ax.get_ylabel() and len(ax.patches) == 1
    ax = A.plot_grid(att)
    assert ax.images[0].get_array().shape == (4 * (len(tokens) + 1) - 1, 2 * (len(tokens) + 1) - 1)
    ax = A.plot_head_view(att[1, 0], tokens, query=4, min_weight=0.0)
    assert len(ax.collections[0].get_segments()) == 5  # token 4 sees tokens 0..4
    ax = A.plot_head_stats(A.head_stats(att))
    assert ax.get_xlabel() == "layer"
    ax = A.plot_rollout(A.rollout(att), tokens)
    assert ax.images[0].get_array().shape == (2, len(tokens))
    ax = A.plot_logit_lens(A.logit_lens(tiny_lm, TEXT))
    assert ax.images[0].get_array().shape == (3, len(tokens))
    with pytest.raises(ValueError, match="do not match"):
        A.plot_head(att[0, 0], tokens[:-1])
    plt.close("all")


# ----------------------------------------------------------------------------------------------- the explorer
def test_explorer_redraws_without_recomputing(tiny_lm):
    ex = A.Explorer(tiny_lm, TEXT)
    assert ex.n_computed == 1 and ex.tokens == TEXT.split()
    first = _png(ex)
    torch.testing.assert_close(ex.shown, ex.att[0, 0])
    ex.layer.value = 1
    ex.head.value = 3
    torch.testing.assert_close(ex.shown, ex.att[1, 3])
    assert ex.title == "layer 1, head 3" and _png(ex) != first
    ex.average.value = True
    torch.testing.assert_close(ex.shown, ex.att[1].mean(0))
    assert ex.head.disabled and "mean of heads" in ex.title
    ex.token.value = 4
    assert "query 4: 'on'" in ex.title
    ex.view.value = "head view"
    assert _png(ex)[:4] == b"\x89PNG"
    assert ex.n_computed == 1 and len(ex.output.outputs) == 1
    assert ex.last_redraw_s > 0


def test_explorer_draws_what_the_controls_select(tiny_lm):
    """The image itself changes with the head, and is identical when the controls come back."""
    ex = A.Explorer(tiny_lm, TEXT)
    images = {}
    for head in range(4):
        ex.head.value = head
        images[head] = _png(ex)
    assert len(set(images.values())) == 4
    ex.head.value = 1
    assert _png(ex) == images[1]
    ex.view.value = "head view"
    assert _png(ex) != images[1]
    ex.view.value = "heatmap"  # the frame drawn earlier is reused: the same pixels come back
    assert _png(ex) == images[1]


def test_explorer_new_text_computes_once_and_resets_token(tiny_lm):
    ex = A.Explorer(tiny_lm, TEXT)
    ex.token.value = 10
    ex.text.value = "the cat sat ."
    assert ex.n_computed == 2 and ex.tokens == ["the", "cat", "sat", "."]
    assert ex.token.value == -1 and len(ex.token.options) == 5
    ex.text.value = TEXT  # cached: no new forward pass
    assert ex.n_computed == 2


def test_explorer_truncates_long_text_with_a_note(tiny_lm):
    ex = A.Explorer(tiny_lm, " ".join(["cat sat"] * 20), max_tokens=10)
    assert len(ex.tokens) == 10 and ex.att.shape[-1] == 10
    assert "40 tokens" in ex.status.value and "first 10" in ex.status.value


def test_explorer_shows_errors_not_tracebacks(tiny_lm):
    ex = A.Explorer(tiny_lm, TEXT)
    before = _png(ex)
    ex.text.value = "   "
    assert "empty" in ex.status.value and "#b00020" in ex.status.value
    assert _png(ex) == before and ex.n_computed == 1


@pytest.mark.parametrize("text", ["cat", "cat cat cat cat", "zebra zebra", ".", "the " * 5])
def test_explorer_degenerate_texts_draw_or_explain(tiny_lm, text):
    """A single token, one word repeated, unknown words: each draws a valid map (rows sum to 1)."""
    ex = A.Explorer(tiny_lm, "the cat sat")
    ex.text.value = text
    t = len(tiny_lm.encode(text)[0])
    assert ex.tokens and len(ex.tokens) == t and ex.status.value.count("#b00020") == 0
    torch.testing.assert_close(ex.shown.sum(-1), torch.ones(t))
    assert _png(ex)[:4] == b"\x89PNG"
    for view in ("head view", "heatmap"):
        ex.view.value = view
        ex.token.value = t - 1
        assert _png(ex)[:4] == b"\x89PNG"


def test_explorer_text_without_tokens_is_a_message(tiny_lm, monkeypatch):
    ex = A.Explorer(tiny_lm, TEXT)
    monkeypatch.setattr(tiny_lm, "encode", lambda text: torch.zeros(1, 0, dtype=torch.long))
    ex.text.value = "\u200b"
    assert ex.status_text.startswith("the text") and "gives no tokens" in ex.status_text
    assert "Traceback" not in ex.status.value and ex.n_computed == 1


def test_explorer_plain_text_fallback_names_the_map(tiny_lm):
    ex = A.Explorer(tiny_lm, TEXT)
    ex.layer.value, ex.head.value = 1, 2
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    text = bundle["text/plain"]
    assert text == repr(ex) and "VBox" not in text
    lines = text.splitlines()
    assert lines[0] == "attention explorer: layer 1, head 2 (heatmap)"
    assert lines[1] == ex.status_text and len(lines) == 2 + len(ex.tokens)
    w = ex.att[1, 2]
    j = int(w[4, :5].argmax())
    assert lines[2 + 4] == f"  4 'on' -> {j} {ex.tokens[j]!r} {w[4, j]:.2f}"
    ex.token.value = 4
    assert ex.summary().splitlines()[2:] == [lines[2 + 4]]
    ex.text.value = " "
    assert "empty" in ex.summary().splitlines()[1]


# ----------------------------------------------------------------------------------------------- the real model
@pytest.mark.integration
def test_real_model_recompute_equals_every_layer(real_lm):
    text = "The capital of France is Paris, and the capital of Italy is Rome."
    table = A.verify(real_lm, text, atol=1e-5, rtol=1e-4)
    assert len(table) == 30 and table["equal"].all(), table
    _, att = A.attentions(real_lm, text)
    assert att.shape[:2] == (30, 9)
    torch.testing.assert_close(A.recompute(real_lm, text, 29), att[29], atol=1e-5, rtol=1e-4)


@pytest.mark.integration
def test_real_model_logit_lens_finds_paris(real_lm):
    lens = A.logit_lens(real_lm, "The capital of France is")
    paris = real_lm.encode(" Paris")[0, 0].item()
    assert lens.top_tokens[-1][-1] == " Paris"
    first = lens.first_layer(paris)
    assert first is not None and lens.rank(paris)[first + 1] == 0 and (lens.rank(paris)[:first + 1] > 0).all()


# ----------------------------------------------------------------------------------------------- exercises 03.x
@pytest.fixture
def lenient(monkeypatch):
    """Wrong answers below are on purpose: strict mode (make test) would turn them into errors."""
    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)


def test_exercise_one_weight_from_q_and_k(tiny_lm, lenient):
    import math

    from lmkit import exercises

    tr = A.trace(tiny_lm, TEXT)
    layer, head, query, key = 1, 3, 6, 2
    s = A.attention_steps(tiny_lm, tr.inputs[layer], layer)
    cfg = tiny_lm.model.config
    kv = head // (cfg.num_attention_heads // cfg.num_key_value_heads)
    dots = s.q_rot[head, query] @ s.k_rot[kv, : query + 1].T
    scaled = (dots / math.sqrt(cfg.head_dim)).softmax(-1)[key].item()
    raw = dots.softmax(-1)[key].item()
    assert math.isclose(scaled, tr.attentions[layer, head, query, key].item(), rel_tol=1e-4)
    kw = dict(lm=tiny_lm, text=TEXT, layer=layer, head=head, query_pos=query, key_pos=key)
    assert exercises.check("04.1", (scaled, raw), **kw)
    assert not exercises.check("04.1", (raw, scaled), **kw)
    wrong_kv = (s.q_rot[head, query] @ s.k_rot[1 - kv, : query + 1].T / math.sqrt(cfg.head_dim)).softmax(-1)[key]
    assert not exercises.check("04.1", (wrong_kv.item(), raw), **kw)           # the wrong key head (GQA)
    unmasked = (s.q_rot[head, query] @ s.k_rot[kv].T / math.sqrt(cfg.head_dim)).softmax(-1)[key]
    assert not exercises.check("04.1", (unmasked.item(), raw), **kw)           # the future left in


def test_exercise_prev_score_on_another_text(tiny_lm, lenient):
    from lmkit import exercises

    text = "one two three four five"
    stats = A.head_stats(A.attentions(tiny_lm, text)[1])
    row = stats[(stats["layer"] == 1) & (stats["head"] == 2)].iloc[0]
    kw = dict(lm=tiny_lm, layer=1, head=2, text=text)
    assert exercises.check("04.2", row["prev"], **kw)
    assert not exercises.check("04.2", row["first"], **kw)
    other = stats[(stats["layer"] == 0) & (stats["head"] == 2)].iloc[0]
    assert not exercises.check("04.2", other["prev"], **kw)


def test_exercise_rollout_shares(tiny_lm, lenient):
    from lmkit import exercises

    _, att = A.attentions(tiny_lm, TEXT)
    right = tuple(A.rollout(att, residual=r)[-1, -1, 0].item() for r in (0.0, 0.9))
    assert exercises.check("04.3", right, lm=tiny_lm, text=TEXT)
    assert not exercises.check("04.3", right[::-1], lm=tiny_lm, text=TEXT)
    assert not exercises.check("04.3", (right[0], A.rollout(att)[-1, -1, 0].item()), lm=tiny_lm, text=TEXT)


def test_exercise_logit_lens_first_layer_and_rank(tiny_lm, lenient):
    from lmkit import exercises

    prompt = "the cat sat on the"
    lens = A.logit_lens(tiny_lm, prompt)
    (mat,) = tiny_lm.tokenizer.encode(" mat", add_special_tokens=False)
    kw = dict(lm=tiny_lm, prompt=prompt, word=" mat", after_layer=0)
    right = (lens.first_layer(mat), int(lens.rank(mat)[1]))
    assert exercises.check("04.4", right, **kw)
    assert not exercises.check("04.4", (right[0], right[1] + 1), **kw)
    assert not exercises.check("04.4", (right[0], int(lens.rank(mat)[0]) + 1000), **kw)
