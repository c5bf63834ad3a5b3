"""The tiny GPT and the RNN LM of notebook 10: shapes, the causal mask, training, checkpoints."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lmkit import tinygpt as tg
from lmkit.metrics import perplexity

TEXT = "to be, or not to be: that is the question.\nwhether 'tis nobler in the mind to suffer\n" * 20


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one CPU thread is faster than several, and spares a shared machine."""
    with tg.num_threads(1):
        yield


@pytest.fixture
def tok():
    return tg.CharTokenizer.from_text(TEXT)


def small_gpt(vocab, **kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=vocab, block_size=16, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return tg.TinyGPT(tg.GPTConfig(**cfg)).eval()


def test_tokenizer_round_trip_and_unknown_character(tok):
    ids = tok.encode(TEXT[:50])
    assert ids.dtype == torch.int64 and ids.shape == (50,)
    assert tok.decode(ids) == TEXT[:50]
    assert tok.chars == "".join(sorted(set(TEXT)))
    with pytest.raises(ValueError, match="'Z'"):
        tok.encode("Zebra")


@pytest.mark.parametrize("pos", ["sinusoidal", "learned"])
def test_gpt_shapes_tied_head_and_loss(tok, pos):
    model = small_gpt(len(tok), pos=pos)
    x = torch.randint(len(tok), (3, 10))
    out = model(x, x)
    assert out.logits.shape == (3, 10, len(tok))
    assert out.loss.ndim == 0 and out.loss.item() == pytest.approx(F.cross_entropy(out.logits.flatten(0, 1),
                                                                                   x.flatten()).item())
    assert model.head.weight is model.tok_emb.weight
    assert model(x).loss is None
    # a fresh model predicts close to uniform: loss near ln(vocab)
    assert abs(out.loss.item() - math.log(len(tok))) < 0.5


def test_attention_matches_sdpa_and_weights_are_causal(tok):
    model = small_gpt(len(tok))
    attn = model.blocks[0].attn
    x = torch.randn(2, 12, 16)
    y, w = attn(x, return_weights=True)
    assert w.shape == (2, 2, 12, 12)
    assert torch.allclose(w.sum(-1), torch.ones(2, 2, 12))
    assert (w.triu(1) == 0).all()
    q, k, v = attn.qkv(x).split(16, dim=2)
    q, k, v = (t.view(2, 12, 2, 8).transpose(1, 2) for t in (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 12, 16)
    assert torch.allclose(y, attn.proj(ref), atol=1e-6)


@pytest.mark.parametrize("kind", ["gpt", "lstm", "gru"])
def test_a_future_token_never_changes_a_past_output(tok, kind):
    if kind == "gpt":
        model = small_gpt(len(tok))
    else:
        torch.manual_seed(0)
        model = tg.RNNLM(tg.RNNConfig(len(tok), 16, 2, kind, block_size=16)).eval()
    x = torch.randint(len(tok), (1, 12))
    for t in (0, 5, 11):
        changed = x.clone()
        changed[0, t] = (changed[0, t] + 1) % len(tok)
        a, b = model(x).logits[0], model(changed).logits[0]
        assert torch.allclose(a[:t], b[:t], atol=1e-6), f"position < {t} changed"
        assert not torch.allclose(a[t], b[t]), "the changed position itself must change"


def test_longer_than_block_size_is_refused(tok):
    with pytest.raises(ValueError, match="block_size=16"):
        small_gpt(len(tok))(torch.zeros(1, 17, dtype=torch.long))


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="n_head=3"):
        tg.GPTConfig(n_embd=16, n_head=3)
    with pytest.raises(ValueError, match="'rope'"):
        tg.GPTConfig(pos="rope")


def short_training(model, ids, steps=60, lr=1e-2):
    """Notebook 10's loop in brief (the notebook writes it in full): AdamW, the schedule, clipping."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = tg.lr_at(step, steps, lr, warmup=5)
        x, y = tg.get_batch(ids, 16, 16, gen)
        loss = model.train()(x, y).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_loss_decreases(tok, kind):
    ids = tok.encode(TEXT)
    if kind == "gpt":
        model = small_gpt(len(tok))
    else:
        torch.manual_seed(0)
        model = tg.RNNLM(tg.RNNConfig(len(tok), 32, 1, "lstm", block_size=16))
    before = tg.estimate_loss(model, ids, 16, n_windows=16)
    losses = short_training(model, ids)
    after = tg.estimate_loss(model, ids, 16, n_windows=16)
    unigram = 2.75  # entropy of TEXT's character frequencies, in nats: below it, the model uses context
    assert after < unigram < before, (before, after)
    assert sum(losses[-10:]) < sum(losses[:10])
    assert model.training  # estimate_loss restores the mode it found


def test_lr_schedule_warms_up_then_decays_to_a_tenth():
    lrs = [tg.lr_at(s, 100, 1.0, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert tg.lr_at(100, 100, 1.0, 10) == pytest.approx(0.1)


def test_rnn_like_matches_parameter_count(tok):
    cfg = tg.GPTConfig(len(tok), 32, 2, 2, 32)
    for cell in ("lstm", "gru"):
        rcfg = tg.rnn_like(cfg, cell)
        assert rcfg.cell == cell
        n_gpt, n_rnn = tg.n_params(tg.TinyGPT(cfg)), tg.n_params(tg.RNNLM(rcfg))
        assert abs(n_rnn - n_gpt) / n_gpt < 0.05, (n_gpt, n_rnn)


def test_flops_per_token_arithmetic():
    assert tg.flops_per_token(1000, 2, 8, 16) == 6 * 1000 + 12 * 2 * 8 * 16
    assert tg.flops_per_token(1000, 2, 8, 16, training=False) == pytest.approx((6000 + 3072) / 3)
    # the tied head: a d x V product per token, 2·V·d forward, although its matrix is left out of N
    assert tg.flops_per_token(1000, 2, 8, 16, vocab_size=50) == 6 * 1000 + 6 * 50 * 8 + 12 * 2 * 8 * 16
    assert tg.flops_per_token(0, 0, 8, 0, training=False, vocab_size=50) == 2 * 50 * 8


def test_perplexity_adapter_equals_the_model_loss(tok):
    lm = tg.CharLM(small_gpt(len(tok)), tok)
    text = TEXT[:16]  # 16 characters: one window, 15 predictions
    ids = tok.encode(text)[None]
    loss = lm.model(ids[:, :-1], ids[:, 1:]).loss.item()
    assert perplexity(lm, text, window=16, progress=False) == pytest.approx(math.exp(loss), rel=1e-5)
    assert perplexity(lm, TEXT[:200], window=16, progress=False) > 1



@pytest.mark.parametrize("n_chars, stride", [(200, None), (201, 5), (16, None), (17, 15), (2, None)])
def test_batched_token_nll_equals_the_sliding_window_of_metrics(tok, n_chars, stride):
    from lmkit.metrics import token_nll

    lm = tg.CharLM(small_gpt(len(tok)), tok)
    text = TEXT[:n_chars]
    batched = tg.token_nll(lm.model, tok.encode(text), 16, stride=stride, batch_size=3)
    one_by_one = token_nll(lm, text, window=16, stride=stride, progress=False)
    assert batched.shape == one_by_one.shape == (n_chars - 1,)
    assert torch.allclose(batched, one_by_one, atol=1e-5)
    with pytest.raises(ValueError, match="stride"):
        tg.token_nll(lm.model, tok.encode(text), 16, stride=16)
    with pytest.raises(ValueError, match="at least 2"):
        tg.token_nll(lm.model, tok.encode(TEXT[:1]), 16)

def test_generate_is_reproducible_and_greedy_is_argmax(tok):
    model = small_gpt(len(tok))
    a = tg.sample(model, tok, "to be", 20, seed=3)
    assert a == tg.sample(model, tok, "to be", 20, seed=3) and a.startswith("to be") and len(a) == 25
    idx = tok.encode("to be")[None]
    out = tg.generate(model, idx, 1, temperature=0)
    assert out[0, -1].item() == model(idx).logits[0, -1].argmax().item()


@pytest.mark.parametrize("kind", ["gpt", "rnn"])
def test_checkpoint_round_trip(tmp_path, tok, kind):
    model = small_gpt(len(tok), pos="learned") if kind == "gpt" else tg.RNNLM(tg.RNNConfig(len(tok), 16, 1, "gru"))
    path = tg.save(model, tok, tmp_path / "ckpt.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]  # no temp file left behind
    lm = tg.load(path)
    assert lm.tokenizer.chars == tok.chars and lm.model.config == model.config
    x = torch.randint(len(tok), (2, 9))
    assert torch.equal(lm.model(x).logits, model.eval()(x).logits)
    assert lm.model.head.weight is lm.model.tok_emb.weight  # still tied after loading


def test_a_gpt_written_elsewhere_with_the_same_names_loads_back_as_tinygpt(tmp_path, tok):
    """Notebook 10's cells define their own GPT class; its checkpoint must rebuild as a TinyGPT."""
    ref = small_gpt(len(tok))
    other = torch.nn.Module()  # not a TinyGPT: same sub-modules and config, as the notebook's class has
    other.config = ref.config
    for name, child in ref.named_children():
        other.add_module(name, child)
    lm = tg.load(tg.save(other, tok, tmp_path / "cells.safetensors"))
    assert isinstance(lm.model, tg.TinyGPT)
    x = torch.randint(len(tok), (1, 9))
    assert torch.equal(lm.model(x).logits, ref(x).logits)


def test_load_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        tg.load(tmp_path / "nope.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a lmkit.tinygpt checkpoint"):
        tg.load(tmp_path / "other.safetensors")


# ----------------------------------------------------------------------------------------- exercises of notebook 10
@pytest.fixture
def lenient(monkeypatch):
    """Wrong answers below must come back as results, not as the AssertionError of make test's strict mode."""
    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)


def test_exercise_10_1_learned_position_table(tok, lenient):
    from lmkit import exercises
    from lmkit.stats import compare

    cfg = small_gpt(len(tok)).config
    right = tg.n_params(small_gpt(len(tok), pos="learned")) - tg.n_params(small_gpt(len(tok)))
    assert right == cfg.block_size * cfg.n_embd
    learned, sinusoidal = [3.10, 3.12, 3.09, 3.11], [3.20, 3.23, 3.18, 3.22]  # one final loss per seed
    verdict = compare(learned, sinusoidal, paired=True).verdict
    assert verdict == "lower"
    assert exercises.check("10.1", (right, verdict), cfg=cfg, learned=learned, sinusoidal=sinusoidal)
    assert not exercises.check("10.1", (0, verdict), cfg=cfg, learned=learned, sinusoidal=sinusoidal)
    assert not exercises.check("10.1", (cfg.block_size * cfg.n_embd * cfg.n_layer, verdict), cfg=cfg,
                               learned=learned, sinusoidal=sinusoidal)
    assert not exercises.check("10.1", (right, "higher"), cfg=cfg, learned=learned, sinusoidal=sinusoidal)
    assert not exercises.check("10.1", (right, "lower"), cfg=cfg, learned=learned[:1], sinusoidal=sinusoidal[:1])
    noisy = [3.10, 3.30, 3.05, 3.25]  # no consistent sign across seeds
    assert compare(noisy, sinusoidal, paired=True).verdict == "cannot be told apart"
    assert exercises.check("10.1", (right, "cannot be told apart"), cfg=cfg, learned=noisy, sinusoidal=sinusoidal)
    assert not exercises.check("10.1", (right, "lower"), cfg=cfg, learned=noisy, sinusoidal=sinusoidal)


def test_exercise_07_2_parameter_count_from_the_config(tok, lenient):
    from lmkit import exercises
    from lmkit.exercises import ex10

    gpt = small_gpt(len(tok))
    cfg = gpt.config
    count = lambda L, d: cfg.vocab_size * d + L * (12 * d * d + 13 * d) + 2 * d  # noqa: E731
    right = (count(cfg.n_layer, cfg.n_embd), count(12, 768))
    assert right[0] == tg.n_params(gpt) == ex10.n_params_of(cfg)
    assert exercises.check("10.2", right, cfg=cfg)
    assert not exercises.check("10.2", (right[0], right[1] - 2 * 768), cfg=cfg)  # forgot the final LayerNorm
    assert not exercises.check("10.2", (right[0] - cfg.vocab_size * cfg.n_embd, right[1]), cfg=cfg)  # untied head
    assert not exercises.check("10.2", right[0], cfg=cfg)  # not a pair: feedback, not a crash


def test_exercise_07_3_one_pass_scores_every_position(tok, lenient):
    from lmkit import exercises

    gpt = small_gpt(len(tok))
    with torch.no_grad():  # weights far from the small init, so that what a position sees shows in the loss
        for p in gpt.parameters():
            p.normal_(0.0, 0.5)
    ids = tok.encode(TEXT[: gpt.config.block_size + 1])
    with torch.no_grad():
        right = gpt(ids[:-1][None], ids[1:][None]).loss.item()
    assert exercises.check("10.3", right, model=gpt, ids=ids)
    assert not exercises.check("10.3", right + 0.01, model=gpt, ids=ids)
    # without the causal mask one pass no longer equals the prefix passes: the check catches a model that cheats
    for block in gpt.blocks:
        block.attn.mask.fill_(True)
    with torch.no_grad():
        leaky = gpt(ids[:-1][None], ids[1:][None]).loss.item()
    assert not exercises.check("10.3", leaky, model=gpt, ids=ids)


def test_exercise_07_4_attention_against_the_fused_kernel(tok, lenient):
    from lmkit import exercises

    attn = small_gpt(len(tok)).blocks[0].attn
    x = torch.randn(2, 10, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        right = attn(x)
        q, k, v = (t.view(2, 10, 2, 8).transpose(1, 2) for t in attn.qkv(x).split(16, dim=2))
        unmasked = attn.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 10, 16))
    assert exercises.check("10.4", right, attn=attn)
    assert not exercises.check("10.4", unmasked, attn=attn)  # forgot the causal mask
    assert not exercises.check("10.4", right[:, :5], attn=attn)  # wrong shape: feedback, not a crash
