"""Several generation configurations timed in the same rounds (A B C A B C ...), and tabulated (notebook 08).

A configuration is a function that returns a :class:`~lmkit.profile.generation.GenerationStats`: a lambda around
``time_generation``, a ``LeanDecoder``, a ``FastDecoder``, or llama.cpp in its child process
(:class:`lmkit.profile.llama_cpp.LlamaCpp`). When a configuration's native code crashes
(:class:`lmkit.profile.isolated.ChildCrashed`), it is dropped with a one-line note and the others' results are kept.
"""
from __future__ import annotations

import statistics
from typing import Callable

import torch

from lmkit.profile.generation import GenerationStats, as_model, time_generation
from lmkit.profile.isolated import ChildCrashed
from lmkit.profile.roofline import weight_bytes
from lmkit.profile.timing import check_counts, percentile
from lmkit.env import show_progress
from lmkit.profile.timing import Timing
from lmkit.stats import Comparison, compare

__all__ = ["compare_runs", "compare_generation", "summary_table", "compare_configs", "compare_table", "compare_timings"]


def summary_table(runs: dict[str, list[GenerationStats]]):
    """One row per configuration: median decode tok/s with its p10/p90 over the rounds, median TTFT and per-token
    p50/p90 latencies (a pandas DataFrame; ``df.attrs["runs"]`` keeps every :class:`GenerationStats`)."""
    import pandas as pd

    rows = []
    for name, stats in runs.items():
        speeds = [s.decode_tok_s for s in stats]
        rows.append({"config": name, "decode tok/s": statistics.median(speeds),
                     "p10 tok/s": percentile(speeds, 10), "p90 tok/s": percentile(speeds, 90),
                     "ttft ms": 1e3 * statistics.median(s.ttft_s for s in stats),
                     "p50 ms/token": 1e3 * statistics.median(s.p50_s for s in stats),
                     "p90 ms/token": 1e3 * statistics.median(s.p90_s for s in stats)})
    df = pd.DataFrame(rows, columns=["config", "decode tok/s", "p10 tok/s", "p90 tok/s", "ttft ms", "p50 ms/token",
                                     "p90 ms/token"]).set_index("config")
    df.attrs["runs"] = runs
    return df


def compare_runs(runs: dict[str, Callable[[], GenerationStats]], *, repeats: int = 3, warmup: int = 1,
                 progress: bool | None = None):
    """Time several generation functions round-robin (A B C A B C ...) and tabulate them (notebook 08).

    Each function takes no argument and returns a :class:`GenerationStats` (``lmkit.profile.LeanDecoder``, a lambda
    around :func:`time_generation`, ``lmkit.profile.time_llama_cpp`` ...). Returns :func:`summary_table`'s
    DataFrame. A function that raises :class:`ChildCrashed` (native code that died in its child process) is
    dropped from the rounds, its one-line message printed and kept in ``df.attrs["failed"]``.
    """
    from tqdm.auto import tqdm

    check_counts(repeats, warmup)
    if not runs:
        raise ValueError("compare_runs() got no functions: pass {name: callable returning GenerationStats}")
    stats: dict[str, list[GenerationStats]] = {name: [] for name in runs}
    failed: dict[str, str] = {}

    def attempt(name, fn):
        try:
            return fn()
        except ChildCrashed as exc:
            failed[name] = str(exc)
            print(f"{name}: dropped from the comparison: {exc}")
            return None

    for name, fn in runs.items():
        for _ in range(warmup):
            if name not in failed:
                attempt(name, fn)
    for _ in tqdm(range(repeats), desc="rounds", disable=not show_progress(progress), leave=False):
        for name, fn in runs.items():
            if name not in failed and (result := attempt(name, fn)) is not None:
                stats[name].append(result)
    df = summary_table({name: s for name, s in stats.items() if name not in failed})
    df.attrs["failed"] = failed
    return df


def compare_generation(configs: dict[str, tuple], input_ids: torch.Tensor, max_new_tokens: int = 32, *,
                       repeats: int = 3, warmup: int = 1, progress: bool | None = None):
    """Time ``model.generate`` for several configurations, interleaved round by round (notebook 08).

    ``configs`` maps a name to ``(model, generate_kwargs)``. Returns :func:`summary_table`'s DataFrame plus the
    weights' size (``weights MB``). The warm-up generates a few tokens per configuration.
    """
    check_counts(repeats, warmup)
    if not configs:
        raise ValueError("compare_generation() got no configurations: pass {name: (model, generate_kwargs)}")
    for model, kwargs in configs.values():
        for _ in range(warmup):
            time_generation(model, input_ids, min(max_new_tokens, 4), **kwargs)
    runs = {name: (lambda m, kw: lambda: time_generation(m, input_ids, max_new_tokens, **kw))(model, kwargs)
            for name, (model, kwargs) in configs.items()}
    df = compare_runs(runs, repeats=repeats, warmup=0, progress=progress)
    df["weights MB"] = [weight_bytes(as_model(configs[name][0])) / 1e6 for name in df.index]
    return df


QUANTITIES = {"decode tok/s": lambda s: s.decode_tok_s, "ttft ms": lambda s: 1e3 * s.ttft_s,
              "p50 ms/token": lambda s: 1e3 * s.p50_s, "total s": lambda s: s.total_s}
"""The per-round figures :func:`compare_configs` can compare, from each :class:`GenerationStats`."""


def compare_configs(table, a: str, b: str, *, quantity: str = "decode tok/s", confidence: float = 0.95) -> Comparison:
    """Does configuration ``a`` differ from ``b`` in ``quantity``? :func:`lmkit.stats.compare` on the paired rounds
    of a :func:`compare_runs` / :func:`compare_generation` table (notebook 08).

    Round ``i`` of ``a`` and round ``i`` of ``b`` ran one after the other, under the same load: they are pairs
    (paired t interval on the per-round differences). ``quantity`` is one of :data:`QUANTITIES`. Returns the
    :class:`lmkit.stats.Comparison` (``diff`` = mean of ``a`` − mean of ``b``, its interval, its verdict).
    Raises a one-line ``ValueError`` for a name not in the table, an unknown quantity, or fewer than 2 rounds.
    """
    runs = getattr(table, "attrs", {}).get("runs")
    if runs is None:
        raise ValueError("compare_configs() needs the table returned by compare_runs() or compare_generation() "
                         "(its attrs['runs'] holds the rounds)")
    for name in (a, b):
        if name not in runs:
            raise ValueError(f"configuration {name!r} is not in the table: use one of {sorted(runs)}")
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity={quantity!r}: use one of {sorted(QUANTITIES)}")
    get = QUANTITIES[quantity]
    xs, ys = [get(s) for s in runs[a]], [get(s) for s in runs[b]]
    if min(len(xs), len(ys)) < 2:
        raise ValueError(f"{a!r} and {b!r} have {len(xs)} and {len(ys)} round(s): an interval needs at least 2; "
                         "time more rounds (repeats=5)")
    n = min(len(xs), len(ys))  # a configuration dropped mid-way keeps its first rounds, paired with the same rounds
    return compare(xs[:n], ys[:n], paired=True, confidence=confidence)


def compare_table(table, base: str, *, quantity: str = "decode tok/s", confidence: float = 0.95):
    """Every configuration of a :func:`compare_runs` table against ``base``, with :func:`compare_configs` (notebook 08).

    Returns a pandas DataFrame, one row per other configuration: ``diff`` (mean of the row − mean of ``base``, in
    ``quantity``'s unit), ``CI low``, ``CI high`` (the paired interval) and ``verdict`` (``"higher"``, ``"lower"``
    or ``"cannot be told apart"``).
    """
    import pandas as pd

    rows = {}
    for name in table.index:
        if name != base:
            c = compare_configs(table, name, base, quantity=quantity, confidence=confidence)
            rows[name] = {"diff": c.diff, "CI low": c.low, "CI high": c.high, "verdict": c.verdict}
    return pd.DataFrame(rows, index=["diff", "CI low", "CI high", "verdict"]).T


def compare_timings(a: Timing, b: Timing, *, confidence: float = 0.95, scale: float = 1.0) -> Comparison:
    """Seconds of ``a`` against seconds of ``b``, paired round by round (two :class:`Timing` from
    :func:`lmkit.profile.interleave`, whose repeat ``i`` ran in the same round): :func:`lmkit.stats.compare`
    (notebook 08). ``scale`` multiplies the seconds first (``1e3``: milliseconds). ``diff`` < 0 with verdict
    ``"lower"`` means ``a`` was faster. Raises a one-line ``ValueError``
    when the two have different numbers of repeats (they were not interleaved) or fewer than 2.
    """
    if len(a.times) != len(b.times):
        raise ValueError(f"{a.label or 'a'} has {len(a.times)} repeats and {b.label or 'b'} {len(b.times)}: pass "
                         "two timings from the same interleave() call")
    return compare([scale * t for t in a.times], [scale * t for t in b.times], paired=True, confidence=confidence)
