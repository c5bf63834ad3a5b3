"""lmkit.interp: every identity of notebook 11 on a tiny random Llama, and on the real model (integration)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lmkit import interp

CLEAN, CORRUPT = "the cat sat on the mat", "the dog sat on the mat"
ANSWER, FOIL = "house", "red"


@pytest.fixture()
def forward_count(tiny_lm):
    """Counts forward passes of the tiny model while the test runs."""
    calls = []
    handle = tiny_lm.model.register_forward_pre_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


def n_hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def last_logits(lm, text):
    with torch.inference_mode():
        return lm.model(lm.encode(text)).logits[0, -1].float()


# ----------------------------------------------------------------------------------------------- hooks
def test_hooks_leave_the_model_as_it_was(tiny_lm):
    ids = tiny_lm.encode(CLEAN)
    before = n_hooks(tiny_lm.model)
    logits, cache = interp.run_with_cache(tiny_lm, ids)
    assert n_hooks(tiny_lm.model) == before
    assert torch.equal(logits[0, -1], last_logits(tiny_lm, CLEAN))
    n = tiny_lm.model.config.num_hidden_layers
    assert len(cache) == 2 + 4 * n
    # the residual stream is the sum of its parts: embedding + every attention and MLP output
    total = cache[("embed", 0)] + sum(cache[("attn", l)] + cache[("mlp", l)] for l in range(n))
    assert torch.allclose(total, cache[("resid", n - 1)], atol=1e-5)
    assert torch.equal(cache[("resid", n - 1)], cache[("final", 0)])


def test_hooks_are_removed_when_the_pass_fails(tiny_lm):
    before = n_hooks(tiny_lm.model)

    def broken(x):
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        interp.run(tiny_lm, tiny_lm.encode(CLEAN), {("mlp", 0): broken})
    assert n_hooks(tiny_lm.model) == before


# ----------------------------------------------------------------------------------------------- attribution
@pytest.mark.parametrize("foil", [None, FOIL])
def test_logit_attribution_sums_to_the_logit(tiny_lm, foil):
    s = interp.logit_attribution(tiny_lm, CLEAN, ANSWER, foil)
    cfg = tiny_lm.model.config
    assert len(s) == 1 + cfg.num_hidden_layers * (cfg.num_attention_heads + 1)
    assert s.index[0] == "embedding" and s.index[1] == "L0H0" and s.index[-1] == f"L{cfg.num_hidden_layers - 1}.mlp"
    logits = last_logits(tiny_lm, CLEAN)
    a, f = interp.answer_id(tiny_lm, ANSWER), interp.answer_id(tiny_lm, FOIL)
    expected = logits[a] - (logits[f] if foil else 0)
    assert s.sum() == pytest.approx(expected.item(), abs=1e-4)
    assert s.name == ("logit" if foil is None else "logit difference")


def test_head_parts_sum_to_the_attention_output(tiny_lm):
    names, parts, x_final = interp.components(tiny_lm, CLEAN)
    _, cache = interp.run_with_cache(tiny_lm, tiny_lm.encode(CLEAN))
    heads = [i for i, n in enumerate(names) if n.startswith("L1H")]
    assert torch.allclose(parts[heads].sum(0).float(), cache[("attn", 1)][0, -1], atol=1e-5)
    assert torch.allclose(parts.sum(0), x_final, atol=1e-5)


# ----------------------------------------------------------------------------------------------- patching
def test_patching_identities(tiny_lm):
    n = tiny_lm.model.config.num_hidden_layers
    p = interp.patch(tiny_lm, CLEAN, CORRUPT, ANSWER, FOIL)
    assert p.shape == (n, 6)
    assert p[-1, -1].item() == pytest.approx(1.0, abs=1e-4)      # the whole stream the unembedding reads
    assert p[:, 0].abs().max().item() < 1e-6                       # position 0 is the same in both prompts
    assert p[-1, :-1].abs().max().item() < 1e-6                    # after the last layer only the last position counts
    assert not torch.allclose(p[0, 1], torch.tensor(0.0))           # the swapped word matters somewhere
    whole = interp.patch(tiny_lm, CLEAN, CORRUPT, ANSWER, FOIL, per_position=False)
    assert torch.allclose(whole, torch.ones(n), atol=1e-4)          # every position at one layer: the clean run


def test_no_patch_gives_the_corrupted_metric_and_the_last_stream_the_clean_one(tiny_lm):
    n = tiny_lm.model.config.num_hidden_layers
    m_clean = interp.logit_diff(tiny_lm, CLEAN, ANSWER, FOIL)
    m_corrupt = interp.logit_diff(tiny_lm, CORRUPT, ANSWER, FOIL)
    assert interp.normalise(interp.logit_diff(tiny_lm, CORRUPT, ANSWER, FOIL, edits={}), m_corrupt, m_clean) == 0
    _, cache = interp.run_with_cache(tiny_lm, tiny_lm.encode(CLEAN), [("resid", n - 1)])
    edit = interp.replace_positions(cache[("resid", n - 1)][0], [(0, [5])])
    restored = interp.logit_diff(tiny_lm, CORRUPT, ANSWER, FOIL, edits={("resid", n - 1): edit})
    assert interp.normalise(restored, m_corrupt, m_clean) == pytest.approx(1.0, abs=1e-5)


def test_all_heads_patched_equals_the_attention_block_patched(tiny_lm):
    cfg = tiny_lm.model.config
    heads = interp.patch(tiny_lm, CLEAN, CORRUPT, ANSWER, FOIL, where="head")
    assert heads.shape == (cfg.num_hidden_layers, cfg.num_attention_heads)
    attn = interp.patch(tiny_lm, CLEAN, CORRUPT, ANSWER, FOIL, where="attn", per_position=False)
    m_clean = interp.logit_diff(tiny_lm, CLEAN, ANSWER, FOIL)
    m_corrupt = interp.logit_diff(tiny_lm, CORRUPT, ANSWER, FOIL)
    for layer in range(cfg.num_hidden_layers):
        _, cache = interp.run_with_cache(tiny_lm, tiny_lm.encode(CLEAN), [("z", layer)])
        edit = interp.replace_heads(cache[("z", layer)][0], [(0, h) for h in range(cfg.num_attention_heads)],
                                    cfg.head_dim)
        m = interp.logit_diff(tiny_lm, CORRUPT, ANSWER, FOIL, edits={("z", layer): edit})
        assert interp.normalise(m, m_corrupt, m_clean) == pytest.approx(attn[layer].item(), abs=1e-5)


@pytest.mark.parametrize("where", ["attn", "mlp"])
def test_block_patching_shapes(tiny_lm, where):
    p = interp.patch(tiny_lm, CLEAN, CORRUPT, ANSWER, FOIL, where=where)
    assert p.shape == (tiny_lm.model.config.num_hidden_layers, 6)
    assert p[:, 0].abs().max().item() < 1e-6


@pytest.mark.parametrize("where", ["resid", "head", "attn"])
def test_nnsight_gives_the_same_patching(tiny_lm, where):
    pytest.importorskip("nnsight")
    from lmkit.interp.crosscheck import nnsight_patch

    ours = interp.patch(tiny_lm, CLEAN, CORRUPT, ANSWER, FOIL, where=where)
    theirs = nnsight_patch(tiny_lm, CLEAN, CORRUPT, ANSWER, FOIL, where=where)
    assert theirs.shape == ours.shape
    assert torch.allclose(ours, theirs, atol=1e-4)


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, match", [
    (lambda lm: interp.patch(lm, "the cat sat", "the big cat sat", ANSWER, FOIL), "3 tokens and corrupt prompt 4"),
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, "house red", FOIL), "is 2 tokens"),
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, ANSWER, FOIL, where="neurons"), "where='neurons'"),
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, ANSWER, ANSWER), "same token"),
    (lambda lm: interp.logit_attribution(lm, CLEAN, "cat dog"), "is 2 tokens"),
    (lambda lm: interp.steering_vector(lm, ["the cat"], ["the dog"], 7), "layer=7 is out of range"),
    (lambda lm: interp.steering_vector(lm, ["the cat"], ["the dog"], -3), "layer=-3 is out of range"),
    (lambda lm: interp.steering_vector(lm, [], ["the dog"], 0), "positive must be a non-empty list"),
    (lambda lm: interp.repeated_tokens(lm, seq_len=1), "seq_len=1"),
    (lambda lm: interp.ablation_edits(lm, [(0, 9)]), "head=9 is out of range"),
    (lambda lm: interp.ablation_edits(lm, [(5, 0)]), "layer=5 is out of range"),
    (lambda lm: interp.ablation_edits(lm, [(0, 0)], how="mean"), "needs means"),
])
def test_bad_input_is_one_line_before_any_forward_pass(tiny_lm, forward_count, call, match):
    with pytest.raises(ValueError, match=match) as err:
        call(tiny_lm)
    assert "\n" not in str(err.value)
    assert not forward_count


def test_steer_refuses_a_vector_of_the_wrong_width(tiny_lm):
    with pytest.raises(ValueError, match=r"pass a \[32\] tensor"):
        with interp.steer(tiny_lm, torch.zeros(5), 0):
            pass


# ----------------------------------------------------------------------------------------------- induction
def test_induction_scores_read_the_attention_one_offset_back(tiny_lm):
    tokens = interp.repeated_tokens(tiny_lm, seq_len=5, n_seqs=3, seed=1)
    assert tokens.shape == (3, 11)
    assert torch.equal(tokens[:, 1:6], tokens[:, 6:])
    assert not set(tokens[:, 1:].flatten().tolist()) & set(tiny_lm.tokenizer.all_special_ids)
    assert torch.equal(tokens, interp.repeated_tokens(tiny_lm, seq_len=5, n_seqs=3, seed=1))
    scores = interp.induction_scores(tiny_lm, tokens=tokens)
    cfg = tiny_lm.model.config
    assert scores.shape == (cfg.num_hidden_layers, cfg.num_attention_heads)
    with torch.inference_mode():
        att = tiny_lm.model(tokens, output_attentions=True).attentions
    layer, head, q = 1, 2, 8                                     # query 8 repeats position 3; its successor is 4
    manual = torch.stack([att[layer][:, head, 6 + k, 2 + k] for k in range(5)]).mean()
    assert scores[layer, head].item() == pytest.approx(manual.item(), abs=1e-6)
    assert att[layer][0, head, q, 4].item() > 0                  # the indexing above reads real entries


def test_repeat_losses_match_the_models_own_loss(tiny_lm):
    tokens = interp.repeated_tokens(tiny_lm, seq_len=5, n_seqs=2)
    losses = interp.repeat_losses(tiny_lm, tokens)
    assert losses.shape == (2, 10)
    with torch.inference_mode():
        loss = tiny_lm.model(tokens, labels=tokens).loss
    assert losses.mean().item() == pytest.approx(loss.item(), abs=1e-5)


def test_ablating_every_head_of_a_layer_zeroes_its_attention_output(tiny_lm):
    tokens = interp.repeated_tokens(tiny_lm, seq_len=5, n_seqs=2)
    heads = [(1, h) for h in range(tiny_lm.model.config.num_attention_heads)]
    with interp.ablate_heads(tiny_lm, heads, "zero"):
        ablated = interp.run(tiny_lm, tokens)
    zeroed = interp.run(tiny_lm, tokens, {("attn", 1): torch.zeros_like})
    assert torch.allclose(ablated, zeroed, atol=1e-6)
    means = interp.head_means(tiny_lm, tokens)
    with interp.ablate_heads(tiny_lm, [(0, 1)], "mean", means):
        _, cache = interp.run_with_cache(tiny_lm, tokens, [("z", 0)])
    d_k = tiny_lm.model.config.head_dim
    assert torch.allclose(cache[("z", 0)][..., d_k:2 * d_k], means[0][d_k:2 * d_k].expand(2, 11, d_k))
    assert not torch.allclose(ablated, interp.run(tiny_lm, tokens))


def test_random_heads_are_distinct_and_avoid_the_excluded(tiny_lm):
    picked = interp.random_heads(tiny_lm, 5, seed=3, exclude=[(0, 0), (1, 1)])
    assert len(set(picked)) == 5 and not {(0, 0), (1, 1)} & set(picked)
    assert picked == interp.random_heads(tiny_lm, 5, seed=3, exclude=[(0, 0), (1, 1)])


# ----------------------------------------------------------------------------------------------- steering
def test_steering_vector_is_the_mean_difference_and_steer_adds_it(tiny_lm):
    pos, neg = ["the cat is big", "a red dog ran"], ["the mat is small"]
    v = interp.steering_vector(tiny_lm, pos, neg, 0)
    with torch.inference_mode():
        hs = [tiny_lm.model(tiny_lm.encode(t), output_hidden_states=True).hidden_states[1][0].mean(0) for t in pos + neg]
    before = n_hooks(tiny_lm.model)           # transformers keeps hooks of its own once hidden states are asked for
    assert torch.allclose(v, (hs[0] + hs[1]) / 2 - hs[2], atol=1e-5)
    ids = tiny_lm.encode(CLEAN)
    _, plain = interp.run_with_cache(tiny_lm, ids, [("resid", 0), ("resid", 1)])
    with interp.steer(tiny_lm, v, 0, coeff=3.0):
        _, steered = interp.run_with_cache(tiny_lm, ids, [("resid", 0), ("resid", 1)])
    assert torch.allclose(steered[("resid", 0)] - plain[("resid", 0)], 3.0 * v.expand(1, 6, -1), atol=1e-5)
    assert not torch.allclose(steered[("resid", 1)], plain[("resid", 1)] + 3.0 * v, atol=1e-3)   # it propagates
    assert n_hooks(tiny_lm.model) == before


def test_steered_generation_with_coefficient_zero_is_plain_generation(tiny_lm):
    from lmkit.generate import generate

    v = interp.steering_vector(tiny_lm, ["the cat is big"], ["the mat is small"], 1)
    plain = generate(tiny_lm, "the cat", max_new_tokens=6)
    assert interp.steered_generate(tiny_lm, "the cat", v, 1, 0.0, max_new_tokens=6) == plain
    assert interp.steered_generate(tiny_lm, "the cat", v, 1, 50.0, max_new_tokens=6) != plain


# ----------------------------------------------------------------------------------------------- probes
def test_control_labels_are_balanced_fixed_per_type_and_seeded():
    types = ["walk", "run", "swim", "ride", "walk", "run"]
    labels = interp.control_labels(types, seed=0)
    assert set(labels) == {"walk", "run", "swim", "ride"} and sum(labels.values()) == 2
    assert labels == interp.control_labels(types, seed=0)
    assert any(interp.control_labels(types, seed=s) != labels for s in range(1, 6))


def test_probe_reads_a_planted_direction_and_not_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    noise = torch.tensor(rng.normal(size=(2, 200, 16)), dtype=torch.float32)
    planted = noise.clone()
    planted[1, :, 3] += torch.tensor(4.0 * (2 * y - 1), dtype=torch.float32)
    train = np.arange(200) < 150
    acc = interp.probe_accuracy(planted, y, train)
    assert acc.shape == (2,)
    assert acc[1] > 0.95 and acc[0] < 0.75
    with pytest.raises(ValueError, match="train selects all rows"):
        interp.probe_accuracy(planted, y, np.ones(200, bool))


def test_noun_verb_set_is_balanced_per_word():
    rows = interp.noun_verb_data()
    assert len(rows) == 320
    for word in {r["word"] for r in rows}:
        labels = [r["label"] for r in rows if r["word"] == word]
        assert labels.count("noun") == labels.count("verb") == 8
    assert {r["frame"] for r in rows if r["split"] == "test"}.isdisjoint({r["frame"] for r in rows
                                                                          if r["split"] == "train"})
    with pytest.raises(ValueError, match="not in the set"):
        interp.noun_verb_data(["walk", "teleport"])


def test_word_activations_are_the_hidden_states_at_the_word(tiny_lm):
    texts, words = ["the cat sat on the mat", "a big dog ran"], ["mat", "dog"]
    acts = interp.word_activations(tiny_lm, texts, words)
    n = tiny_lm.model.config.num_hidden_layers
    assert acts.shape == (n + 1, 2, 32)
    with torch.inference_mode():
        hs = tiny_lm.model(tiny_lm.encode(texts[1]), output_hidden_states=True).hidden_states
    for row in range(n):                                # transformers' last row comes after the final norm
        assert torch.allclose(acts[row, 1], hs[row][0, 2], atol=1e-6)


# ----------------------------------------------------------------------------------------------- the real model
FACT = ("The Eiffel Tower is in the city of", "The Colosseum is in the city of", " Paris", " Rome")


@pytest.mark.integration
def test_real_model_attribution_and_patching_identities(real_lm):
    clean, corrupt, answer, foil = FACT
    s = interp.logit_attribution(real_lm, clean, answer, foil)
    logits = last_logits(real_lm, clean)
    a, f = interp.answer_id(real_lm, answer), interp.answer_id(real_lm, foil)
    assert len(s) == 1 + 30 * 10
    assert s.sum() == pytest.approx((logits[a] - logits[f]).item(), abs=1e-4)
    assert (logits[a] - logits[f]).item() > 0 and interp.logit_diff(real_lm, corrupt, answer, foil) < 0
    p = interp.patch(real_lm, clean, corrupt, answer, foil)
    assert p.shape == (30, 9)
    assert p[-1, -1].item() == pytest.approx(1.0, abs=1e-4)
    assert p[:, 0].abs().max().item() < 1e-5                     # "The" is shared: patching it changes nothing
    with pytest.raises(ValueError, match="is 2 tokens"):
        interp.patch(real_lm, clean, corrupt, " Parisians", foil)
    with pytest.raises(ValueError, match="9 tokens and corrupt prompt"):
        interp.patch(real_lm, clean, "The Louvre museum is found in the city of", answer, foil)


@pytest.mark.integration
def test_real_model_nnsight_crosscheck(real_lm):
    pytest.importorskip("nnsight")
    from lmkit.interp.crosscheck import nnsight_patch

    clean, corrupt, answer, foil = FACT
    ours = interp.patch(real_lm, clean, corrupt, answer, foil, where="head")
    assert torch.allclose(ours, nnsight_patch(real_lm, clean, corrupt, answer, foil, where="head"), atol=1e-4)


@pytest.mark.integration
def test_real_model_induction_heads_matter(real_lm):
    tokens = interp.repeated_tokens(real_lm, seq_len=30, n_seqs=4)
    scores = interp.induction_scores(real_lm, tokens=tokens)
    losses = interp.repeat_losses(real_lm, tokens)
    assert losses[:, 30:].mean() < losses[:, :30].mean() - 2        # the second repeat is predicted
    top = [divmod(int(i), 9) for i in scores.flatten().argsort(descending=True)[:5]]
    assert scores.max().item() > 0.5
    with interp.ablate_heads(real_lm, top, "zero"):
        ablated = interp.repeat_losses(real_lm, tokens)[:, 30:].mean()
    with interp.ablate_heads(real_lm, interp.random_heads(real_lm, 5, seed=0, exclude=top), "zero"):
        random = interp.repeat_losses(real_lm, tokens)[:, 30:].mean()
    assert ablated > random > 0
