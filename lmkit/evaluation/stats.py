"""How far to trust an accuracy: Wilson intervals, paired bootstrap differences, calibration and its plots
(notebook 16)."""
from __future__ import annotations

import numpy as np

from lmkit import checks

__all__ = ["accuracy_interval", "paired_difference", "calibration", "ece_interval", "calibrated_ece",
           "plot_reliability", "plot_accuracies"]

def accuracy_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (Wilson 1927), via ``scipy.stats.binomtest``."""
    from scipy.stats import binomtest

    if not (checks.is_integer(k) and checks.is_integer(n)) or n < 1 or not 0 <= k <= n:
        checks.fail(f"k={checks.show(k)}, n={checks.show(n)}: need integers with 0 <= k <= n and n >= 1 "
                    "(k successes out of n items)")
    confidence = checks.probability("confidence", confidence, open_low=True, open_high=True, fix="pass e.g. 0.95")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def paired_difference(correct_a, correct_b, *, confidence: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Accuracy of A minus accuracy of B on the same items (0/1 per item), with its interval: ``(diff, (lo, hi))``.

    :func:`lmkit.stats.compare` with ``paired=True`` and its default ``method="auto"``, which for 0/1 outcomes is
    Newcombe's square-and-add interval for paired proportions (1998, method 10): one rule for
    every comparison in lmkit. Kept as a short form; notebook 16 calls ``compare`` itself, which also gives the
    verdict and the sentence.
    """
    from lmkit.stats import compare

    c = compare(correct_a, correct_b, paired=True, confidence=confidence)
    return c.diff, (c.low, c.high)


def calibration(probs, answers, n_bins: int = 10) -> dict:
    """Reliability-diagram bins and expected calibration error, ECE (Naeini, Cooper & Hauskrecht 2015, "Obtaining
    well calibrated probabilities using Bayesian binning"; as used for neural networks by Guo et al. 2017, "On
    calibration of modern neural networks"), with equal-width confidence bins (notebook 16).

    ``probs``: per item, the model's probabilities over its choices; confidence = the largest, correct = its
    argmax is the answer. ``ECE = sum_b (n_b / n) * |acc_b - conf_b|``. Returns ``ece``, and per non-empty bin
    ``bin_lo``, ``bin_hi``, ``confidence``, ``accuracy``, ``count``. Raises a one-line
    :class:`lmkit.checks.CheckError` before any work for a bad ``n_bins``, no items, ``probs`` and ``answers`` of
    different lengths, a probability row that is not finite numbers in [0, 1] summing to 1, or an answer that is not
    an index into its row.
    """
    n_bins = checks.integer("n_bins", n_bins, low=1, fix="pass e.g. n_bins=10")
    probs, answers = list(probs), list(answers)
    if not probs or len(probs) != len(answers):
        checks.fail(f"got {len(probs)} probability rows and {len(answers)} answers: pass one row and one answer per "
                    "item (at least one)")
    for i, (p, a) in enumerate(zip(probs, answers)):
        row = np.asarray(p, dtype=float) if isinstance(p, (list, tuple, np.ndarray)) else np.zeros(0)
        if row.ndim != 1 or len(row) < 1 or not np.isfinite(row).all() or (row < 0).any() or abs(row.sum() - 1) > 1e-3:
            checks.fail(f"probs[{i}]={checks.show(p, 50)} is not a probability row (finite numbers in [0, 1] summing "
                        "to 1): pass the softmax over the item's choices")
        checks.index(f"answers[{i}]", a, len(row), what=f"item {i} has {len(row)} choices", negative=False)
    conf = np.array([max(p) for p in probs])
    hit = np.array([int(np.argmax(p)) == a for p, a in zip(probs, answers)], dtype=float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bins = {"bin_lo": [], "bin_hi": [], "confidence": [], "accuracy": [], "count": []}
    ece = 0.0
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            for key, v in zip(bins, (edges[b], edges[b + 1], conf[sel].mean(), hit[sel].mean(), int(sel.sum()))):
                bins[key].append(float(v) if key != "count" else v)
            ece += sel.mean() * abs(hit[sel].mean() - conf[sel].mean())
    return {"ece": float(ece), "n": len(conf), **bins}


def _confidences(probs, answers, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(confidence, hit, bin index)`` per item, after :func:`calibration`'s checks."""
    calibration(probs, answers, n_bins=n_bins)  # the one-line errors
    conf = np.array([max(p) for p in probs], dtype=float)
    hit = np.array([int(np.argmax(p)) == a for p, a in zip(probs, answers)], dtype=float)
    edges = np.linspace(0, 1, n_bins + 1)
    return conf, hit, np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)


def _ece(gap: np.ndarray, which: np.ndarray, n_bins: int) -> np.ndarray:
    """ECE of rows of items: ``sum_b |sum_{i in b} (hit_i - conf_i)| / n``, which equals
    ``sum_b (n_b / n) |acc_b - conf_b|``. ``gap``, ``which``: ``[..., n]``; returns ``[...]``."""
    return sum(np.abs(np.where(which == b, gap, 0.0).sum(-1)) for b in range(n_bins)) / gap.shape[-1]


def ece_interval(probs, answers, *, n_bins: int = 10, n_resamples: int = 10_000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the ECE of :func:`calibration` (Efron 1979): the items are resampled with
    replacement ``n_resamples`` times and the ECE recomputed each time (``scipy.stats.bootstrap``; notebook 16).
    Same inputs and errors as :func:`calibration`. The ECE is biased upward when bins hold few items, and a
    bootstrap of a biased statistic inherits the bias: read the interval with :func:`calibrated_ece` beside it."""
    from scipy.stats import bootstrap

    n_resamples = checks.integer("n_resamples", n_resamples, low=100, fix="pass e.g. n_resamples=10_000")
    confidence = checks.probability("confidence", confidence, open_low=True, open_high=True, fix="pass e.g. 0.95")
    seed = checks.seed("seed", seed)
    conf, hit, which = _confidences(probs, answers, n_bins)
    gap = hit - conf
    res = bootstrap((np.arange(len(gap)),), lambda idx, axis=-1: _ece(gap[idx], which[idx], n_bins),
                    n_resamples=n_resamples, confidence_level=confidence, method="percentile", vectorized=True,
                    batch=1_000, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def calibrated_ece(probs, answers, *, n_bins: int = 10, n_draws: int = 2_000, seed: int = 0) -> np.ndarray:
    """The ECEs that a perfectly calibrated model with the same confidences would show on the same number of items:
    each item is right with probability equal to its confidence, drawn ``n_draws`` times (notebook 16). The floor
    that finite items put under the ECE: a measured ECE inside this spread does not show miscalibration."""
    n_draws = checks.integer("n_draws", n_draws, low=10, fix="pass e.g. n_draws=2_000")
    seed = checks.seed("seed", seed)
    conf, _, which = _confidences(probs, answers, n_bins)
    hits = np.random.default_rng(seed).random((n_draws, len(conf))) < conf
    return _ece(hits - conf, np.broadcast_to(which, hits.shape), n_bins)


def plot_reliability(cal: dict, ax=None, title: str = "reliability diagram"):
    """Bars of accuracy per confidence bin against the diagonal of perfect calibration; returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 4.5))[1]
    width = np.array(cal["bin_hi"]) - np.array(cal["bin_lo"])
    ax.bar(cal["bin_lo"], cal["accuracy"], width=width, align="edge", edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.plot(cal["confidence"], cal["accuracy"], "o", color="C3", label="mean confidence per bin")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (probability of the chosen answer)", ylabel="accuracy",
           title=f"{title} (ECE {cal['ece']:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def plot_accuracies(rows: dict, ax=None, chance: float | None = 0.25, title: str = "accuracy with 95% intervals"):
    """Horizontal bars: ``rows`` maps a label to ``(acc, (low, high))``; the chance level as a dashed line."""
    import matplotlib.pyplot as plt

    if chance is not None:
        chance = checks.probability("chance", chance, fix="pass the accuracy of guessing, e.g. 0.25, or None")
    ax = ax or plt.subplots(figsize=(7, 0.4 * len(rows) + 1.2))[1]
    labels = list(rows)
    acc = np.array([rows[k][0] for k in labels])
    lo = np.array([rows[k][1][0] for k in labels])
    hi = np.array([rows[k][1][1] for k in labels])
    ax.barh(labels, acc, xerr=[acc - lo, hi - acc], capsize=3, color="C0", alpha=0.8)
    if chance is not None:
        ax.axvline(chance, color="k", ls="--", lw=1, label=f"chance ({chance:.0%})")
        ax.legend(loc="lower right", fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="accuracy", title=title)
    return ax
