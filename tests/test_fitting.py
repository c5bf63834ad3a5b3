"""Under- and overfitting (notebook 10, section 6): the regime rule on synthetic curves, the training helper on a
tiny model, one-line errors, and exercise 10.5."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lmkit import tinygpt as tg
from lmkit.stats import compare
from lmkit.ngram import NGramLM
from lmkit.tinygpt.fitting import (REGIMES, Curves, measured_rise, name_regimes, ngram_window_losses,
                                   plot_capacity, train_curves, window_ids, window_losses)

TEXT = "to be, or not to be: that is the question.\nwhether 'tis nobler in the mind to suffer\n" * 20
W = 40  # windows per evaluation in the synthetic curves


@pytest.fixture(autouse=True)
def one_thread():
    with tg.num_threads(1):
        yield


def curves(train_means, val_means, *, n_params=1000, noise=0.02, seed=0, key="k") -> Curves:
    """Synthetic curves: one row per evaluation, W windows each, each window = mean + a fixed window effect + noise."""
    rng = np.random.default_rng(seed)
    window_effect = np.random.default_rng(99).normal(0, 0.3, W)  # the same windows in every run: pairing helps
    rows = lambda means: np.stack([m + window_effect + rng.normal(0, noise, W) for m in means])  # noqa: E731
    steps = list(range(10, 10 * len(val_means) + 1, 10))
    return Curves(n_params=n_params, step=steps, train_windows=rows(train_means), val_windows=rows(val_means),
                  seconds=[float(s) for s in steps], train_key=key, val_key=key)


def test_underfitting_sweet_spot_and_overfitting_are_named_from_the_curves():
    runs = {
        "small": curves([3.0, 2.9, 2.85], [3.05, 2.95, 2.9], n_params=10, seed=1),        # both high, small gap
        "middle": curves([2.8, 2.5, 2.3], [2.9, 2.6, 2.45], n_params=100, seed=2),       # lowest validation
        "large": curves([2.6, 2.0, 1.4], [2.7, 2.8, 3.0], n_params=1000),        # training falls, validation rises
    }
    names = {k: r.name for k, r in name_regimes(runs).items()}
    assert names == {"small": "underfitting", "middle": "sweet spot", "large": "overfitting"}
    assert "rose from" in name_regimes(runs)["large"].reason
    assert "still falling when the budget ended" in name_regimes(runs)["middle"].reason  # its minimum is the last step


def test_the_lowest_size_at_the_edge_of_the_sweep_is_no_sweet_spot():
    lo = curves([2.4, 2.3], [2.6, 2.40], n_params=10, noise=0.01, seed=1)
    mid = curves([2.4, 2.3], [2.6, 2.50], n_params=100, noise=0.01, seed=2)
    hi = curves([2.4, 2.3], [2.6, 2.55], n_params=1000, noise=0.01, seed=3)
    got = name_regimes({"lo": lo, "mid": mid, "hi": hi})
    assert got["lo"].name == "lowest of the sweep, at its edge" and "smallest size" in got["lo"].reason
    assert "lower than mid's" in got["lo"].reason  # measurably below its one neighbour, still not a sweet spot
    big = curves([2.4, 2.3], [2.6, 2.40], n_params=10_000, noise=0.01, seed=1)  # lo's losses, the most parameters
    top = name_regimes({"mid": mid, "hi": hi, "big": big})["big"]  # the same at the large end
    assert top.name == "lowest of the sweep, at its edge" and "largest size" in top.reason
    labelled = name_regimes({"lo": [lo, mid], "mid": [mid, lo], "hi": [hi, hi]}, seeds=[7, 9])
    assert "seed 7 says" in labelled["lo"].reason and "seed 9 says" in labelled["lo"].reason
    with pytest.raises(ValueError, match="seeds has 1 labels for 2 seeds"):
        name_regimes({"lo": [lo, mid], "mid": [mid, lo]}, seeds=[7])


def test_a_difference_within_the_spread_is_not_a_regime():
    # "near" is 0.005 above the best on validation, far inside a noise of 0.2 per window: not a tie, no evidence
    runs = {"best": curves([2.3, 2.2], [2.5, 2.400], noise=0.2, seed=1),
            "near": curves([2.35, 2.25], [2.5, 2.405], noise=0.2, seed=2),
            "bad": curves([3.0, 2.9], [3.1, 3.0], noise=0.2, seed=3)}
    got = name_regimes(runs)
    assert got["near"].name == "cannot be told apart from the best" and "cannot be told apart" in got["near"].reason
    assert got["bad"].name == "underfitting"
    # a validation "rise" of 0.005 under that noise is not overfitting
    a = curves([2.5, 2.3, 2.1], [2.6, 2.40, 2.43], noise=0.2, seed=4)
    assert int(np.argmin(a.val_loss)) == 1 and a.val_loss[2] > a.val_loss[1]  # it did rise, a little
    assert compare(a.val_windows[2], a.val_windows[1]).verdict == "cannot be told apart"
    flat = name_regimes({"a": a, "b": runs["bad"]})  # a two-size sweep: the lower one is at its edge
    assert flat["a"].name == "lowest of the sweep, at its edge" and "no measured rise" in flat["a"].reason
    over = name_regimes({"a": a, "b": runs["best"]})["a"]  # not the best, and its rise is noise: not overfitting
    assert over.name == "cannot be told apart from the best" and "no measured rise" in over.reason


def test_a_measured_rise_is_overfitting_even_for_the_best_or_a_tie():
    # "best" has the lowest final validation loss but clearly rose from its own lowest point: overfitting, no sweet
    # spot; "tie" ends level with it (within the noise) after a clear rise: overfitting too, not hidden by the tie
    best = curves([2.6, 2.2, 1.8], [2.7, 2.3, 2.6], noise=0.01, seed=1)
    tie = curves([2.6, 2.1, 1.7], [2.7, 2.2, 2.6], noise=0.3, seed=2)
    under = curves([3.0, 2.95, 2.9], [3.05, 3.0, 2.95], noise=0.01, seed=3)
    got = name_regimes({"best": best, "tie": tie, "under": under})
    assert compare(tie.val_windows[-1], best.val_windows[-1]).verdict == "cannot be told apart"
    assert got["best"].name == got["tie"].name == "overfitting" and "rose from" in got["tie"].reason
    assert got["under"].name == "underfitting"
    assert {r.name for r in got.values()} <= set(REGIMES)


def test_an_overfitting_gap_without_a_rise_and_an_unclear_case():
    best = curves([2.4, 2.3], [2.6, 2.5], noise=0.01)
    gap = curves([2.4, 2.2], [2.9, 2.8], noise=0.01, seed=5)        # trains as well, generalises worse, no rise
    both = curves([2.8, 2.7], [3.4, 3.3], noise=0.01, seed=6)       # both worse, the gap wider too
    got = name_regimes({"best": best, "gap": gap, "both": both})
    assert got["gap"].name == "wider gap, not yet overfitting" and "not measurably risen" in got["gap"].reason
    assert got["both"].name == "higher, cause unclear"


def test_seeds_must_agree_or_the_regime_says_they_disagree():
    under = curves([3.0, 2.9], [3.05, 2.95], noise=0.01, seed=3)
    best = curves([2.4, 2.3], [2.6, 2.5], noise=0.01, seed=1)
    tied = curves([2.4, 2.3], [2.6, 2.5], noise=0.01, seed=2)
    one_seed = name_regimes({"x": [under], "y": [best]})
    assert one_seed["x"].name == "underfitting"
    over = curves([2.6, 2.2, 1.8], [2.7, 2.3, 2.6], noise=0.01, seed=4)  # a measured rise: overfitting
    two = name_regimes({"x": [under, over], "y": [best, best]})  # seed 1 names x otherwise
    assert two["x"].name == "seeds disagree" and "seed 1 says overfitting" in two["x"].reason
    assert name_regimes({"x": [under, under], "y": [best, best]})["x"].name == "underfitting"
    some = name_regimes({"x": [under, under, tied], "y": [best, best, best]})  # seed 2: a tie, not a contradiction
    assert some["x"].name == "shown in some seeds" and some["x"].reason.startswith("underfitting in 2 of 3 seeds")
    assert "(seed 2: against y, the run with the lowest" in some["x"].reason  # why the other seed said no


def test_a_sweet_spot_must_beat_each_neighbouring_size():
    lo = curves([2.4, 2.3], [2.6, 2.50], n_params=10, noise=0.01, seed=1)
    mid = curves([2.4, 2.3], [2.6, 2.40], n_params=100, noise=0.01, seed=2)
    hi = curves([2.4, 2.3], [2.6, 2.55], n_params=1000, noise=0.01, seed=3)
    assert name_regimes({"lo": lo, "mid": mid, "hi": hi})["mid"].name == "sweet spot"
    near = curves([2.4, 2.3], [2.6, 2.401], n_params=1000, noise=0.2, seed=4)  # within the noise of "mid"
    got = name_regimes({"lo": lo, "mid": mid, "near": near})
    assert got["mid"].name == "lowest of the sweep, not distinguished" and "cannot be told apart" in got["mid"].reason
    some = name_regimes({"lo": [lo, lo, lo], "mid": [mid, mid, mid], "hi": [hi, hi, near]})["mid"]
    assert some.name == "shown in some seeds" and some.reason.startswith("sweet spot in 2 of 3 seeds")
    assert "in seeds 0, 1, which say sweet spot, the lowest loss is at the last evaluation too" in some.reason


def test_the_rise_is_measured_from_the_development_chosen_step_and_the_gap_on_development_text():
    run = curves([2.6, 2.2, 1.8], [2.7, 2.3, 2.6], noise=0.01, seed=1)
    run.dev_windows = curves([0, 0, 0], [2.5, 2.6, 2.7], noise=0.01, seed=2).val_windows  # lowest at step 10
    low, rise, fall = measured_rise(run)
    assert low == 0 and rise.verdict == "higher"  # chosen on the first half, tested on the second: it rose
    assert int(np.argmin(run.val_loss)) == 1  # choosing on the validation windows would have found another step
    assert np.array_equal(run.held_out_windows, run.dev_windows)
    # the halves: the step is chosen on the first half only, the rise is tested on the second half only
    first, second = (curves([0, 0, 0], m, noise=0.01, seed=s).val_windows for m, s in
                     (([2.6, 2.4, 2.5], 5), ([2.5, 2.5, 2.3], 6)))
    run.dev_windows = np.concatenate([first[:, : W // 2], second[:, W // 2:]], axis=1)
    assert np.array_equal(run.choose_windows, first[:, : W // 2]) and np.array_equal(run.test_windows,
                                                                                       second[:, W // 2:])
    low, rise, _ = measured_rise(run)
    assert low == 1 and rise.verdict == "lower"  # the second half fell after step 20: no rise, whatever the first
    assert measured_rise(curves([2.0, 1.9], [2.1, 2.0]))[1] is None  # lowest at the end: nothing to test


@pytest.mark.parametrize("runs, match", [
    ({"only": None}, "at least 2 runs"),
    ([1, 2], "at least 2 runs"),
    ({"a": "curves", "b": "curves"}, r"runs\['a'\]"),
    ({"a": [curves([2.0], [2.1])], "b": [curves([2.0], [2.1])] * 2}, "seeds"),
    ({"a": curves([2.0], [2.1], key="x"), "b": curves([2.0], [2.1], key="y")}, "different sets of windows"),
    ({"a": Curves(n_params=1), "b": curves([2.0], [2.1])}, "no evaluation"),
])
def test_bad_runs_are_refused_in_one_line(runs, match):
    with pytest.raises(ValueError, match=match) as err:
        name_regimes(runs)
    assert "\n" not in str(err.value)


def test_window_losses_pair_window_by_window_and_average_to_estimate_loss():
    tok = tg.CharTokenizer.from_text(TEXT)
    ids = tok.encode(TEXT)
    torch.manual_seed(0)
    model = tg.TinyGPT(tg.GPTConfig(vocab_size=len(tok), block_size=16, n_layer=1, n_head=2, n_embd=16))
    per = window_losses(model, ids, 16, n_windows=12)
    assert per.shape == (12,) and np.isfinite(per).all() and per.std() > 0
    assert per.mean() == pytest.approx(tg.estimate_loss(model, ids, 16, 12), rel=1e-5)
    with pytest.raises(ValueError, match="too short"):
        window_losses(model, ids[:10], 16)
    with pytest.raises(ValueError, match="n_windows"):
        window_losses(model, ids, 16, n_windows=0)


def test_ngram_window_losses_score_the_same_windows_as_the_model():
    tok = tg.CharTokenizer.from_text(TEXT)
    ids = tok.encode(TEXT)
    wins = window_ids(ids, 16, 12)
    assert wins.shape == (12, 17) and torch.equal(wins[0], ids[:17]) and torch.equal(wins[-1], ids[-17:])
    tri = NGramLM(3, vocab_size=len(tok)).fit(ids[:600].numpy())
    got = ngram_window_losses(tri, ids, 16, 12)
    assert got.shape == (12,) and got[3] == pytest.approx(tri.token_nll(wins[3].numpy()).mean())
    uni = ngram_window_losses(NGramLM(1, vocab_size=len(tok)).fit(ids[:600].numpy()), ids, 16, 12)
    assert compare(got, uni).verdict == "lower"  # two characters of context help on this repetitive text
    with pytest.raises(ValueError, match="token_nll"):
        ngram_window_losses("trigram", ids, 16)


def test_train_curves_learns_and_records_every_evaluation():
    tok = tg.CharTokenizer.from_text(TEXT)
    ids = tok.encode(TEXT)
    cfg = tg.GPTConfig(vocab_size=len(tok), block_size=16, n_layer=1, n_head=2, n_embd=32)
    run = train_curves(cfg, ids[:800], ids[800:], steps=40, batch_size=8, eval_every=20, n_windows=8, seed=0)
    assert run.step == [0, 20, 40] and run.train_windows.shape == run.val_windows.shape == (3, 8)
    assert run.n_params == tg.n_params(run.model) and run.seconds[0] == 0.0
    torch.manual_seed(0)  # step 0 is the untrained model of the same seed
    fresh = window_losses(tg.TinyGPT(cfg), ids[800:], 16, 8)
    np.testing.assert_allclose(run.val_windows[0], fresh, rtol=1e-5)
    assert run.train_loss[-1] < run.train_loss[1] < run.train_loss[0]  # it learns from the training text
    assert run.dev_windows is None and run.stop() == int(np.argmin(run.val_loss))  # no development text: validation
    dev = train_curves(cfg, ids[:800], ids[800:], steps=40, batch_size=8, eval_every=20, n_windows=8, seed=0,
                       dev_ids=ids[:400])
    assert dev.dev_windows.shape == (3, 8) and dev.stop() == int(np.argmin(dev.dev_windows[:, :4].mean(1)))
    np.testing.assert_allclose(dev.val_windows, run.val_windows, rtol=1e-5)  # scoring more text changes nothing
    assert compare(run.train_windows[-1], run.train_windows[0]).verdict == "lower"
    again = train_curves(cfg, ids[:800], ids[800:], steps=40, batch_size=8, eval_every=20, n_windows=8, seed=0)
    np.testing.assert_allclose(again.val_windows, run.val_windows, rtol=1e-5)  # the seed fixes the run
    assert run.seconds == sorted(run.seconds) and run.seconds[-1] > 0
    import matplotlib.pyplot as plt

    fig = plot_capacity({"a": run, "b": again}, name_regimes({"a": run, "b": again}))
    plt.close("all")  # leave no figure open for the next test in this worker
    assert fig is not None


@pytest.mark.parametrize("kw, match", [
    (dict(steps=0), "steps"), (dict(eval_every=0), "eval_every"), (dict(n_windows=1), "n_windows"),
    (dict(train_eval_ids=torch.arange(5)), "train_eval_ids"), (dict(seed=-1), "seed"),
    (dict(dev_ids=torch.arange(5)), "dev_ids"), (dict(dev_ids=torch.arange(200), n_windows=3), "n_windows=3"),
])
def test_train_curves_refuses_bad_input_before_training(kw, match):
    tok = tg.CharTokenizer.from_text(TEXT)
    ids = tok.encode(TEXT)
    cfg = tg.GPTConfig(vocab_size=len(tok), block_size=16, n_layer=1, n_head=2, n_embd=16)
    args = dict(steps=5, batch_size=4, eval_every=5, n_windows=4) | kw
    with pytest.raises(ValueError, match=match) as err:
        train_curves(cfg, ids[:800], ids[800:], **args)
    assert "\n" not in str(err.value)


def test_exercise_10_5_early_stopping(monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    run = curves([2.6, 2.0, 1.4], [2.7, 2.5, 3.0], seed=7)
    i = int(np.argmin(run.val_loss))
    verdict = compare(run.val_windows[-1], run.val_windows[i]).verdict
    assert (run.step[i], verdict) == (20, "higher")
    assert exercises.check("10.5", (20, run.val_loss[i], verdict), curves=run)
    assert not exercises.check("10.5", (30, run.val_loss[-1], verdict), curves=run)      # the last checkpoint
    assert not exercises.check("10.5", (20, run.val_loss[i] + 0.01, verdict), curves=run)
    assert not exercises.check("10.5", (20, run.val_loss[i], "cannot be told apart"), curves=run)
    assert not exercises.check("10.5", 20, curves=run)  # not a triple: feedback, not a crash
    run.dev_windows = curves([2.6, 2.0, 1.4], [2.9, 3.0, 2.8], seed=8).val_windows  # chosen on development text
    assert exercises.check("10.5", (30, run.val_loss[-1], "cannot be told apart"), curves=run)
    assert not exercises.check("10.5", (20, run.val_loss[i], verdict), curves=run)  # the validation minimum


def test_sizes_are_ranked_on_the_development_text_not_on_validation():
    a = curves([2.4, 2.3], [2.6, 2.5], n_params=100, noise=0.01, seed=11)
    b = curves([2.4, 2.3], [2.6, 2.3], n_params=1000, noise=0.01, seed=12)  # lower validation (Hamlet) loss
    a.dev_windows = curves([0, 0], [2.6, 2.3], noise=0.01, seed=13).val_windows  # lower development loss
    b.dev_windows = curves([0, 0], [2.6, 2.5], noise=0.01, seed=14).val_windows
    got = name_regimes({"a": a, "b": b})
    assert got["a"].name == "lowest of the sweep, at its edge" and "development loss" in got["a"].reason
    assert "against a," in got["b"].reason


def test_early_stopping_chooses_on_the_development_windows_when_there_are_some():
    run = curves([2.6, 2.0, 1.4], [2.7, 2.5, 3.0], seed=7)
    assert run.stop() == 1  # no development text: the lowest validation loss
    run.dev_windows = curves([2.6, 2.0, 1.4], [2.9, 3.0, 2.8], seed=8).val_windows
    assert run.stop() == 2  # chosen on the development text, even where validation says otherwise
