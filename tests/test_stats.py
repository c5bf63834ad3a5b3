"""lmkit.stats.compare: the one comparison behind every comparative sentence."""
import numpy as np
import pytest
from scipy import stats as sps

from lmkit.stats import VERDICTS, Comparison, compare


def test_overlapping_samples_cannot_be_told_apart():
    rng = np.random.default_rng(0)
    a = rng.normal(10, 1, 30)
    b = a + rng.normal(0, 1, 30)          # same mean, noisy pairs
    c = compare(a, b)
    assert c.verdict == "cannot be told apart"
    assert c.low < 0 < c.high
    assert not c.differs


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("method", ["t", "bootstrap"])
def test_clear_gap_gives_the_direction(paired, method):
    rng = np.random.default_rng(1)
    a = rng.normal(5, 0.5, 40)
    b = rng.normal(3, 0.5, 40 if paired else 25)
    up = compare(a, b, paired=paired, method=method)
    down = compare(b, a, paired=paired, method=method)
    assert up.verdict == "higher" and up.low > 0 and up.diff == pytest.approx(a.mean() - b.mean())
    assert down.verdict == "lower" and down.high < 0
    assert up.low <= up.diff <= up.high


def test_paired_t_matches_scipy_and_pairing_matters():
    rng = np.random.default_rng(2)
    base = rng.normal(0, 5, 20)               # large item-to-item spread, small consistent gain
    a, b = base + 0.5 + rng.normal(0, 0.1, 20), base
    ci = sps.ttest_rel(a, b).confidence_interval(0.9)
    c = compare(a, b, confidence=0.9)
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high))
    assert c.verdict == "higher"
    assert compare(a, b, paired=False).verdict == "cannot be told apart"   # the item spread hides it unpaired


def test_unpaired_is_welch():
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 9.0, 7.0]
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    c = compare(a, b, paired=False)
    assert (c.low, c.high) == pytest.approx((ci.low, ci.high))
    assert (c.n_a, c.n_b) == (5, 3)


def test_zero_spread():
    assert compare([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]).verdict == "higher"
    assert compare([1.5, 0, 1], [1.5, 0, 1]).verdict == "cannot be told apart"


def test_paired_proportions_match_the_square_and_add_reference():
    """Newcombe's paired method 10 on a published 2x2 table of pairs (59 both, 6 A only, 16 B only, 80 neither):
    estimate -0.0621, 95% interval [-0.1186, -0.0046] (Fagerland, Lydersen and Laake, "Statistical analysis of
    contingency tables", 2017, chapter 8: the Cavo et al. 2012 example)."""
    a = [1] * 59 + [1] * 6 + [0] * 16 + [0] * 80
    b = [1] * 59 + [0] * 6 + [1] * 16 + [0] * 80
    c = compare(a, b)
    assert c.method == "newcombe-paired" and c.diff == pytest.approx(-10 / 161)
    assert (c.low, c.high) == pytest.approx((-0.1186, -0.0046), abs=1e-4) and c.verdict == "lower"


def test_paired_proportions_do_not_end_on_the_estimate():
    """All discordant pairs one way: the interval still has room on both sides of the estimate (an interval that
    treated the number of discordant pairs as fixed would end exactly on it)."""
    for n10 in (3, 8, 20):
        a, b = [1] * n10 + [1] * 30 + [0] * 30, [0] * n10 + [1] * 30 + [0] * 30
        c = compare(a, b)
        assert -1 <= c.low < c.diff < c.high <= 1, (n10, c)
    three = compare([1, 1, 1], [0, 0, 0])       # 3 items: the interval is wide (the exact McNemar p is 0.25)
    assert three.low < 0.5 and three.high == 1.0
    assert compare([1] * 10, [0] * 10).verdict == "higher"
    assert compare([1, 0] * 10, [1, 0] * 10).verdict == "cannot be told apart"   # identical: no difference
    assert compare([1, 1, 0, 0] * 5, [1, 0, 1, 0] * 5).verdict == "cannot be told apart"   # 5 flips each way


def test_paired_proportions_cover_the_true_difference():
    """Simulated pairs with a known difference of proportions: the 95% interval contains it in at least 93% of
    1,000 experiments of 60 pairs, for several correlations and differences."""
    rng = np.random.default_rng(5)
    for p11, p10, p01 in ((0.4, 0.1, 0.1), (0.3, 0.15, 0.05), (0.6, 0.08, 0.02), (0.1, 0.2, 0.1)):
        probs = [p11, p10, p01, 1 - p11 - p10 - p01]
        truth, hits = p10 - p01, 0
        for _ in range(1000):
            cells = rng.choice(4, size=60, p=probs)
            a, b = np.isin(cells, (0, 1)).astype(float), np.isin(cells, (0, 2)).astype(float)
            c = compare(a, b)
            hits += c.low <= truth <= c.high
        assert hits / 1000 >= 0.93, (probs, hits)


def test_unpaired_proportions_match_newcombes_worked_example():
    """Newcombe (1998), method 10: 56/70 against 48/80 gives [0.0524, 0.3339]."""
    c = compare([1] * 56 + [0] * 14, [1] * 48 + [0] * 32, paired=False)
    assert c.method == "newcombe" and (c.low, c.high) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_accuracy_coverage_is_near_nominal():
    """On paired 0/1 outcomes with no true difference, the 95% interval excludes 0 in about 5% of experiments."""
    rng = np.random.default_rng(3)
    wrong = 0
    for _ in range(400):
        p = rng.uniform(0.2, 0.8, 60)
        a, b = rng.random(60) < p, rng.random(60) < p
        wrong += compare(a.astype(float), b.astype(float)).differs
    assert wrong / 400 < 0.09


def test_sentence_is_generated_from_the_numbers():
    c = compare([3.0, 3.1, 2.9, 3.2], [1.0, 1.1, 0.9, 1.0])
    s = c.sentence("LoRA", "full", quantity="accuracy")
    assert s.startswith("LoRA's accuracy is higher than full's by 2.05") and "4 paired items" in s
    assert c.sentence("letters", "words", quantity="accuracy").startswith("letters' accuracy is higher than words' by")
    t = compare([1.0, 2.0, 3.0], [2.0, 1.0, 3.0]).sentence("A", "B", unit="s")
    assert t.startswith("A and B cannot be told apart (difference 0 s")
    down = compare([1.0, 1.1, 0.9, 1.0], [3.0, 3.1, 2.9, 3.2]).sentence("A", "B")
    assert down.startswith("A is lower than B by 2.05 (95% CI [1.") and "-" not in down   # magnitude and its interval
    assert isinstance(c, Comparison) and c.verdict in VERDICTS and str(c).startswith("higher")


@pytest.mark.parametrize("a, b, kwargs, words", [
    ([1.0, float("nan")], [1.0, 2.0], {}, "a[1]=nan"),
    ([], [1.0, 2.0], {}, "a has 0 value"),
    ([1.0, 2.0], [1.0, 2.0, 3.0], {}, "paired samples have 2 and 3"),
    ([1.0, 2.0], [1.0, 2.0], {"confidence": 1.5}, "confidence=1.5"),
    ([1.0, 2.0], [1.0, 2.0], {"paired": 1}, "paired=1"),
    ([1.0, 2.0], [1.0, 2.0], {"method": "z"}, "method='z'"),
    (["x", "y"], [1.0, 2.0], {}, "a="),
    ([[1.0, 2.0]], [1.0, 2.0], {}, "shape"),
    ([1.0, float("inf")], [1.0, 2.0], {"paired": False}, "a[1]=inf"),
])
def test_bad_input_is_one_line(a, b, kwargs, words):
    with pytest.raises(ValueError) as err:
        compare(a, b, **kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_unpaired_lengths_may_differ():
    assert compare([1.0, 2.0, 3.0], [1.0, 2.0], paired=False).n_b == 2


def test_block_means_keeps_the_type_and_drops_the_partial_block():
    import torch

    from lmkit.stats import block_means
    x = np.arange(70, dtype=float)
    assert np.array_equal(block_means(x, 32), [15.5, 47.5])
    t = block_means(torch.arange(70), 32)
    assert isinstance(t, torch.Tensor) and torch.equal(t, torch.tensor([15.5, 47.5]))
    for bad, block in [(np.zeros((4, 4)), 2), (np.zeros(40), 32)]:
        with pytest.raises(ValueError, match="block|shape"):
            block_means(bad, block)
