"""``torch.profiler`` made readable: the top operators of a call, and where a decode step's time goes (notebook 08).

- :func:`top_operators`: operators by self time, as a DataFrame;
- :func:`step_breakdown`: wall time split into matrix products, other operators and time outside operators;
- :func:`op_dispatch_cost`: the fixed cost of one trivial operator (Python + dispatch).
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Callable

import torch

from lmkit.profile.timing import sync

__all__ = ["top_operators", "op_dispatch_cost", "step_breakdown"]


@contextlib.contextmanager
def _quiet_stderr_fd():
    """Silence file descriptor 2 (the profiler's C++ start/stop lines), restoring it afterwards."""
    try:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _profiled(fn: Callable[[], object], activities):
    """Run ``fn`` once under ``torch.profiler``; return (the profile, the wall time in ms)."""
    from torch.profiler import profile

    prof = profile(activities=activities)
    with _quiet_stderr_fd():
        prof.__enter__()
    try:
        start = time.perf_counter()
        fn()
        sync()
        wall = (time.perf_counter() - start) * 1e3
    finally:
        with _quiet_stderr_fd():
            prof.__exit__(None, None, None)
    return prof, wall


def top_operators(fn: Callable[[], object], *, row_limit: int = 10, warmup: int = 1):
    """Run ``fn`` under ``torch.profiler`` and return its top operators by self time as a DataFrame (notebook 08).

    Columns: operator, calls, self time (ms), share of the profiled wall time, and CUDA time on a GPU.
    """
    import pandas as pd
    from torch.profiler import ProfilerActivity

    for _ in range(warmup):
        fn()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    prof, wall_ms = _profiled(fn, activities)
    rows = []
    for ev in prof.key_averages():
        row = {"operator": ev.key, "calls": ev.count, "self ms": ev.self_cpu_time_total / 1e3}
        if torch.cuda.is_available():
            row["self cuda ms"] = getattr(ev, "self_device_time_total", 0) / 1e3
        rows.append(row)
    df = pd.DataFrame(rows).sort_values("self ms", ascending=False)
    df["share of wall"] = df["self ms"] / wall_ms
    df.attrs["wall_ms"] = wall_ms
    return df.head(row_limit).reset_index(drop=True)


def op_dispatch_cost(*, repeats: int = 2000) -> float:
    """Seconds per call of a trivial torch op on tiny tensors: the fixed cost of Python + dispatch (notebook 08)."""
    a, b = torch.ones(1), torch.ones(1)
    for _ in range(100):
        torch.add(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.add(a, b)
    return (time.perf_counter() - start) / repeats


def step_breakdown(fn: Callable[[], object], *, warmup: int = 1, repeats: int = 1) -> dict[str, float]:
    """Where one call's wall time goes, from the profiler's top-level operators (notebook 08).

    Returns milliseconds for: ``wall`` (under the profiler); ``matmul`` (self time of the matrix-product kernels);
    ``other ops`` (self time of every other operator); ``outside ops`` (wall minus all operator time: Python,
    module calls, the profiler's own cost); ``ops`` (the number of top-level operators dispatched); and
    ``unprofiled wall`` (the same call timed without the profiler), so that ``wall - unprofiled wall`` estimates
    what the profiler itself adds. With ``repeats`` > 1 every figure is the median over that many profiled calls
    (and as many unprofiled ones, alternating). Raises a one-line ``ValueError`` for ``repeats`` < 1.
    """
    import statistics

    from torch.profiler import ProfilerActivity

    if repeats < 1:
        raise ValueError(f"repeats={repeats}: profile at least one call (repeats=3 gives a median)")
    for _ in range(warmup):
        fn()
    matmul_names = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "quantized::linear")
    samples = []
    for _ in range(repeats):
        prof, wall = _profiled(fn, [ProfilerActivity.CPU])
        matmul = other = 0.0
        top_level = 0
        for ev in prof.events():
            if ev.cpu_parent is None:
                top_level += 1
            self_ms = ev.self_cpu_time_total / 1e3
            if ev.name in matmul_names or "linear_dynamic" in ev.name or "mkldnn" in ev.name and "linear" in ev.name:
                matmul += self_ms
            else:
                other += self_ms
        start = time.perf_counter()
        fn()
        sync()
        plain = (time.perf_counter() - start) * 1e3
        samples.append({"wall": wall, "matmul": matmul, "other ops": other,
                        "outside ops": max(wall - matmul - other, 0.0), "ops": top_level, "unprofiled wall": plain})
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}
