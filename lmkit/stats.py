"""One way to compare two measurements, used by every comparative sentence in the workbook.

``compare(a, b)`` takes two samples of the same quantity (per-item correctness, per-text losses, seconds per round
from interleaved timing rounds) and answers three things a sentence needs: the difference of the means, its
confidence interval, and a verdict, ``"higher"``, ``"lower"`` or ``"cannot be told apart"`` (``a`` against ``b``).
The verdict says "higher" only when the whole interval lies above zero.

Intervals (``scipy.stats``):

- paired (``paired=True``, the default: the same items, texts or rounds measured under A and under B): Student's t
  interval on the per-pair differences, ``mean(d) ± t_{n-1} · sd(d) / sqrt(n)`` (``scipy.stats.ttest_rel``);
- unpaired (``paired=False``, two independent samples, possibly of different lengths): Welch's interval,
  which does not assume equal variances (``scipy.stats.ttest_ind(equal_var=False)``);
- ``method="bootstrap"``: a percentile bootstrap of the same mean difference (``scipy.stats.bootstrap``; pairs are
  resampled together when paired), for skewed samples where the t interval's normality is doubtful;
- 0/1 outcomes (right/wrong per item) under the default ``method="auto"``: a t interval on 0/1 data can pass 1 and
  ignores that a proportion's spread is set by its value, so ``"auto"`` uses intervals made for proportions.
  Paired: Newcombe's square-and-add interval for paired proportions (Newcombe 1998, "Improved confidence
  intervals for the difference between binomial proportions based on paired data", method 10): the Wilson intervals ``[l_1, u_1]``, ``[l_2, u_2]`` of the two proportions, combined
  with the estimated correlation ``φ`` of the 2x2 table of pairs, ``d − sqrt((p_1 − l_1)² + (u_2 − p_2)²
  − 2φ(p_1 − l_1)(u_2 − p_2))`` to ``d + sqrt((p_2 − l_2)² + (u_1 − p_1)² − 2φ(p_2 − l_2)(u_1 − p_1))``, with
  ``φ = (n_11 n_00 − n_10 n_01 − n/2) / sqrt(product of the margins)`` when ``n_11 n_00 − n_10 n_01 > n/2``, ``0``
  between ``0`` and ``n/2``, and the plain ``φ`` below ``0``. (An interval built only from the ``n_d`` discordant
  pairs, Clopper–Pearson on ``n_10 / n_d`` scaled by ``n_d / n``, treats ``n_d`` as fixed: its width leaves out the
  noise in ``n_d``, and its end sits on the estimate whenever every discordant pair goes one way.) Unpaired: Newcombe's
  hybrid score interval from the two Wilson intervals (Newcombe 1998, method 10). Both are score intervals,
  close to nominal coverage from a few dozen items on (tests/test_stats.py simulates it); on a handful of items
  they can call a difference that an exact test would not (3 of 3 pairs one way: the interval excludes 0, the
  exact McNemar test, a binomial test on ``n_10`` of the ``n_d`` discordant pairs, gives p = 0.25). Notebook 16
  shows the interval and the exact test side by side.

When every difference is the same number (zero spread) and the t or bootstrap interval is used, the interval is
that number: ``compare([2.0, 2.0], [1.0, 1.0])`` is "higher" with a zero-width interval, and ties are "cannot be told
apart". 0/1 outcomes keep their score interval even then: ten items all right under A and all wrong under B give
an interval of width about 0.4 ending at 1, still "higher".

Taught in notebook 16 (evaluation), used in every notebook that compares two numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lmkit import checks

__all__ = ["Comparison", "compare", "VERDICTS"]

VERDICTS = ("higher", "lower", "cannot be told apart")
"""The three verdicts :func:`compare` can return, ``a`` against ``b``."""

METHODS = ("auto", "t", "bootstrap")


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: ``a`` against ``b``.

    ``diff`` is ``mean(a) - mean(b)`` (in the samples' unit), ``low`` / ``high`` its confidence interval at
    ``confidence``, ``verdict`` one of :data:`VERDICTS`. ``mean_a``, ``mean_b``, ``n_a``, ``n_b``, ``paired`` and
    ``method`` say what was compared. ``ratio`` is ``mean_a / mean_b`` (NaN when ``mean_b`` is 0).
    """

    diff: float
    low: float
    high: float
    verdict: str
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    paired: bool
    confidence: float
    method: str

    @property
    def ratio(self) -> float:
        return self.mean_a / self.mean_b if self.mean_b else math.nan

    @property
    def differs(self) -> bool:
        """True when the interval excludes zero (the verdict is "higher" or "lower")."""
        return self.verdict != "cannot be told apart"

    def interval(self, fmt: str = ".3g", unit: str = "") -> str:
        """``"95% CI [low, high] unit"``, formatted with ``fmt``."""
        unit = f" {unit}" if unit else ""
        return f"{self.confidence:.0%} CI [{self.low:{fmt}}, {self.high:{fmt}}]{unit}"

    def sentence(self, a: str = "A", b: str = "B", *, quantity: str = "", unit: str = "", fmt: str = ".3g",
                 higher: str = "higher", lower: str = "lower") -> str:
        """A sentence generated from the numbers, for notebook prose: e.g. ``"A is higher than B by 0.12 (95% CI
        [0.05, 0.19], 40 paired items)"`` or ``"A and B cannot be told apart (difference 0.01, 95% CI [-0.03,
        0.05], 40 paired items)"``. ``quantity`` names what is compared ("accuracy"), ``higher`` / ``lower`` may be
        replaced by words that fit it ("faster", "slower")."""
        what = f"{quantity} " if quantity else ""
        u = f" {unit}" if unit else ""
        size = f"{self.n_a} paired items" if self.paired else f"{self.n_a} vs {self.n_b} items"
        detail = f"{self.interval(fmt, unit)}, {size}"
        if self.verdict == "cannot be told apart":
            return (f"{a} and {b} cannot be told apart{' in ' + quantity if quantity else ''} "
                    f"(difference {self.diff:{fmt}}{u}, {detail})")
        word = higher if self.verdict == "higher" else lower
        if self.verdict == "lower":      # the size of the gap and its interval, both positive
            detail = f"{self.confidence:.0%} CI [{-self.high:{fmt}}, {-self.low:{fmt}}]{u}, {size}"
        if quantity:
            return f"{_possessive(a)} {what}is {word} than {_possessive(b)} by {abs(self.diff):{fmt}}{u} ({detail})"
        return f"{a} is {word} than {b} by {abs(self.diff):{fmt}}{u} ({detail})"

    def __str__(self) -> str:
        return f"{self.verdict}: diff {self.diff:.4g}, {self.interval('.4g')}"


def _possessive(name: str) -> str:
    """``"LoRA's"``, and ``"letters'"`` for a name that ends in s."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _sample(name: str, values) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        checks.fail(f"{name}={checks.show(values, 60)} is not a list of numbers: pass one number per item, text or "
                    "round")
    if arr.ndim != 1:
        checks.fail(f"{name} has shape {arr.shape}: pass a flat list of numbers, one per item, text or round")
    if len(arr) < 2:
        checks.fail(f"{name} has {len(arr)} value(s): an interval needs at least 2 measurements; measure more items")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        checks.fail(f"{name}[{i}]={arr[i]} is not a finite number: drop or re-measure that item before comparing")
    return arr


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "cannot be told apart"


def _paired_proportions(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Newcombe's square-and-add interval (1998, paired method 10) for ``mean(a) - mean(b)`` on paired 0/1 outcomes
    (formula in the module docstring)."""
    from scipy import stats

    n = len(a)
    n11, n10 = int(((a == 1) & (b == 1)).sum()), int(((a == 1) & (b == 0)).sum())
    n01, n00 = int(((a == 0) & (b == 1)).sum()), int(((a == 0) & (b == 0)).sum())
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    l1, u1 = stats.binomtest(n11 + n10, n).proportion_ci(confidence_level=confidence, method="wilson")
    l2, u2 = stats.binomtest(n11 + n01, n).proportion_ci(confidence_level=confidence, method="wilson")
    margins = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    cross = n11 * n00 - n10 * n01
    phi = 0.0 if margins == 0 else (cross - n / 2) / math.sqrt(margins) if cross > n / 2 else (
        0.0 if cross >= 0 else cross / math.sqrt(margins))
    d = p1 - p2
    low = d - math.sqrt(max((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2), 0.0))
    high = d + math.sqrt(max((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1), 0.0))
    return float(max(low, -1.0)), float(min(high, 1.0))


def _newcombe(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for ``mean(a) - mean(b)``, independent 0/1 samples."""
    from scipy import stats

    p1, p2 = a.mean(), b.mean()
    l1, u1 = stats.binomtest(int(a.sum()), len(a)).proportion_ci(confidence_level=confidence, method="wilson")
    l2, u2 = stats.binomtest(int(b.sum()), len(b)).proportion_ci(confidence_level=confidence, method="wilson")
    d = p1 - p2
    return float(d - math.hypot(p1 - l1, u2 - p2)), float(d + math.hypot(u1 - p1, p2 - l2))


def compare(a, b, *, paired: bool = True, confidence: float = 0.95, method: str = "auto", n_resamples: int = 10_000,
            seed: int = 0) -> Comparison:
    """Compare two samples: the difference of means ``mean(a) - mean(b)``, its confidence interval and a verdict.

    ``a``, ``b``: 1-D sequences of finite numbers, at least 2 each; with ``paired=True`` (the same items measured
    twice) they must have the same length, and element ``i`` of ``a`` pairs with element ``i`` of ``b``. Unpaired
    samples may have different lengths. ``confidence`` in (0, 1). ``method``: ``"auto"`` (the default: the
    proportion intervals of the module docstring when every value of both samples is 0 or 1, else ``"t"``),
    ``"t"`` (paired t or Welch, from ``scipy.stats``) or ``"bootstrap"`` (percentile bootstrap with
    ``n_resamples`` resamples and ``seed``). ``Comparison.method`` names the interval used (``"t"``,
    ``"bootstrap"``, ``"newcombe-paired"`` or ``"newcombe"``).

    Returns a :class:`Comparison` whose ``verdict`` is ``"higher"`` when the whole interval is above 0, ``"lower"``
    when it is below 0, and ``"cannot be told apart"`` otherwise. Raises a one-line :class:`lmkit.checks.CheckError`
    (a ``ValueError``) before any work for NaN or infinite values, fewer than 2 values, non-numbers, paired samples
    of different lengths, or a bad setting.
    """
    from scipy import stats

    paired = checks.boolean("paired", paired)
    confidence = checks.probability("confidence", confidence, open_low=True, open_high=True, fix="pass e.g. 0.95")
    method = checks.one_of("method", method, METHODS)
    n_resamples = checks.integer("n_resamples", n_resamples, low=100, fix="pass e.g. n_resamples=10_000")
    seed = checks.seed("seed", seed)
    a, b = _sample("a", a), _sample("b", b)
    if paired and len(a) != len(b):
        checks.fail(f"paired samples have {len(a)} and {len(b)} values: pass the same items under A and B, or "
                    "paired=False for independent samples")
    diff = float(a.mean() - b.mean())
    if method == "auto":
        if np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all():
            low, high = (_paired_proportions if paired else _newcombe)(a, b, confidence)
            return Comparison(diff=diff, low=low, high=high, verdict=_verdict(low, high), mean_a=float(a.mean()),
                              mean_b=float(b.mean()), n_a=len(a), n_b=len(b), paired=paired, confidence=confidence,
                              method="newcombe-paired" if paired else "newcombe")
        method = "t"
    d = a - b if paired else None
    spread = np.ptp(d) if paired else max(np.ptp(a), np.ptp(b))
    if spread == 0:
        low = high = diff
    elif method == "t":
        res = stats.ttest_rel(a, b) if paired else stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(confidence_level=confidence)
        low, high = float(ci.low), float(ci.high)
    else:
        rng = np.random.default_rng(seed)
        if paired:
            res = stats.bootstrap((d,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                                  method="percentile", rng=rng)
        else:
            res = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), n_resamples=n_resamples,
                                  confidence_level=confidence, method="percentile", rng=rng)
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Comparison(diff=diff, low=low, high=high, verdict=_verdict(low, high), mean_a=float(a.mean()),
                      mean_b=float(b.mean()), n_a=len(a), n_b=len(b), paired=paired, confidence=confidence,
                      method=method)


def block_means(values, block: int = 32):
    """Means of ``values`` (1-D: per-token losses in nats, per-step times in s, ...) over consecutive blocks of
    ``block`` values, shape ``[len(values) // block]``, the same type as the input (a torch tensor or a NumPy array).
    A last partial block is dropped so that every block weighs the same.

    Neighbouring tokens' losses are correlated (a hard line is hard for several tokens), so :func:`compare` over
    single tokens would claim more precision than the text holds; means over blocks of ~32 tokens are closer to
    independent items. Used in notebooks 01, 12 and 14. Raises ValueError for non-1-D ``values`` or fewer than 2
    whole blocks.
    """
    block = checks.integer("block", block, low=1, fix="pass the values per block, e.g. 32")
    shape = tuple(values.shape) if hasattr(values, "shape") else (len(values),)
    if len(shape) != 1:
        checks.fail(f"values has shape {shape}: pass the 1-D per-token losses (metrics.token_nll) or per-item values")
    n = shape[0] // block
    if n < 2:
        checks.fail(f"{shape[0]} values make {n} block(s) of {block}: pass a longer text or a smaller block")
    if hasattr(values, "float") and hasattr(values, "view"):  # a torch tensor
        return values[: n * block].float().reshape(n, block).mean(1)
    return np.asarray(values[: n * block], dtype=float).reshape(n, block).mean(1)
