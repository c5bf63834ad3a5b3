"""lmkit.speculative: speculative decoding is token-identical to greedy, counts its passes, keeps p when sampling."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from conftest import make_model, make_tokenizer
from lmkit import generate as G
from lmkit.models import LM

PROMPT = "the cat sat on the"
N = 20


def tiny(seed=0, layers=4, eos=True, **overrides) -> LM:
    tok = make_tokenizer()
    model = make_model(overrides.pop("vocab_size", len(tok)), seed=seed, num_hidden_layers=layers, **overrides)
    if not eos:
        model.generation_config.eos_token_id = None
    return LM(model=model, tokenizer=tok, device=torch.device("cpu"), name=f"tiny{layers}-{seed}")


@pytest.fixture(scope="module")
def target():
    return tiny(eos=False)


class Wrong(torch.nn.Module):
    """A draft that always proposes the target's SECOND choice, so every proposal is rejected (greedy)."""

    def __init__(self, target):
        super().__init__()
        self.inner, self.config = target, target.config

    def forward(self, input_ids, **kw):
        out = self.inner(input_ids=input_ids, **kw)
        out.logits[..., :] = out.logits.scatter(-1, out.logits.argmax(-1, keepdim=True), float("-inf"))
        return out


def drafts(target):
    return {"early exit 1": G.early_exit_draft(target, 1), "early exit 3": G.early_exit_draft(target, 3),
            "other model": tiny(seed=7, layers=2, eos=False), "itself": target, "always wrong": Wrong(target.model)}


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("name", ["early exit 1", "early exit 3", "other model", "itself", "always wrong"])
def test_greedy_speculative_is_token_identical_to_greedy(target, name, k):
    result = G.speculative(target, PROMPT, drafts(target)[name], num_draft_tokens=k, max_new_tokens=N)
    assert result.ids == G.reference(target, PROMPT, max_new_tokens=N)
    assert len(result.ids) == N and result.text == target.tokenizer.decode(result.ids, skip_special_tokens=True)
    assert 0 <= result.accepted <= result.verified <= result.proposed
    # a round judges its proposals up to the first rejection: every round that did not keep all k judged one more
    rounds_with_a_rejection = result.verified - result.accepted
    assert 0 <= rounds_with_a_rejection <= result.target_passes
    # every pass makes 1 token plus the accepted proposals
    assert result.target_passes + result.accepted == N


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("n", [1, 7, 20])
def test_draft_always_right_and_always_wrong_pass_counts(target, k, n):
    right = G.speculative(target, PROMPT, target, num_draft_tokens=k, max_new_tokens=n)
    assert right.acceptance_rate == 1.0 or right.proposed == 0
    assert right.target_passes == math.ceil(n / (k + 1))  # each pass: k accepted proposals + the target's own
    assert right.verified == right.proposed  # nothing rejected: every proposal was judged
    wrong = G.speculative(target, PROMPT, Wrong(target.model), num_draft_tokens=k, max_new_tokens=n)
    assert wrong.accepted == 0 and wrong.target_passes == n  # each pass: the target's own token only
    # every round but the last (which has no room left to propose) judges one proposal, rejects it, and never
    # looks at the other k - 1, so alpha is 0 whatever k is
    assert wrong.proposed == sum(min(k, n - 1 - i) for i in range(n)) and wrong.verified == n - 1
    assert n == 1 or wrong.acceptance_rate == 0.0
    assert right.ids == wrong.ids == G.reference(target, PROMPT, max_new_tokens=n)


def test_stops_at_eos_like_greedy():
    # weights large enough (initializer_range 0.3) that greedy runs reach the EOS token mid-run
    lm, free = tiny(seed=3, initializer_range=0.3), tiny(seed=3, eos=False, initializer_range=0.3)  # same weights
    eos = lm.tokenizer.eos_token_id
    for prompt in ("the cat", "a dog ran to", "one two three", "big red house"):
        run = G.reference(free, prompt, max_new_tokens=40, repetition_penalty=1.3)  # never stops early
        first = run.index(eos) if eos in run else None
        assert first is not None and 3 <= first < 39  # an EOS mid-run: after the first proposals, before the end
        expected = run[:first + 1]  # up to the first EOS, included
        assert G.reference(lm, prompt, max_new_tokens=40, repetition_penalty=1.3) == expected
        for draft in (G.early_exit_draft(lm, 2), lm):
            got = G.speculative(lm, prompt, draft, num_draft_tokens=3, max_new_tokens=40, repetition_penalty=1.3)
            assert got.ids == expected


def test_early_exit_draft_shares_weights_and_is_the_logit_lens(target):
    draft = G.early_exit_draft(target, 2)
    theirs = dict(target.model.named_parameters())
    for name, p in draft.model.named_parameters():
        assert p is theirs[name]  # the same tensors: no copy
    assert len(draft.model.model.layers) == 2 and draft.model.config.num_hidden_layers == 2
    assert target.model.config.num_hidden_layers == 4  # the target's config is untouched
    ids = target.encode(PROMPT)
    with torch.inference_mode():
        hidden = target.model(ids, output_hidden_states=True).hidden_states[2]
        lens = target.model.lm_head(target.model.model.norm(hidden))
        assert torch.allclose(draft.model(ids).logits, lens, atol=1e-5)


def test_transformers_assistant_model_gives_the_same_tokens(target):
    draft = G.early_exit_draft(target, 2)
    ids = target.encode(PROMPT)
    with torch.inference_mode():
        out = target.model.generate(ids, attention_mask=torch.ones_like(ids), assistant_model=draft.model,
                                    max_new_tokens=N, do_sample=False)
    assert out[0, ids.shape[1]:].tolist() == G.speculative(target, PROMPT, draft, max_new_tokens=N).ids


# ----------------------------------------------------------------------------------------------- sampling
def _verify_sampled_counts(n_rounds: int, seed: int = 0):
    """Run :func:`verify_sampled` ``n_rounds`` times on fixed synthetic distributions over 8 tokens, k = 2.

    The target's distributions ``P[0], P[1], P[2]`` do not depend on the prefix, so each output position must follow
    its own ``P[i]``: position 0 always, position 1 when proposal 0 was accepted, the bonus token (position 2) when
    both were. ``Q`` overlaps ``P`` by about two thirds, so a third of the mass goes through the residual.
    Returns ``(P, [counts at position 0, 1, 2])``."""
    from lmkit.decoding.speculative import verify_sampled

    V, k = 8, 2
    gen = torch.Generator().manual_seed(seed)
    P = torch.softmax(torch.randn(k + 1, V, generator=gen, dtype=torch.float64), -1)
    Q = torch.softmax(P[:k].log() + 0.9 * torch.randn(k, V, generator=gen, dtype=torch.float64), -1)
    torch.manual_seed(seed)
    proposals = torch.stack([torch.multinomial(Q[i], n_rounds, replacement=True) for i in range(k)], 1)
    cur = torch.cat([torch.zeros(n_rounds, 1, dtype=torch.long), proposals], 1)  # one context token, then x1, x2
    counts = torch.zeros(k + 1, V)
    for j in range(n_rounds):
        kept = verify_sampled(lambda ids, scores: scores, cur[j:j + 1], 1, P.log(), [Q[0], Q[1]])
        for i, token in enumerate(kept):
            counts[i, token] += 1
    return P, counts


def _chi_square_p_values(P, counts):
    from scipy.stats import chisquare

    return [float(chisquare(c.numpy(), c.sum().item() * P[i].numpy()).pvalue) for i, c in enumerate(counts)]


def test_verify_sampled_keeps_the_target_distribution_at_every_position():
    # ~40,000 rounds give ~95,000 output tokens: 40,000 at position 0, ~27,000 at 1, ~19,000 bonus tokens
    P, counts = _verify_sampled_counts(40_000)
    assert counts[2].sum() > 10_000  # the bonus position is well sampled
    assert min(_chi_square_p_values(P, counts)) > 1e-3


@pytest.mark.parametrize("bug", ["residual from q", "residual from p"])
def test_the_chi_square_check_catches_the_classic_resampling_bugs(monkeypatch, bug):
    from lmkit.decoding import speculative as S

    def wrong(p, q, token, u=None):  # the acceptance test is right; the draw after a rejection is not
        if float(torch.rand(())) < min(1.0, float(p[token]) / float(q[token])):
            return True, int(token)
        return False, int(torch.multinomial(q if bug == "residual from q" else p, 1))

    monkeypatch.setattr(S, "accept_or_resample", wrong)
    P, counts = _verify_sampled_counts(8_000)
    assert _chi_square_p_values(P, counts)[0] < 1e-6  # the first position already shows it


def test_accept_or_resample_keeps_the_target_distribution():
    from scipy.stats import chisquare

    from lmkit.speculative import accept_or_resample

    torch.manual_seed(0)
    for _ in range(3):
        p, q = torch.softmax(torch.randn(6) * 1.5, -1), torch.softmax(torch.randn(6) * 1.5, -1)
        counts = torch.zeros(6)
        for _ in range(20000):
            counts[accept_or_resample(p, q, int(torch.multinomial(q, 1)))[1]] += 1
        expected = 20000 * p.double() / p.double().sum()  # chisquare wants the two totals equal to 1e-8
        assert chisquare(counts.double().numpy(), expected.numpy()).pvalue > 1e-3


def test_sampling_is_reproducible_and_stays_in_the_filtered_support(target):
    draft = G.early_exit_draft(target, 1)
    kw = dict(do_sample=True, top_k=3, temperature=0.9, max_new_tokens=12)
    a = G.speculative(target, PROMPT, draft, num_draft_tokens=3, seed=1, **kw)
    assert a.ids == G.speculative(target, PROMPT, draft, num_draft_tokens=3, seed=1, **kw).ids
    assert a.ids != G.speculative(target, PROMPT, draft, num_draft_tokens=3, seed=2, **kw).ids
    seq = torch.cat([target.encode(PROMPT), torch.tensor([a.ids])], 1)
    n0 = target.encode(PROMPT).shape[1]
    with torch.inference_mode():
        logits = target.model(seq).logits[0, n0 - 1:-1]
    top3 = logits.topk(3, -1).indices
    assert all(t in row.tolist() for t, row in zip(a.ids, top3))  # top_k=3 of the TARGET at every step
    same = G.speculative(target, PROMPT, target, num_draft_tokens=3, seed=0, **kw)
    assert same.acceptance_rate == 1.0  # p == q: every proposal is accepted


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("k", [0, -1, 1.5, True, "4", None])
def test_bad_num_draft_tokens(target, monkeypatch, k):
    monkeypatch.setattr(target.model, "forward", lambda *a, **kw: pytest.fail("the model ran"))
    with pytest.raises(G.SettingsError, match=r"num_draft_tokens=.* must be an integer >= 1") as err:
        G.speculative(target, PROMPT, target, num_draft_tokens=k)
    assert "\n" not in str(err.value)


def test_draft_with_another_vocabulary_is_refused_before_any_work(target, monkeypatch):
    bigger = tiny(layers=1, vocab_size=len(target.tokenizer) + 5)
    shuffled = replace(tiny(layers=1), tokenizer=make_tokenizer())
    shuffled.tokenizer.add_tokens(["zebra"])  # same model size, another tokenizer
    monkeypatch.setattr(target.model, "forward", lambda *a, **kw: pytest.fail("the model ran"))
    for draft, extra in ((bigger, ""), (bigger.model, ""), (shuffled, "another tokenizer")):
        with pytest.raises(G.SettingsError, match="vocabulary .* differs from the target's") as err:
            G.speculative(target, PROMPT, draft)
        assert extra in str(err.value) and "early_exit_draft" in str(err.value)
    with pytest.raises(G.SettingsError, match="draft must be an lmkit LM"):
        G.speculative(target, PROMPT, "tiny")


@pytest.mark.parametrize("n", [0, 5, -1, 2.0, True])
def test_early_exit_draft_bad_depth(target, n):
    with pytest.raises(G.SettingsError, match=r"n_layers=.* must be an integer in \[1, 4\]"):
        G.early_exit_draft(target, n)


@pytest.mark.parametrize("settings", [dict(num_beams=2), dict(num_return_sequences=2, do_sample=True),
                                      dict(temperature=float("nan"), do_sample=True)])
def test_speculative_checks_its_settings(target, settings):
    with pytest.raises(G.SettingsError):
        G.speculative(target, PROMPT, target, **settings)


def test_expected_tokens_per_pass_formula():
    from lmkit.speculative import expected_tokens_per_pass

    assert expected_tokens_per_pass(0.0, 4) == 1.0 and expected_tokens_per_pass(1.0, 4) == 5.0
    assert expected_tokens_per_pass(0.5, 2) == pytest.approx(1 + 0.5 + 0.25)
