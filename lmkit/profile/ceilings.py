"""The machine's two ceilings, measured: memory bandwidth and matrix-product throughput (notebook 08).

- :func:`memory_bandwidth`: a large copy (bytes read + written per second);
- :func:`matmul_throughput`: ``2 n³`` FLOPs of an ``n × n`` product per second, for each dtype;
- :func:`matmul_sweep`: that throughput over a range of sizes and dtypes, interleaved round by round, to see where it
  plateaus (the peak);
- :func:`matvec_bandwidth`: what a decode step's matrix-vector product really streams.
"""
from __future__ import annotations

import math
import time

import torch

from lmkit import checks
from lmkit.profile.timing import Timing, sync, time_fn

__all__ = ["memory_bandwidth", "matmul_throughput", "matmul_sweep", "matvec_bandwidth"]


def memory_bandwidth(n_bytes: int = 512 * 2**20, *, repeats: int = 7, device=None,
                     kind: str = "copy") -> tuple[float, Timing]:
    """Measured memory bandwidth in bytes/s over a ``n_bytes`` buffer, with the current torch thread count (notebook 08).

    ``kind="copy"`` copies the buffer and counts bytes read + written; ``kind="read"`` sums it and counts the bytes
    read, which is what a decode step does with its weights. The buffer must be much larger than the CPU caches
    (a few MB to a few hundred MB on big servers), or it measures the cache instead of the RAM. Set the thread
    count first (``torch.set_num_threads``): one thread reaches less bandwidth than all cores. Returns (the
    median's bandwidth, the timing).
    """
    if n_bytes < 2**20:
        raise ValueError(f"n_bytes={n_bytes} is too small to leave the caches: use at least 2**20 (256 MiB is good)")
    if kind not in ("copy", "read"):
        raise ValueError(f"kind={kind!r}: use 'copy' (bytes read + written) or 'read' (bytes read by a sum)")
    device = torch.device(device) if device is not None else torch.device("cpu")
    src = torch.ones(n_bytes // 4, dtype=torch.float32, device=device)
    if kind == "read":
        timing = time_fn(lambda: src.sum(), repeats=repeats, warmup=1, device=device, label="read (sum)")
        return src.nbytes / timing.median, timing
    dst = torch.empty_like(src)
    timing = time_fn(lambda: dst.copy_(src), repeats=repeats, warmup=1, device=device, label="copy")
    return 2 * src.nbytes / timing.median, timing


def matmul_throughput(dtype=torch.float32, *, n: int | None = None, repeats: int = 5, device=None,
                      max_n: int = 2048, max_time: float = 0.25) -> tuple[float, Timing]:
    """Measured matmul throughput in FLOP/s: ``2 n³`` floating-point operations for an ``n × n`` product (notebook 08).

    Without ``n``, sizes 128, 256, ... up to ``max_n`` are each timed and the fastest is kept (the *peak*); the
    doubling stops once one product takes ``max_time`` seconds, so that a dtype without fast kernels on this CPU
    (bfloat16 without AVX-512 BF16 or AMX) does not take minutes. Returns (the median's FLOP/s, its timing).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if n is not None:
        n = checks.integer("n", n, low=1, fix="the matrix size, such as 1024, or None to sweep sizes")
    best = None
    for size in [n] if n is not None else [2**k for k in range(7, 14) if 2**k <= max_n]:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        timing = time_fn(lambda: a @ b, repeats=repeats, warmup=1, device=device, label=f"{size}×{size} {dtype}")
        flops = 2 * size**3 / timing.median
        if best is None or flops > best[0]:
            best = (flops, timing)
        if timing.median > max_time:
            break
    return best


def matmul_sweep(dtypes=(torch.float32,), sizes=(64, 128, 256, 512, 1024, 2048), *, repeats: int = 7,
                 min_time: float = 0.02, max_time: float = 0.25, device=None):
    """Matmul throughput (FLOP/s, ``2 n³`` per ``n × n`` product) for every dtype and size, in interleaved rounds
    (notebook 08).

    ``dtypes``: torch dtypes; ``sizes``: matrix sizes ``n`` (integers ≥ 1). Each sample runs the product as many
    times as it takes to last at least ``min_time`` seconds (calibrated on a first, untimed call) and divides, so a
    64 × 64 product is not timed at the resolution of the clock; every round times every (dtype, size) once, so a
    load spike hits all sizes alike; the median over ``repeats`` rounds is the figure. A dtype stops growing once
    one product takes ``max_time`` seconds (bfloat16 on a CPU without AVX-512 BF16 or AMX would take minutes).

    Returns a pandas DataFrame with one row per (dtype, n): ``dtype`` (short name), ``n``, ``GFLOP/s`` (the
    median's), ``p10 GFLOP/s``, ``p90 GFLOP/s``, ``products per sample``; ``df.attrs["timings"]`` maps
    ``(dtype name, n)`` to the :class:`Timing` of one product. The peak of a dtype is the largest ``GFLOP/s``.
    """
    import pandas as pd

    checks.integer("repeats", repeats, low=1, fix="time at least 1 round, e.g. repeats=7")
    min_time = checks.real("min_time", min_time, low=0, fix="seconds per sample, e.g. 0.02")
    max_time = checks.real("max_time", max_time, low=0, fix="seconds of one product that stop the sweep, e.g. 0.25")
    sizes = [checks.integer("size", n, low=1, fix="matrix sizes such as 64, 256, 1024") for n in sizes]
    if not sizes or not dtypes:
        raise ValueError("matmul_sweep() got no sizes or no dtypes: pass e.g. dtypes=(torch.float32,), sizes=(256, 1024)")
    device = torch.device(device) if device is not None else torch.device("cpu")
    cases = {}  # (dtype name, n) -> (a, b, products per sample)
    for dtype in dtypes:
        name = str(dtype).removeprefix("torch.")
        for n in sorted(sizes):
            a = torch.randn(n, n, device=device).to(dtype)
            b = torch.randn(n, n, device=device).to(dtype)
            a @ b  # warm-up
            sync(device)
            start = time.perf_counter()
            a @ b
            sync(device)
            one = time.perf_counter() - start
            cases[(name, n)] = (a, b, max(1, math.ceil(min_time / max(one, 1e-9))))
            if one > max_time:
                break
    times = {key: [] for key in cases}
    for _ in range(repeats):
        for key, (a, b, k) in cases.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(k):
                a @ b
            sync(device)
            times[key].append((time.perf_counter() - start) / k)
    rows, timings = [], {}
    for (name, n), ts in times.items():
        t = timings[(name, n)] = Timing(ts, f"{n}×{n} {name}")
        flops = 2 * n**3
        rows.append({"dtype": name, "n": n, "GFLOP/s": flops / t.median / 1e9, "p10 GFLOP/s": flops / t.p90 / 1e9,
                     "p90 GFLOP/s": flops / t.p10 / 1e9, "products per sample": cases[(name, n)][2]})
    df = pd.DataFrame(rows)
    df.attrs["timings"] = timings
    return df


def matvec_bandwidth(rows: int, cols: int, dtype=torch.float32, *, repeats: int = 10, device=None) -> tuple[float, Timing]:
    """Bytes/s at which ``F.linear`` streams a ``rows × cols`` weight for ONE input vector (notebook 08).

    That is the kernel of every decode step: the copy bandwidth is the ceiling of the memory, this is what the
    matrix-vector product really gets out of it (for a weight as large as the model's, far beyond the caches).
    Returns (bytes of the weight / median time, the timing).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    w = torch.randn(rows, cols, device=device).to(dtype)
    x = torch.randn(1, cols, device=device).to(dtype)
    timing = time_fn(lambda: torch.nn.functional.linear(x, w), repeats=repeats, warmup=2, device=device,
                     label=f"{rows}×{cols} {str(dtype).removeprefix('torch.')} matrix-vector")
    return w.nbytes / timing.median, timing
