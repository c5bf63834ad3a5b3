"""Timing done right: warm-up, repeats, median and spread, GPU synchronisation, round-robin comparisons (notebook 08).

- :func:`time_fn` times one function; :func:`interleave` times several round-robin (A B C A B C ...), so that a load
  spike on a shared machine hits every configuration alike and their ratios stay trustworthy.
- :class:`Timing` holds the repeats and their statistics; percentiles are ``numpy.percentile`` (linear).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from lmkit import checks
from lmkit.env import show_progress

__all__ = ["sync", "percentile", "Timing", "format_seconds", "check_counts", "time_fn", "interleave"]


def sync(device=None) -> None:
    """Wait for the GPU to finish its queued work (no-op on the CPU); call it before reading a clock."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda" or device is None and torch.cuda.is_available():
        torch.cuda.synchronize()
    elif device is not None and device.type == "mps":
        torch.mps.synchronize()


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``: ``numpy.percentile`` (linear interpolation) (notebook 08)."""
    xs = np.asarray(list(values), dtype=float)
    if not xs.size:
        raise ValueError("percentile of no values: time at least one repeat")
    q = checks.real("q", q, low=0, high=100, fix="a percentile, such as 50 for the median")
    return float(np.percentile(xs, q))


@dataclass
class Timing:
    """Repeated wall times of one measurement, in seconds, with its median and spread (notebook 08)."""

    times: list[float]
    label: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p10(self) -> float:
        return percentile(self.times, 10)

    @property
    def p90(self) -> float:
        return percentile(self.times, 90)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: the relative width of the middle 80% of the repeats."""
        return (self.p90 - self.p10) / self.median if self.median > 0 else 0.0

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return (f"{name}median {format_seconds(self.median)} (p10 {format_seconds(self.p10)}, p90 {format_seconds(self.p90)}, "
                f"n={len(self.times)})")


def format_seconds(seconds: float) -> str:
    """``1.23 s``, ``45.6 ms`` or ``78.9 µs``: a duration in the unit that suits it."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def check_counts(repeats: int, warmup: int) -> None:
    """One-line errors for a repeat count below 1 or a negative warm-up count."""
    checks.integer("repeats", repeats, low=1, fix="time at least 1 repeat")
    checks.integer("warmup", warmup, low=0, fix="use 0 or more warm-up calls")


def time_fn(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, device=None, label: str = "") -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed, synchronising the GPU (notebook 08).

    The warm-up pays one-off costs (lazy imports, allocator growth, kernel selection, compilation) so that they do
    not pollute the repeats; the median resists the outliers that a shared machine produces.
    """
    check_counts(repeats, warmup)
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return Timing(times, label)


def interleave(fns: dict[str, Callable[[], object]], *, repeats: int = 5, warmup: int = 1, device=None,
               progress: bool | None = None) -> dict[str, Timing]:
    """Time several configurations round-robin: A B C A B C ... so that a load spike hits all alike (notebook 08).

    Timing A five times, then B five times, compares A under one load with B under another; interleaving makes
    the ratios between configurations trustworthy even when the absolute numbers drift.
    """
    from tqdm.auto import tqdm

    check_counts(repeats, warmup)
    if not fns:
        raise ValueError("interleave() got no configurations: pass a dict {name: callable}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in tqdm(range(repeats), desc="rounds", disable=not show_progress(progress), leave=False):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: Timing(ts, name) for name, ts in times.items()}
