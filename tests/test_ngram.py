"""lmkit.ngram: interpolated (modified) Kneser-Ney n-gram LM on tiny hand-built corpora."""
import math

import numpy as np
import pytest
import torch

from lmkit import metrics
from lmkit.ngram import NGramLM, count_of_counts_discounts, neural_nll_with_context, ngram_keys

# Hand-built corpus over V = 4 ids. Bigram counts: (0,1):3 (1,2):2 (2,0):2 (1,3):1 (3,0):1.
# Continuation counts N1+(. w): w=0 <- {2, 3} = 2; w=1 <- {0} = 1; w=2 <- {1} = 1; w=3 <- {1} = 1; total 5.
CORPUS = [0, 1, 2, 0, 1, 3, 0, 1, 2]


def bigram():
    return NGramLM(2, vocab_size=4, discount=0.5).fit(CORPUS)


def test_unigram_level_by_hand():
    # P1(w) = (N1+(.w) - 0.5 + gamma / V) / 5, gamma = 4 types * 0.5 = 2  ->  0 : 2/5, the others 1/5
    assert bigram().probs() == pytest.approx([0.4, 0.2, 0.2, 0.2], abs=1e-12)


def test_bigram_probabilities_by_hand():
    lm = bigram()
    # history 1: c(1 .) = 3, two types -> gamma = 1;  P(2|1) = (2 - .5 + 1 * .2) / 3, P(3|1) = (1 - .5 + .2) / 3
    assert lm.probs([1]) == pytest.approx([0.4 / 3, 0.2 / 3, 1.7 / 3, 0.7 / 3], abs=1e-12)
    # history 0: c(0 .) = 3, one type -> gamma = .5;  P(1|0) = (3 - .5 + .5 * .2) / 3
    assert lm.probs([0]) == pytest.approx([0.2 / 3, 2.6 / 3, 0.1 / 3, 0.1 / 3], abs=1e-12)
    # only the last id of a longer history matters for a bigram
    assert lm.probs([3, 2, 0]) == pytest.approx(lm.probs([0]), abs=1e-15)


def test_continuation_counts_not_raw_counts_at_lower_orders():
    lm = NGramLM(2, vocab_size=4, discount=0.5).fit(CORPUS)
    assert [lm.count([w]) for w in range(4)] == [2, 1, 1, 1]      # raw unigram counts would be 3, 3, 2, 1
    assert lm.count([0, 1]) == 3 and lm.count([1, 0]) == 0
    uni = NGramLM(1, vocab_size=4, discount=0.5).fit(CORPUS)       # a unigram model: raw counts at its top order
    assert [uni.count([w]) for w in range(4)] == [3, 3, 2, 1]
    # P(w) = (c - .5 + 4 * .5 / 4) / 9
    assert uni.probs() == pytest.approx([3 / 9, 3 / 9, 2 / 9, 1 / 9], abs=1e-12)


def test_unseen_history_backs_off_entirely():
    lm = NGramLM(3, vocab_size=4, discount=0.5).fit(CORPUS)
    assert lm.count([3, 3, 0]) == 0
    np.testing.assert_allclose(lm.probs([3, 3]), lm.probs([3]), atol=1e-15)  # (3, 3) never seen as a history
    assert not np.allclose(lm.probs([0, 1]), lm.probs([1]))                  # (0, 1) was


def test_perplexity_of_known_cases():
    # Every id equally often -> a unigram model is uniform -> perplexity = V exactly.
    uniform = NGramLM(1, vocab_size=5).fit([0, 1, 2, 3, 4] * 3)
    assert uniform.perplexity([4, 2, 0, 1, 1, 3]) == pytest.approx(5.0, rel=1e-12)
    # Text 0 1 2 under the hand-built bigram: P(1|0) = 2.6/3, P(2|1) = 1.7/3 -> PPL = (2.6/3 * 1.7/3) ** -1/2
    assert bigram().perplexity([0, 1, 2]) == pytest.approx((2.6 / 3 * 1.7 / 3) ** -0.5, rel=1e-12)
    assert bigram().token_nll([0, 1, 2]) == pytest.approx([-math.log(2.6 / 3), -math.log(1.7 / 3)], rel=1e-12)


def test_modified_kn_discounts_from_counts_of_counts():
    counts = np.array([1, 1, 1, 1, 2, 2, 3, 4, 9])  # n1=4 n2=2 n3=1 n4=1 -> Y = 4 / (4 + 4) = .5
    d = count_of_counts_discounts(counts)
    assert d[1:] == pytest.approx([1 - 2 * .5 * 2 / 4, 2 - 3 * .5 * 1 / 2, 3 - 4 * .5 * 1 / 1])
    assert d[1:] == pytest.approx([0.5, 1.25, 1.0])
    # n4 = 0: D3+ cannot be estimated and falls back to Y = n1 / (n1 + 2 n2) = 2 / 6
    assert count_of_counts_discounts(np.array([1, 1, 2, 2, 3]))[3] == pytest.approx(1 / 3)


@pytest.mark.parametrize("discount", [None, 0.75])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distribution_sums_to_one_over_the_vocabulary_and_matches_the_vectorised_path(order, discount):
    rng = np.random.default_rng(order)
    V = 9  # ids 7 and 8 never occur in training
    train = [rng.integers(0, 7, 300), rng.integers(0, 5, 120)]
    lm = NGramLM(order, vocab_size=V, discount=discount).fit(train)
    text = np.concatenate([rng.integers(0, V, 60), train[0][:40]])
    for h in [(), (8,), (8, 7, 8), tuple(train[0][:3]), tuple(text[:5]), (0, 1, 2, 3, 4)]:
        p = lm.probs(list(h))
        assert p.shape == (V,) and (p > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
    # the vectorised token_probs agree with probs() at every position
    expected = [lm.probs(list(text[max(0, i - order + 1): i]))[text[i]] for i in range(1, len(text))]
    np.testing.assert_allclose(lm.token_probs(text), expected, rtol=1e-12)


def test_more_context_helps_on_a_deterministic_cycle():
    train = [0, 1, 2, 3, 0, 2, 1, 3] * 50  # after 0 comes 1 or 2; after (3, 0) 1 or 2; after (0, 1) always 2
    text = [0, 1, 2, 3, 0, 2, 1, 3] * 4
    ppl = [NGramLM(n, vocab_size=4).fit(train).perplexity(text) for n in (1, 2, 3)]
    assert ppl[0] > ppl[1] > ppl[2] and ppl[2] < 1.3


def test_sampling_is_reproducible_and_follows_the_distribution():
    lm = NGramLM(2, vocab_size=4, discount=0.5).fit(CORPUS)
    a, b = lm.sample(50, prompt=[0], seed=3), lm.sample(50, prompt=[0], seed=3)
    assert a == b and len(a) == 50 and all(0 <= t < 4 for t in a)
    draws = NGramLM(1, vocab_size=4, discount=0.5).fit(CORPUS).sample(6000, seed=0)
    freq = np.bincount(draws, minlength=4) / 6000
    np.testing.assert_allclose(freq, [3 / 9, 3 / 9, 2 / 9, 1 / 9], atol=0.02)
    greedy = NGramLM(2, vocab_size=4).fit(CORPUS).sample(6, prompt=[2], temperature=0.01)
    assert greedy == [0, 1, 2, 0, 1, 2]  # near-greedy follows the most frequent successor


def test_ngram_keys_are_base_v_numbers():
    assert ngram_keys(np.array([1, 2, 3, 0]), 3, 10).tolist() == [123, 230]


def test_seen_fraction_and_coverage():
    lm = NGramLM(2, vocab_size=4).fit(CORPUS)
    assert lm.seen_fraction([0, 1, 1, 3]) == pytest.approx(2 / 3)  # (0,1) and (1,3) seen, (1,1) not
    assert lm.covered([0, 1, 1, 3]).tolist() == [True, False, True]
    tri = NGramLM(3, vocab_size=4).fit(CORPUS)
    assert tri.covered([0, 1, 2, 2]).tolist() == [False, True, False]  # aligned with token_nll: ids 1..n-1


@pytest.mark.parametrize("make, match", [
    (lambda: NGramLM(0, 10), "order=0"),
    (lambda: NGramLM(5, 49152), "order <= 4"),
    (lambda: NGramLM(2, 10, discount=1.5), "discount=1.5"),
    (lambda: NGramLM(2, 4).fit([0, 1, 7]), "token id 7"),
    (lambda: NGramLM(2, 4).probs([0]), "not fitted"),
    (lambda: NGramLM(2, 4).fit(CORPUS).perplexity([1]), "at least 2"),
    (lambda: NGramLM(2, 4).fit(CORPUS).sample(3, temperature=0), "temperature=0"),
])
def test_bad_input_gives_one_line_value_errors(make, match):
    with pytest.raises(ValueError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_neural_nll_with_context_equals_a_stride_one_window(tiny_lm):
    ids = tiny_lm.encode("the cat sat on the mat and the dog ran to the big red house . one two three")[0]
    for context in (1, 3):
        batched = neural_nll_with_context(tiny_lm, ids, context, batch_size=5)
        slow = metrics.token_nll(tiny_lm, ids, window=context + 1, stride=1)
        torch.testing.assert_close(batched, slow, rtol=1e-5, atol=1e-5)
    # with a context as long as the text it is the ordinary full-context NLL
    torch.testing.assert_close(neural_nll_with_context(tiny_lm, ids, 64), metrics.token_nll(tiny_lm, ids),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.integration
def test_on_the_real_tokenizer_and_corpus(real_lm):
    from lmkit import data

    V = len(real_lm.tokenizer)
    train = real_lm.encode(data.read_work("sonnets"))[0].cpu().numpy()
    held = real_lm.encode(data.corpus("validation", max_chars=3000))[0].cpu().numpy()
    models = {n: NGramLM(n, vocab_size=V).fit(train) for n in (1, 3)}
    for m in models.values():
        p = m.probs(held[:10])
        assert p.shape == (V,) == (real_lm.model.config.vocab_size,)
        assert p.sum() == pytest.approx(1.0, abs=1e-9) and p.min() > 0
    # context helps even on a small corpus, and both are far better than uniform
    assert 1 < models[3].perplexity(held) < models[1].perplexity(held) < V / 10
    # the batched short-context NLL of the real model matches the sliding-window definition
    few = held[:12]
    torch.testing.assert_close(neural_nll_with_context(real_lm, few, 3),
                               metrics.token_nll(real_lm, few, window=4, stride=1), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------- exercises 01.x
TRAIN = [[0, 1, 2, 0, 1, 3], [0, 1, 2, 3, 3]]
HELD = [0, 1, 3, 0, 2, 2]


def test_exercise_laplace_perplexity(monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    V = 4
    counts = np.zeros((V, V))
    for seq in TRAIN:                       # dense bigram counts, within each work
        for a, b in zip(seq[:-1], seq[1:]):
            counts[a, b] += 1
    p = (counts + 1) / (counts.sum(1, keepdims=True) + V)
    right = math.exp(-np.mean([math.log(p[a, b]) for a, b in zip(HELD[:-1], HELD[1:])]))
    assert exercises.check("01.1", right, train=[np.array(s) for s in TRAIN], held=np.array(HELD), vocab_size=V)
    kn = NGramLM(2, vocab_size=V).fit(TRAIN).perplexity(HELD)
    assert not exercises.check("01.1", kn, train=TRAIN, held=HELD, vocab_size=V)
    # one sequence made of the two works counts a bigram across the boundary: a different answer
    joined = [np.concatenate([np.array(s) for s in TRAIN])]
    assert not exercises.check("01.1", right, train=joined, held=HELD, vocab_size=V)


def test_exercise_perplexity_against_training_data(monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    works = [np.array(s) for s in TRAIN] + [np.array([2, 0, 1, 2, 0, 1])]
    right = {k: NGramLM(4, vocab_size=4).fit(works[:k]).perplexity(HELD) for k in (1, 2, 3)}
    ctx = dict(train=works, held=HELD, vocab_size=4)
    assert exercises.check("01.2", right, **ctx)
    assert exercises.check("01.2", {1: right[1], 3: right[3]}, **ctx)
    assert not exercises.check("01.2", {1: right[1], 2: right[2]}, **ctx)          # all the works are missing
    assert not exercises.check("01.2", {1: right[3], 3: right[1]}, **ctx)          # swapped
    assert not exercises.check("01.2", {k: NGramLM(3, vocab_size=4).fit(works[:k]).perplexity(HELD)
                                        for k in (1, 3)}, **ctx)                   # a trigram, not a 4-gram


def test_exercise_temperature_entropy(monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    m = NGramLM(3, vocab_size=4).fit(TRAIN)
    p = m.probs([0, 1])

    def entropy(t):
        q = p ** (1 / t) / (p ** (1 / t)).sum()
        return float(-(q * np.log2(q)).sum())

    assert entropy(0.5) < entropy(1) < entropy(1.5)
    assert exercises.check("01.3", (entropy(0.5), entropy(1.5)), model=m, prompt=[2, 0, 1])
    assert not exercises.check("01.3", (entropy(1.5), entropy(0.5)), model=m, prompt=[2, 0, 1])
    assert not exercises.check("01.3", (entropy(1), entropy(1)), model=m, prompt=[2, 0, 1])
