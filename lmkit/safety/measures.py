"""The measurements of the safety notebook: rates with intervals per group, a ROC curve and its AUC with a bootstrap
interval (membership inference), and selective prediction's risk-coverage curve and its area (taught in the safety
notebook)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lmkit import checks

__all__ = ["rate_table", "ROC", "roc_auc", "tpr_at_fpr", "plot_roc", "risk_coverage", "aurc", "plot_risk_coverage"]


def _flags(name: str, values) -> np.ndarray:
    """``values`` as a 1-D bool array: each item True/False or 0/1 (NumPy's too); else a one-line error."""
    items = list(values) if hasattr(values, "__iter__") and not isinstance(values, (str, bytes, dict)) else None
    if not items:
        checks.fail(f"{name}={checks.show(values, 60)} must be a non-empty list of True/False (or 0/1), one per item")
    bad = next((i for i, v in enumerate(items) if not (isinstance(v, (bool, np.bool_)) or
                                                        (checks.is_integer(v) and v in (0, 1)))), None)
    if bad is not None:
        checks.fail(f"{name}[{bad}]={checks.show(items[bad])} is not True/False (or 0/1): pass one flag per item")
    return np.asarray(items, dtype=bool)


def _numbers(name: str, values) -> np.ndarray:
    """``values`` as a 1-D float array of finite numbers; else a one-line error."""
    items = list(values) if hasattr(values, "__iter__") and not isinstance(values, (str, bytes, dict)) else None
    if not items:
        checks.fail(f"{name}={checks.show(values, 60)} must be a non-empty list of numbers, one per item")
    bad = next((i for i, v in enumerate(items) if not checks.is_real(v)), None)
    if bad is not None:
        checks.fail(f"{name}[{bad}]={checks.show(items[bad])} is not a finite number: pass one number per item")
    return np.asarray(items, dtype=float)


def _same_length(**arrays) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{len_} {k}" for k, len_ in lengths.items())
        checks.fail(f"got {listed}: pass one value of each per item")


# ----------------------------------------------------------------------------------------------- rates
def rate_table(frame, column: str, by: str | list[str] | None = None, *, confidence: float = 0.95):
    """The rate of a True/False ``column`` of ``frame`` per group of ``by``, with Wilson intervals: a pandas
    DataFrame with the group columns, ``n``, ``k`` (items where ``column`` is True), ``rate`` (``k / n``) and
    ``low`` / ``high`` (Wilson 1927, :func:`lmkit.evaluation.accuracy_interval`) (taught in the safety notebook).

    ``by``: a column name, a list of them, or None for one row over all items. Used for extraction rates per group
    or fame grade, refusal rates per side, attack success per defence. Errors: a column that is not in ``frame``,
    values that are not True/False or 0/1, an empty frame.
    """
    import pandas as pd

    from lmkit.evaluation.stats import accuracy_interval

    confidence = checks.probability("confidence", confidence, open_low=True, open_high=True, fix="pass e.g. 0.95")
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        checks.fail(f"frame={checks.show(frame, 50)} must be a non-empty pandas DataFrame, such as extraction() "
                    "returns")
    keys = [] if by is None else [by] if isinstance(by, str) else list(by)
    for key in [column, *keys]:
        if key not in frame.columns:
            checks.fail(f"{key!r} is not a column of the frame: pick one of {list(frame.columns)}")
    _flags(column, frame[column].tolist())
    groups = [((), frame)] if not keys else frame.groupby(keys, sort=True)
    out = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        k, n = int(part[column].astype(bool).sum()), len(part)
        low, high = accuracy_interval(k, n, confidence)
        out.append({**dict(zip(keys, key)), "n": n, "k": k, "rate": k / n, "low": low, "high": high})
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------------- ROC
class ROC(NamedTuple):
    """What :func:`roc_auc` returns: ``auc`` with its bootstrap interval ``low``..``high`` at ``confidence``; the
    curve (``fpr``, ``tpr``, ``thresholds``, from ``sklearn.metrics.roc_curve``); ``n_positive``, ``n_negative``
    (taught in the safety notebook)."""

    auc: float
    low: float
    high: float
    confidence: float
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    n_positive: int
    n_negative: int

    def __str__(self) -> str:
        return (f"AUC {self.auc:.3f} ({self.confidence:.0%} CI [{self.low:.3f}, {self.high:.3f}], "
                f"{self.n_positive} positives vs {self.n_negative} negatives)")


def _pairwise_auc(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
    """The AUC as the Mann-Whitney statistic: the share of (positive, negative) pairs in which the positive scores
    higher, ties counting one half. ``pos`` ``[..., n1]``, ``neg`` ``[..., n0]`` (resamples on the leading axes)."""
    pos, neg = np.moveaxis(pos, axis, -1), np.moveaxis(neg, axis, -1)
    diff = pos[..., :, None] - neg[..., None, :]
    return ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(-2, -1))


def roc_auc(scores, labels, *, n_resamples: int = 2_000, confidence: float = 0.95, seed: int = 0) -> ROC:
    """The ROC curve of ``scores`` for telling ``labels`` True (positives: members, texts seen in training) from
    False, its area (AUC) and a bootstrap interval (taught in the safety notebook).

    ``scores``: one finite number per item, **higher meaning "more likely positive"** (for
    :func:`lmkit.safety.membership_scores` pass ``-loss`` or ``-zlib_ratio``); ``labels``: one True/False per item,
    at least one of each. The AUC (``sklearn.metrics.roc_auc_score``) is the probability that a random positive
    scores above a random negative, ties counting one half (Hanley & McNeil 1982): 0.5 is chance, 1 perfect.
    The interval is a stratified percentile bootstrap (Efron 1979): positives and negatives are resampled apart,
    each with replacement, ``n_resamples`` times (``scipy.stats.bootstrap`` with two samples), so that every
    resample keeps both groups' sizes. The curve is ``sklearn.metrics.roc_curve``'s.

    Errors (one line): lists of different lengths, non-finite scores, labels that are not True/False, only one
    class, a bad ``n_resamples`` / ``confidence`` / ``seed``.
    """
    from scipy.stats import bootstrap
    from sklearn.metrics import roc_auc_score, roc_curve

    n_resamples = checks.integer("n_resamples", n_resamples, low=100, fix="pass e.g. n_resamples=2_000")
    confidence = checks.probability("confidence", confidence, open_low=True, open_high=True, fix="pass e.g. 0.95")
    seed = checks.seed("seed", seed)
    s, y = _numbers("scores", scores), _flags("labels", labels)
    _same_length(scores=s, labels=y)
    if y.all() or not y.any():
        checks.fail(f"labels are all {bool(y[0])}: an AUC needs at least one positive and one negative item")
    pos, neg = s[y], s[~y]
    auc = float(roc_auc_score(y, s))
    if len(pos) > 1 and len(neg) > 1 and np.ptp(s) > 0:
        res = bootstrap((pos, neg), _pairwise_auc, n_resamples=n_resamples, confidence_level=confidence,
                        method="percentile", vectorized=True, batch=200, rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    else:  # one item in a group, or every score equal: nothing to resample that would change the AUC much
        low = high = auc
    fpr, tpr, thresholds = roc_curve(y, s)
    return ROC(auc, low, high, confidence, fpr, tpr, thresholds, int(y.sum()), int((~y).sum()))


def tpr_at_fpr(roc: ROC, fpr: float = 0.1) -> float:
    """The largest true-positive rate the curve reaches with a false-positive rate at most ``fpr`` (taught in the
    safety notebook). Carlini et al. 2022 ("Membership inference attacks from first principles") argue for reading
    an attack at a low FPR rather than by its AUC: an auditor cares about the texts it flags with confidence. With
    ``n`` negatives the smallest FPR a curve can show above 0 is ``1 / n``."""
    fpr = checks.probability("fpr", fpr, fix="a false-positive rate such as 0.1")
    if not isinstance(roc, ROC):
        checks.fail(f"roc={checks.show(roc, 40)} is not a ROC: pass what lmkit.safety.roc_auc returns")
    return float(roc.tpr[roc.fpr <= fpr + 1e-12].max())


def plot_roc(roc: ROC, ax=None, label: str = "score", title: str = "membership inference: ROC curve"):
    """Draw ``roc`` (from :func:`roc_auc`) with the chance diagonal; the legend gives the AUC and its interval.
    Returns the axes (taught in the safety notebook)."""
    import matplotlib.pyplot as plt

    if not isinstance(roc, ROC):
        checks.fail(f"roc={checks.show(roc, 40)} is not a ROC: pass what lmkit.safety.roc_auc returns")
    ax = ax or plt.subplots(figsize=(4.5, 4.5))[1]
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    ax.step(roc.fpr, roc.tpr, where="post",
            label=f"{label}: AUC {roc.auc:.2f} [{roc.low:.2f}, {roc.high:.2f}]")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false-positive rate (unseen texts flagged)",
           ylabel="true-positive rate (seen texts flagged)", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return ax


# ----------------------------------------------------------------------------------------------- selective prediction
def _expected_errors(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items sorted by confidence, highest first: ``(sorted confidences, expected errors among the first k)``
    for ``k = 1..n``, ties broken at random (in expectation: within a tie, errors accrue at the tie's mean rate)."""
    order = np.argsort(-confidence, kind="stable")
    conf, wrong = confidence[order], (~correct[order]).astype(float)
    errors = np.cumsum(wrong)
    start = 0
    for end in np.flatnonzero(np.r_[conf[1:] != conf[:-1], True]) + 1:  # end of each run of equal confidences
        before = errors[start - 1] if start else 0.0
        size = end - start
        errors[start:end] = before + wrong[start:end].sum() * np.arange(1, size + 1) / size
        start = end
    return conf, errors


def risk_coverage(confidence, correct):
    """The risk-coverage curve of selective prediction: the model answers only when its confidence is at least a
    threshold, and abstains otherwise (taught in the safety notebook; El-Yaniv & Wiener 2010, "On the foundations
    of noise-free selective classification"; Geifman & El-Yaniv 2017, "Selective classification for deep neural
    networks").

    ``confidence``: one finite number per item (any scale, higher = surer: the probability of the chosen answer of
    :func:`lmkit.evaluation.multiple_choice`); ``correct``: one True/False per item. One row per distinct
    confidence, highest first: ``threshold`` (answer when confidence >= it), ``answered`` (items kept),
    ``coverage`` (``answered / n``), ``accuracy`` (right among those kept) and ``risk`` (``1 - accuracy``, the
    selective risk). The last row keeps everything (coverage 1, the plain accuracy). A good confidence gives a
    curve whose accuracy falls as coverage grows; a useless one, a flat line at the plain accuracy.

    Errors (one line): lists of different lengths or empty, non-finite confidences, flags that are not True/False.
    """
    import pandas as pd

    conf, ok = _numbers("confidence", confidence), _flags("correct", correct)
    _same_length(confidence=conf, correct=ok)
    sorted_conf, errors = _expected_errors(conf, ok)
    ends = np.flatnonzero(np.r_[sorted_conf[1:] != sorted_conf[:-1], True])  # last index of each distinct value
    answered = ends + 1
    risk = errors[ends] / answered
    return pd.DataFrame({"threshold": sorted_conf[ends], "answered": answered, "coverage": answered / len(conf),
                         "accuracy": 1 - risk, "risk": risk})


def aurc(confidence, correct, *, excess: bool = False) -> float:
    """The area under the risk-coverage curve, AURC (taught in the safety notebook; Geifman, Uziel & El-Yaniv
    2019, "Bias-reduced uncertainty estimation for deep neural classifiers", ICLR).

    ``AURC = (1/n) Σ_{k=1..n} risk(k)``, where ``risk(k)`` is the error rate among the ``k`` most confident items;
    ties of confidence are broken at random, in expectation (so the value does not depend on the items' order).
    Lower is better. It mixes two things: how often the model is right and how well its confidence ranks right
    above wrong. ``excess=True`` gives E-AURC, the AURC minus that of a perfect ranking of the same answers (all
    right ones first), which leaves only the ranking: 0 for a perfect confidence. Same inputs and errors as
    :func:`risk_coverage`.
    """
    checks.boolean("excess", excess)
    conf, ok = _numbers("confidence", confidence), _flags("correct", correct)
    _same_length(confidence=conf, correct=ok)
    k = np.arange(1, len(ok) + 1)
    value = float(np.mean(_expected_errors(conf, ok)[1] / k))
    if excess:
        best = np.cumsum(np.sort(~ok).astype(float))  # every right answer ranked first
        value -= float(np.mean(best / k))
    return value


def plot_risk_coverage(curve, ax=None, label: str = "confidence", y: str = "accuracy",
                       title: str = "selective prediction"):
    """Draw :func:`risk_coverage`'s curve: ``y`` (``"accuracy"`` or ``"risk"``) against coverage, with the
    accuracy (or risk) of answering everything as a dashed line. Returns the axes (taught in the safety
    notebook)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    checks.one_of("y", y, ("accuracy", "risk"))
    if not isinstance(curve, pd.DataFrame) or not {"coverage", y} <= set(curve.columns) or curve.empty:
        checks.fail(f"curve={checks.show(curve, 40)} is not a risk-coverage curve: pass what "
                    "lmkit.safety.risk_coverage returns")
    ax = ax or plt.subplots(figsize=(5, 3.6))[1]
    ax.plot(curve["coverage"], curve[y], marker=".", label=label)
    ax.axhline(float(curve[y].iloc[-1]), color="k", ls="--", lw=1, label="answer everything")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="coverage (share of questions answered)", ylabel=y, title=title)
    ax.legend(fontsize=8)
    return ax
