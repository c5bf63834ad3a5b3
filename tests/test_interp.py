"""lmkit.interp: every identity of notebook 05 on a tiny random Llama, and on the real model (integration)."""
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
    # issue 31, kind 1: pairing by index, and positions past the model's context (the tiny model has 128)
    (lambda lm: interp.word_activations(lm, [CLEAN] * 4, ["mat"]), "4 texts and 1 words"),
    (lambda lm: interp.word_activations(lm, ["the cat sat", "the cat " * 70 + "sat"], ["cat", "cat"], batch_size=1),
     r"texts\[1\] is 141 tokens but the model's context holds 128"),
    (lambda lm: interp.logit_diff(lm, "the cat " * 70, ANSWER), "is 140 tokens but the model's context holds 128"),
    (lambda lm: interp.repeated_tokens(lm, seq_len=64), "seq_len=64 must be an integer in \\[2, 63\\]"),
    (lambda lm: interp.induction_scores(lm, tokens=torch.tensor([[1, 5, 6, 7, 5, 6, 8]])), "differ"),
    (lambda lm: interp.induction_scores(lm, tokens=torch.tensor([[1, 5, 6, 5, 6, 7]])), "6 columns"),
    # kind 2 and 6: the checks patch shares with nnsight_patch, all before any forward pass
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, ANSWER, FOIL, layers=[]), r"layers=\[\] is empty"),
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, ANSWER, FOIL, layers=1), "layers=1 is not a list"),
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, ANSWER, FOIL, layers=[True]), "layer=True"),
    (lambda lm: interp.patch(lm, CLEAN, CLEAN, ANSWER, FOIL), "clean and corrupt prompts are the same 6 tokens"),
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, ANSWER, None), "foil=None"),
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, ANSWER, FOIL, per_position=1), "per_position=1"),
    (lambda lm: interp.logit_diff(lm, CLEAN, ANSWER, ANSWER), "same token"),
    (lambda lm: interp.logit_attribution(lm, CLEAN, ANSWER, ANSWER), "same token"),
    # kind 5: numbers and tensors
    (lambda lm: interp.steered_generate(lm, "the cat", torch.ones(32), 0, float("nan"), max_new_tokens=3),
     "coeff=nan must be a finite number"),
    (lambda lm: interp.steered_generate(lm, "the cat", torch.ones(32), 0, float("inf"), max_new_tokens=3),
     "coeff=inf must be a finite number"),
    (lambda lm: interp.steered_generate(lm, "the cat", torch.ones(32), 0, "4", max_new_tokens=3), "coeff='4'"),
    (lambda lm: interp.steered_generate(lm, "the cat", torch.ones(32), 0, True, max_new_tokens=3), "coeff=True"),
    (lambda lm: interp.steered_generate(lm, "the cat", torch.full((32,), float("nan")), 0, 1.0, max_new_tokens=3),
     "vector holds NaN"),
    (lambda lm: interp.steered_generate(lm, "the cat", [0.0] * 32, 0, 1.0, max_new_tokens=3), "not a float tensor"),
    (lambda lm: interp.steered_generate(lm, "the cat", torch.ones(32), 0, 1.0, max_new_tokens=0),
     "max_new_tokens=0"),
    (lambda lm: interp.run(lm, torch.tensor([[1, 999]])), r"holds the id 999, outside the vocabulary 0\.\.38"),
    (lambda lm: interp.run(lm, torch.tensor([[-1, 5]])), "holds the id -1"),
    (lambda lm: interp.run(lm, torch.tensor([[1.0, 5.0]])), "not integer token ids"),
    (lambda lm: interp.run(lm, torch.zeros(1, 0, dtype=torch.long)), "no tokens"),
    (lambda lm: interp.run(lm, lm.encode(CLEAN), {("resid", 0): 3}), "not a function"),
    (lambda lm: interp.run(lm, lm.encode(CLEAN), [("resid", 0)]), "is not a dict"),
    (lambda lm: interp.run_with_cache(lm, lm.encode(CLEAN), []), r"points=\[\] records nothing"),
    (lambda lm: interp.run_with_cache(lm, lm.encode(CLEAN), ("resid", 0)), "not a list of \\(point, layer\\)"),
    (lambda lm: interp.repeat_losses(lm, torch.tensor([[5]])), "at least two"),
    (lambda lm: interp.ablation_edits(lm, []), "must be a non-empty list of \\(layer, head\\) pairs"),
    (lambda lm: interp.ablation_edits(lm, [(0, 1)], how="mean", means={1: torch.zeros(32)}),
     "means has no \\[32\\] tensor for layer 0"),
    (lambda lm: interp.random_heads(lm, 0), "k=0 must be an integer in"),
    (lambda lm: interp.random_heads(lm, 2.5), "k=2.5"),
    (lambda lm: interp.random_heads(lm, 1, exclude=[0, 1]), "exclude=\\[0, 1\\] must be a list of"),
    (lambda lm: interp.replace_positions(torch.zeros(6, 32), [(0, [6])]), "position=6 is out of range"),
    (lambda lm: interp.replace_positions(torch.zeros(6, 32), []), "rows_positions=\\[\\] must be a non-empty"),
    (lambda lm: interp.replace_heads(torch.zeros(6, 32), [(0, 4)], 8), "head=4 is out of range"),
    (lambda lm: interp.normalise(0.5, 1.0, 1.0), "clean=1.0 equals corrupted=1.0"),
    (lambda lm: interp.normalise(0.5, float("nan"), 1.0), "corrupted=nan"),
    # kind 4: special-token text in an answer, and in probe data
    (lambda lm: interp.logit_diff(lm, CLEAN, "<|im_end|>"),
     r"answer='<\|im_end\|>' contains the special token '<\|im_end\|>': an answer is text; .* \(answer=2\)"),
    (lambda lm: interp.patch(lm, CLEAN, CORRUPT, ANSWER, "<|endoftext|>"), r"\(foil=0\)"),
    (lambda lm: interp.word_activations(lm, [CLEAN, "the dog ran<|im_end|>"], ["mat", "dog"]),
     r"texts\[1\]='the dog ran<\|im_end\|>' contains the special token"),
])
def test_bad_input_is_one_line_before_any_forward_pass(tiny_lm, forward_count, call, match):
    with pytest.raises(ValueError, match=match) as err:
        call(tiny_lm)
    assert "\n" not in str(err.value)
    assert not forward_count


NNSIGHT_BAD = [
    dict(clean=CLEAN, corrupt=CORRUPT, answer=ANSWER, foil=ANSWER),
    dict(clean=CLEAN, corrupt=CLEAN, answer=ANSWER, foil=FOIL),
    dict(clean=CLEAN, corrupt=CORRUPT, answer=ANSWER, foil=FOIL, layers=[]),
    dict(clean=CLEAN, corrupt=CORRUPT, answer=ANSWER, foil=FOIL, where="neurons"),
    dict(clean="the cat sat", corrupt="the big cat sat", answer=ANSWER, foil=FOIL),
    dict(clean=CLEAN, corrupt=CORRUPT, answer=ANSWER, foil="<|im_end|>"),
]


@pytest.mark.parametrize("kwargs", NNSIGHT_BAD, ids=["same-answer", "same-prompt", "no-layers", "where", "lengths",
                                                     "special"])
def test_nnsight_patch_refuses_what_patch_refuses_with_the_same_message(tiny_lm, forward_count, kwargs):
    """One validation (check_patch) for both: before, nnsight_patch returned all-NaN for answer == foil."""
    pytest.importorskip("nnsight")
    from lmkit.interp.crosscheck import nnsight_patch

    with pytest.raises(ValueError) as ours:
        interp.patch(tiny_lm, **kwargs)
    with pytest.raises(ValueError) as theirs:
        nnsight_patch(tiny_lm, **kwargs)
    assert str(theirs.value) == str(ours.value) and "\n" not in str(ours.value)
    assert not forward_count


def test_runs_that_agree_are_refused_by_both_before_the_patched_runs(tiny_lm):
    """With every attention and MLP output zeroed, the last position's logits depend on the last token alone, so two
    prompts that end alike give the same logit difference: normalising would divide by zero (NaN before)."""
    import copy

    lm = copy.copy(tiny_lm)
    lm.model = copy.deepcopy(tiny_lm.model)
    with torch.no_grad():
        for block in lm.model.model.layers:
            block.self_attn.o_proj.weight.zero_()
            block.mlp.down_proj.weight.zero_()
    assert interp.logit_diff(lm, CLEAN, ANSWER, FOIL) == interp.logit_diff(lm, CORRUPT, ANSWER, FOIL)
    calls = []
    lm.model.register_forward_pre_hook(lambda *_: calls.append(1))
    with pytest.raises(ValueError, match="give the same logit difference"):
        interp.patch(lm, CLEAN, CORRUPT, ANSWER, FOIL)
    assert len(calls) == 2                                       # the clean and the corrupted run, no patched one
    pytest.importorskip("nnsight")
    from lmkit.interp.crosscheck import nnsight_patch

    with pytest.raises(ValueError, match="give the same logit difference"):
        nnsight_patch(lm, CLEAN, CORRUPT, ANSWER, FOIL)


def test_nnsight_patch_refuses_a_wrapper_of_another_model(tiny_lm, forward_count):
    pytest.importorskip("nnsight")
    from lmkit.interp.crosscheck import nnsight_model, nnsight_patch
    from conftest import make_model

    import copy

    other = copy.copy(tiny_lm)
    other.model = make_model(tiny_lm.model.config.vocab_size, seed=1)
    with pytest.raises(ValueError, match="does not wrap lm.model"):
        nnsight_patch(tiny_lm, CLEAN, CORRUPT, ANSWER, FOIL, model=nnsight_model(other))
    assert not forward_count


def test_a_special_token_is_asked_for_by_id(tiny_lm):
    eos = tiny_lm.tokenizer.eos_token_id
    assert interp.answer_id(tiny_lm, eos) == eos
    last = last_logits(tiny_lm, CLEAN)
    assert interp.logit_diff(tiny_lm, CLEAN, eos, ANSWER) == pytest.approx(
        (last[eos] - last[interp.answer_id(tiny_lm, ANSWER)]).item(), abs=1e-5)


def test_plots_refuse_labels_that_do_not_fit(tiny_lm):
    n = tiny_lm.model.config.num_hidden_layers
    with pytest.raises(ValueError, match=r"result is \(2, 6\) but there are 2 row labels and 5 column labels"):
        interp.plot_patching(torch.zeros(n, 6), range(n), list("abcde"))
    with pytest.raises(ValueError, match="pass a \\[rows, columns\\] tensor"):
        interp.plot_patching(torch.zeros(n), range(n), ["all"])
    s = interp.logit_attribution(tiny_lm, CLEAN, ANSWER, FOIL)
    with pytest.raises(ValueError, match="series has no 'L2H0'"):
        interp.plot_attribution(s, n + 1, 4)
    with pytest.raises(ValueError, match="curve 'task' has 3 values but layers has 2"):
        interp.plot_probes({"task": [0.5, 0.6, 0.7]}, layers=[0, 1])
    with pytest.raises(ValueError, match="curves=\\{\\} must be a non-empty dict"):
        interp.plot_probes({})


def test_probe_inputs_are_checked():
    feats = torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match="train has dtype int64, not booleans"):
        interp.probe_accuracy(feats, [0, 1, 0, 1], np.array([1, 1, 0, 0]))
    with pytest.raises(ValueError, match="the training rows all have the label 0"):
        interp.probe_accuracy(feats, [0, 0, 1, 1], np.array([True, True, False, False]))
    with pytest.raises(ValueError, match="features hold NaN"):
        interp.probe_accuracy(torch.full((2, 4, 3), float("nan")), [0, 1, 0, 1], np.array([True, True, False, False]))
    with pytest.raises(ValueError, match="c=nan"):
        interp.probe_accuracy(feats, [0, 1, 0, 1], np.array([True, True, False, False]), c=float("nan"))
    with pytest.raises(ValueError, match="types must be a non-empty list of word types"):
        interp.control_labels([])


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
