"""Inference profiling against the hardware's limits (notebook 05).

- Correct timing: warm-up, repeats, median and spread, GPU synchronisation (:func:`time_fn`), and several
  configurations timed round-robin so that a shared machine's load hits them alike (:func:`interleave`).
- Peak memory: the kernel's peak-RSS counter on Linux (reset, then read), a sampling thread elsewhere,
  ``max_memory_allocated`` on a GPU.
- Generation timed per token: time to first token (prefill), decode tokens/s, p50/p90 per-token latency.
- The machine's two ceilings, measured: memory bandwidth (a large copy) and matmul throughput (per dtype).
- From them, the decode and prefill bounds, the roofline plot, and each configuration's share of its bound.
- The KV-cache size formula, and the bytes a real cache holds.
- ``torch.profiler``'s top operators, and where a decode step's time goes beyond its kernels.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch

from lmkit.layers import head_dim as _head_dim

GB = 1e9


# ----------------------------------------------------------------------------------------------- timing
def sync(device=None) -> None:
    """Wait for the GPU to finish its queued work (no-op on the CPU); call it before reading a clock."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda" or device is None and torch.cuda.is_available():
        torch.cuda.synchronize()
    elif device is not None and device.type == "mps":
        torch.mps.synchronize()


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation, as ``numpy.percentile`` (notebook 05)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("percentile of no values: time at least one repeat")
    if not 0 <= q <= 100:
        raise ValueError(f"q={q} is not a percentile: use a number between 0 and 100")
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class Timing:
    """Repeated wall times of one measurement, in seconds, with its median and spread (notebook 05)."""

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
        return (f"{name}median {_fmt_s(self.median)} (p10 {_fmt_s(self.p10)}, p90 {_fmt_s(self.p90)}, "
                f"n={len(self.times)})")


def _fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _check_counts(repeats: int, warmup: int) -> None:
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: time at least 1 repeat")
    if warmup < 0:
        raise ValueError(f"warmup={warmup} is negative: use 0 or more warm-up calls")


def time_fn(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, device=None, label: str = "") -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed, synchronising the GPU (notebook 05).

    The warm-up pays one-off costs (lazy imports, allocator growth, kernel selection, compilation) so that they do
    not pollute the repeats; the median resists the outliers that a shared machine produces.
    """
    _check_counts(repeats, warmup)
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
               progress: bool = True) -> dict[str, Timing]:
    """Time several configurations round-robin: A B C A B C ... so that a load spike hits all alike (notebook 05).

    Timing A five times, then B five times, compares A under one load with B under another; interleaving makes
    the ratios between configurations trustworthy even when the absolute numbers drift.
    """
    from tqdm.auto import tqdm

    _check_counts(repeats, warmup)
    if not fns:
        raise ValueError("interleave() got no configurations: pass a dict {name: callable}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in tqdm(range(repeats), desc="rounds", disable=not progress, leave=False):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: Timing(ts, name) for name, ts in times.items()}


# ----------------------------------------------------------------------------------------------- memory
def rss_bytes() -> int:
    """Resident memory of this process now, in bytes."""
    import psutil

    return psutil.Process().memory_info().rss


_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (e.g. ``VmHWM``, the peak resident memory) in bytes, or None."""
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS: write "5" to /proc/self/clear_refs (Linux)."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


_HWM_OK: bool | None = None


def hwm_supported() -> bool:
    """True when this kernel lets a process reset and read its own peak RSS (Linux ≥ 4.0, /proc mounted)."""
    global _HWM_OK
    if _HWM_OK is None:
        _HWM_OK = _status_bytes("VmHWM") is not None and _reset_hwm()
    return _HWM_OK


_ACTIVE: list["PeakMemory"] = []  # open VmHWM blocks: a reset by an inner block must not lose an outer peak


class PeakMemory:
    """Context manager: the peak memory while its block runs (notebook 05).

    - GPU: ``torch.cuda.max_memory_allocated`` (reset on entry).
    - CPU on Linux (``method="hwm"``): the kernel's own peak-RSS counter. Entry resets it (``"5"`` written to
      /proc/self/clear_refs), exit reads ``VmHWM`` from /proc/self/status: every page the process touched counts,
      however briefly, with no thread and no sampling. Nested blocks work: a reset first hands the peak reached
      so far to every open block.
    - CPU elsewhere (``method="sample"``): the resident memory sampled every ``interval`` seconds by a thread;
      an allocation shorter than that can be missed.

    ``peak`` is the highest value, ``start`` the value on entry, ``delta = peak - start`` what the block added.
    ``method`` is "cuda", "hwm" or "sample"; pass ``method="sample"`` to force the portable sampler.
    """

    def __init__(self, device=None, interval: float = 0.002, method: str | None = None):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if method not in (None, "sample", "hwm", "cuda"):
            raise ValueError(f"method={method!r} is unknown: use None (automatic), 'hwm', 'sample' or 'cuda'")
        if method is None:
            method = "cuda" if self.device.type == "cuda" else "hwm" if hwm_supported() else "sample"
        if method == "hwm" and not hwm_supported():
            raise ValueError("method='hwm' needs Linux's /proc/self/clear_refs: use method='sample' here")
        self.method = method
        self.interval = interval
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread = None

    @property
    def delta(self) -> int:
        return self.peak - self.start

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> "PeakMemory":
        if self.method == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = self.peak = torch.cuda.memory_allocated(self.device)
        elif self.method == "hwm":
            hwm = _status_bytes("VmHWM") or 0
            for outer in _ACTIVE:
                outer.peak = max(outer.peak, hwm)
            _reset_hwm()
            self.start = self.peak = _status_bytes("VmRSS") or rss_bytes()
            _ACTIVE.append(self)
        else:
            self.start = self.peak = rss_bytes()
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.method == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))
        elif self.method == "hwm":
            self.peak = max(self.peak, _status_bytes("VmHWM") or 0)
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())


# ----------------------------------------------------------------------------------------------- generation
@dataclass
class GenerationStats:
    """Per-token timestamps of one generation, and what follows from them (notebook 05).

    ``stamps[i]`` is the time (s, from the call) at which token ``i`` of every row was ready; ``stamps[0]`` is
    the time to first token (the prefill plus one step), the gaps between later stamps are the decode latencies.
    """

    stamps: list[float]
    batch: int = 1
    prompt_tokens: int = 0
    total_s: float = 0.0
    peak_bytes: int = 0
    tokens: list = field(default_factory=list, repr=False)

    @property
    def new_tokens(self) -> int:
        return len(self.stamps)

    @property
    def ttft_s(self) -> float:
        """Time to first token: the prefill of the prompt (plus the first sampling step)."""
        return self.stamps[0]

    @property
    def latencies(self) -> list[float]:
        """Seconds between consecutive tokens after the first: one decode step each."""
        return [b - a for a, b in zip(self.stamps, self.stamps[1:])]

    @property
    def decode_tok_s(self) -> float:
        """Decode throughput, all rows together: tokens after the first / time after the first."""
        span = self.stamps[-1] - self.stamps[0]
        return self.batch * (len(self.stamps) - 1) / span if span > 0 else float("nan")

    @property
    def p50_s(self) -> float:
        return percentile(self.latencies, 50) if self.latencies else float("nan")

    @property
    def p90_s(self) -> float:
        return percentile(self.latencies, 90) if self.latencies else float("nan")

    def __repr__(self) -> str:
        return (f"GenerationStats(batch={self.batch}, prompt={self.prompt_tokens}, new={self.new_tokens}, "
                f"ttft={_fmt_s(self.ttft_s)}, decode={self.decode_tok_s:.1f} tok/s, "
                f"p50={_fmt_s(self.p50_s)}, p90={_fmt_s(self.p90_s)})")


def time_steps(steps: Iterable, *, batch: int = 1, prompt_tokens: int = 0, device=None) -> GenerationStats:
    """Timestamp each item that ``steps`` yields, e.g. ``lmkit.generate.stream(...)`` (notebook 05)."""
    start = time.perf_counter()
    stamps, tokens = [], []
    for step in steps:
        sync(device)
        stamps.append(time.perf_counter() - start)
        tokens.append(step)
    if not stamps:
        raise ValueError("the generator yielded no token: ask for max_new_tokens >= 1")
    return GenerationStats(stamps, batch, prompt_tokens, stamps[-1], 0, tokens)


class _StampStreamer:
    """A ``generate`` streamer that records when each new token arrives (the first ``put`` is the prompt)."""

    def __init__(self, start: float):
        self.start, self.stamps, self.seen_prompt = start, [], False

    def put(self, value) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        self.stamps.append(time.perf_counter() - self.start)

    def end(self) -> None:
        pass


def _as_model(lm_or_model):
    """The torch model inside an :class:`lmkit.LM`, or the model itself (a causal LM also has a ``.model``)."""
    return lm_or_model if isinstance(lm_or_model, torch.nn.Module) else lm_or_model.model


def time_generation(lm_or_model, input_ids: torch.Tensor, max_new_tokens: int = 32, *, memory: bool = False,
                    **generate_kwargs) -> GenerationStats:
    """Greedy ``model.generate`` with a timestamp per token: TTFT, decode tok/s, p50/p90 latency (notebook 05).

    Generation runs exactly ``max_new_tokens`` steps (``min_new_tokens`` is set too, so an end-of-text token does
    not cut a timing short). ``memory=True`` also records the peak memory (:class:`PeakMemory`).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: generate at least 1 token")
    model = _as_model(lm_or_model)
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
    input_ids = input_ids.to(device)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    kwargs = dict(do_sample=False, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)
    if generate_kwargs.get("pad_token_id") is None and getattr(model.generation_config, "pad_token_id", None) is None:
        kwargs["pad_token_id"] = model.generation_config.eos_token_id
    kwargs.update(generate_kwargs)
    mem = PeakMemory(device) if memory else None
    with torch.inference_mode():
        if mem:
            mem.__enter__()
        start = time.perf_counter()
        streamer = _StampStreamer(start)
        out = model.generate(input_ids, streamer=streamer, **kwargs)
        sync(device)
        total = time.perf_counter() - start
        if mem:
            mem.__exit__(None, None, None)
    return GenerationStats(streamer.stamps, input_ids.shape[0], input_ids.shape[1], total,
                           mem.peak if mem else 0, out[:, input_ids.shape[1]:].tolist())


# ----------------------------------------------------------------------------------------------- the ceilings
def memory_bandwidth(n_bytes: int = 512 * 2**20, *, repeats: int = 7, device=None) -> tuple[float, Timing]:
    """Measured memory bandwidth in bytes/s: copy a ``n_bytes`` tensor, counting bytes read + written (notebook 05).

    The buffer must be much larger than the CPU caches (a few MB to a few hundred MB on big servers), or the copy
    measures the cache instead of the RAM. Returns (the median's bandwidth, the timing).
    """
    if n_bytes < 2**20:
        raise ValueError(f"n_bytes={n_bytes} is too small to leave the caches: use at least 2**20 (256 MiB is good)")
    device = torch.device(device) if device is not None else torch.device("cpu")
    src = torch.ones(n_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    timing = time_fn(lambda: dst.copy_(src), repeats=repeats, warmup=1, device=device, label="copy")
    return 2 * src.nbytes / timing.median, timing


def matmul_throughput(dtype=torch.float32, *, n: int | None = None, repeats: int = 5, device=None,
                      max_n: int = 2048, max_time: float = 0.25) -> tuple[float, Timing]:
    """Measured matmul throughput in FLOP/s: ``2 n³`` floating-point operations for an ``n × n`` product (notebook 05).

    Without ``n``, sizes 128, 256, ... up to ``max_n`` are each timed and the fastest is kept (the *peak*); the
    doubling stops once one product takes ``max_time`` seconds, so that a dtype without fast kernels on this CPU
    (bfloat16 without AVX-512 BF16 or AMX) does not take minutes. Returns (the median's FLOP/s, its timing).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if n is not None and n < 1:
        raise ValueError(f"n={n}: the matrix size must be at least 1")
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


def matvec_bandwidth(rows: int, cols: int, dtype=torch.float32, *, repeats: int = 10, device=None) -> tuple[float, Timing]:
    """Bytes/s at which ``F.linear`` streams a ``rows × cols`` weight for ONE input vector (notebook 05).

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


# ----------------------------------------------------------------------------------------------- bytes and FLOPs
def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the parameters as stored, tied tensors once, quantized packed weights included (notebook 05).

    Decoding one token reads every weight once (the tied embedding too: the output head multiplies by all of it).
    """
    seen, total = set(), 0
    for t in model.parameters():
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    for mod in model.modules():  # dynamic int8 Linear layers keep their weight in a packed param, not a Parameter
        packed = getattr(mod, "_packed_params", None)
        if packed is not None and hasattr(packed, "_weight_bias"):
            w, b = packed._weight_bias()
            total += w.numel() * w.element_size() + (b.numel() * b.element_size() if b is not None else 0)
    return total


def _shape(config) -> tuple[int, int, int, int, int]:
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = _head_dim(config)
    return layers, heads, kv_heads, head_dim, config.hidden_size


def kv_cache_bytes(config, tokens: int, *, batch: int = 1, dtype=torch.float32) -> int:
    """The KV cache formula: layers × 2 (K and V) × kv_heads × head_dim × tokens × batch × bytes (notebook 05)."""
    if tokens < 0 or batch < 1:
        raise ValueError(f"tokens={tokens}, batch={batch}: use tokens >= 0 and batch >= 1")
    layers, _, kv_heads, head_dim, _ = _shape(config)
    return layers * 2 * kv_heads * head_dim * tokens * batch * torch.empty((), dtype=dtype).element_size()


def cache_bytes(cache) -> int:
    """Bytes actually held by a transformers cache (``past_key_values``): every key and value tensor (notebook 05)."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise ValueError(f"{type(cache).__name__} is not a transformers Cache: pass out.past_key_values")
    total = 0
    for layer in layers:
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def matmul_params(model: torch.nn.Module) -> int:
    """Parameters used in matrix products per token: every Linear (output head included), not the embedding lookup."""
    total = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            total += mod.in_features * mod.out_features
        elif hasattr(mod, "in_features") and hasattr(mod, "out_features") and hasattr(mod, "_packed_params"):
            total += mod.in_features * mod.out_features
    return total


def decode_flops(model: torch.nn.Module, context: int) -> int:
    """FLOPs to decode one token after ``context`` cached ones: 2 × matmul params + 4 × layers × heads × head_dim × context.

    The attention term counts QKᵀ and (scores)V for one query over ``context`` keys; norms, RoPE and softmax
    are a few percent and left out.
    """
    layers, heads, _, head_dim, _ = _shape(model.config)
    return 2 * matmul_params(model) + 4 * layers * heads * head_dim * context


def lookup_only_bytes(model: torch.nn.Module) -> int:
    """Bytes of embedding tables that a decode step does NOT read: all but one row of each lookup-only table.

    A tied embedding is also the output head, read in full every token, so it is not counted here; an untied
    input embedding (or the fp32 table left beside an int8 head) is only looked up, one row per token.
    """
    linear_ptrs = {m.weight.data_ptr() for m in model.modules() if isinstance(m, torch.nn.Linear)}
    total = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Embedding) and mod.weight.data_ptr() not in linear_ptrs:
            w = mod.weight
            total += (w.shape[0] - 1) * w.shape[1] * w.element_size()
    return total


def decode_bytes(model: torch.nn.Module, context: int, *, batch: int = 1, kv_dtype=None) -> int:
    """Bytes read per decode step of ``batch`` rows: every weight once (lookup tables: one row) + each row's KV cache.

    (notebook 05)
    """
    kv_dtype = kv_dtype or next(model.parameters()).dtype
    if not kv_dtype.is_floating_point:
        kv_dtype = torch.float32
    return (weight_bytes(model) - lookup_only_bytes(model)
            + kv_cache_bytes(model.config, context, batch=batch, dtype=kv_dtype))


def decode_bound(bandwidth: float, model: torch.nn.Module, context: int, *, batch: int = 1, kv_dtype=None) -> float:
    """The decode roofline in tokens/s: bandwidth / bytes read per step, times the rows per step (notebook 05)."""
    return batch * bandwidth / decode_bytes(model, context, batch=batch, kv_dtype=kv_dtype)


def prefill_bound(flops_per_s: float, bandwidth: float, model: torch.nn.Module, prompt_tokens: int) -> float:
    """The prefill bound in seconds: the larger of compute time (FLOPs / peak) and memory time (bytes / bandwidth).

    A prompt of T tokens costs about T × decode FLOPs (attention over T/2 keys on average) but reads the weights
    only once, so prefill is compute-bound and decode memory-bound (notebook 05).
    """
    flops = prompt_tokens * decode_flops(model, prompt_tokens // 2)
    return max(flops / flops_per_s, weight_bytes(model) / bandwidth)


def share_of_bound(tok_s: float, bound_tok_s: float) -> float:
    """The fraction of the roofline a measured speed reaches (1.0 = at the physical limit)."""
    return tok_s / bound_tok_s


# ----------------------------------------------------------------------------------------------- roofline plot
@dataclass
class RooflinePoint:
    """One measured configuration on the roofline: FLOPs and bytes per unit of work, and the achieved rate."""

    label: str
    flops: float  # per token (or per step)
    bytes: float  # read + written per token (or per step)
    per_s: float  # tokens (or steps) per second measured

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes

    @property
    def flops_per_s(self) -> float:
        return self.flops * self.per_s

    def share(self, peak_flops: float, bandwidth: float) -> float:
        """Achieved FLOP/s over the roofline at this intensity: min(peak, intensity × bandwidth)."""
        return self.flops_per_s / min(peak_flops, self.intensity * bandwidth)


def plot_roofline(peaks: dict[str, float], bandwidth: float, points: Iterable[RooflinePoint] = (), ax=None):
    """The roofline: attainable FLOP/s = min(peak, intensity × bandwidth), with measured points (notebook 05).

    ``peaks`` maps a label (e.g. "fp32 matmul") to a measured FLOP/s; each gives one flat roof.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if not peaks:
        raise ValueError("plot_roofline needs at least one peak: pass {'fp32 matmul': flops_per_s}")
    points = list(points)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    lo = min([0.05] + [p.intensity / 3 for p in points])
    hi = max([1000.0] + [p.intensity * 3 for p in points])
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.loglog(x, x * bandwidth, color="0.6", ls=":", label=f"memory: {bandwidth / GB:.1f} GB/s × intensity")
    for (name, peak), color in zip(peaks.items(), ["C0", "C1", "C2", "C3"]):
        ax.loglog(x, np.minimum(peak, x * bandwidth), color=color, lw=2, label=f"{name}: {peak / GB:.1f} GFLOP/s")
    markers = "osD^v<>p*hX"
    for i, p in enumerate(points):
        ax.loglog(p.intensity, p.flops_per_s, markers[i % len(markers)], ms=8, color=f"C{(i + 4) % 10}",
                  label=f"{p.label}: {p.flops_per_s / GB:.2f} GFLOP/s")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("FLOP/s")
    ax.set_title("Roofline of this machine, with measured configurations")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    return ax


def plot_sweep(x, series: dict[str, list[float]], *, xlabel: str, ylabel: str, title: str, ax=None, logx=False):
    """One line per series against ``x``, labelled; the common shape of every sweep plot in notebook 05."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, ys in series.items():
        ax.plot(list(x), list(ys), "o-", label=name)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend()
    return ax


def plot_against_bound(table, *, title: str = "Each configuration against its own decode roofline", ax=None):
    """Horizontal bars: each row's measured decode tok/s (median, p10-p90 whiskers) over its ``bound tok/s``.

    ``table`` is a :func:`compare_runs` DataFrame with ``bound tok/s`` and ``share of bound`` columns added.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.5 * len(table) + 1.5))
    y = range(len(table))
    tok_s = table["decode tok/s"]
    ax.barh(y, table["bound tok/s"], color="0.85", label="decode bound (roofline)")
    ax.barh(y, tok_s, color="C0", label="measured (median)")
    ax.errorbar(tok_s, y, xerr=[tok_s - table["p10 tok/s"], table["p90 tok/s"] - tok_s], fmt="none", color="k",
                capsize=3)
    for i, (v, share) in enumerate(zip(tok_s, table["share of bound"])):
        ax.text(v, i, f" {v:.1f} ({share:.0%})", va="center", fontsize=8)
    ax.set_yticks(list(y), table.index)
    ax.invert_yaxis()
    ax.set_xlabel("decode tokens/s")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return ax


# ----------------------------------------------------------------------------------------------- the profiler
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
    """Run ``fn`` under ``torch.profiler`` and return its top operators by self time as a DataFrame (notebook 05).

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
    """Seconds per call of a trivial torch op on tiny tensors: the fixed cost of Python + dispatch (notebook 05)."""
    a, b = torch.ones(1), torch.ones(1)
    for _ in range(100):
        torch.add(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.add(a, b)
    return (time.perf_counter() - start) / repeats


def step_breakdown(fn: Callable[[], object], *, warmup: int = 1) -> dict[str, float]:
    """Where one call's wall time goes, from the profiler's top-level operators (notebook 05).

    Returns milliseconds for: ``wall``; ``matmul`` (self time of the matrix-product kernels); ``other ops``
    (self time of every other operator); ``outside ops`` (wall minus all operator time: Python, module calls,
    the profiler's own cost); and ``ops`` (the number of top-level operators dispatched).
    """
    from torch.profiler import ProfilerActivity

    for _ in range(warmup):
        fn()
    prof, wall = _profiled(fn, [ProfilerActivity.CPU])
    matmul_names = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "quantized::linear")
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
    return {"wall": wall, "matmul": matmul, "other ops": other, "outside ops": max(wall - matmul - other, 0.0),
            "ops": top_level}


# ----------------------------------------------------------------------------------------------- comparisons
def compare_generation(configs: dict[str, tuple], input_ids: torch.Tensor, max_new_tokens: int = 32, *,
                       repeats: int = 3, warmup: int = 1, progress: bool = True):
    """Time ``model.generate`` for several configurations, interleaved round by round (notebook 05).

    ``configs`` maps a name to ``(model, generate_kwargs)``. Returns a DataFrame, one row per configuration:
    median decode tok/s with its p10/p90 over the rounds, median time to first token, median p50/p90 per-token
    latency, and the weights' size. ``df.attrs["runs"]`` keeps every :class:`GenerationStats`.
    """
    from tqdm.auto import tqdm

    _check_counts(repeats, warmup)
    if not configs:
        raise ValueError("compare_generation() got no configurations: pass {name: (model, generate_kwargs)}")
    for model, kwargs in configs.values():
        for _ in range(warmup):
            time_generation(model, input_ids, min(max_new_tokens, 4), **kwargs)
    runs: dict[str, list[GenerationStats]] = {name: [] for name in configs}
    for _ in tqdm(range(repeats), desc="rounds", disable=not progress, leave=False):
        for name, (model, kwargs) in configs.items():
            runs[name].append(time_generation(model, input_ids, max_new_tokens, **kwargs))
    df = _summary(runs)
    df["weights MB"] = [weight_bytes(_as_model(configs[name][0])) / 1e6 for name in df.index]
    return df


def _summary(runs: dict) -> "pd.DataFrame":
    """One row per configuration: the median decode speed and its spread, TTFT and per-token latencies."""
    import pandas as pd

    rows = []
    for name, stats in runs.items():
        speeds = [s.decode_tok_s for s in stats]
        rows.append({"config": name, "decode tok/s": statistics.median(speeds),
                     "p10 tok/s": percentile(speeds, 10), "p90 tok/s": percentile(speeds, 90),
                     "ttft ms": 1e3 * statistics.median(s.ttft_s for s in stats),
                     "p50 ms/token": 1e3 * statistics.median(s.p50_s for s in stats),
                     "p90 ms/token": 1e3 * statistics.median(s.p90_s for s in stats)})
    df = pd.DataFrame(rows).set_index("config")
    df.attrs["runs"] = runs
    return df


class LeanDecoder:
    """A greedy decode loop with nothing but the model in it: the fastest pure-torch path here (notebook 05).

    ``model.generate`` runs logits processors, stopping criteria, a streamer and cache bookkeeping at every step;
    this loop runs one forward pass per token (``logits_to_keep=1``: only the last position goes through the
    output head), an argmax, and nothing else. With ``static=True`` the KV cache is a
    ``transformers.StaticCache`` allocated once for ``max_len`` tokens and written in place (no concatenation), so
    every decode step has the same shapes (``max_len=None``: sized to each call, prompt + new tokens, so that
attention reads no empty slots): that is what lets ``compile=True`` (``torch.compile`` of the decode
    step only; the prefill stays eager) build one graph and reuse it. ``freeze=True`` also sets inductor's
    ``freezing``, which folds the weights into the graph as constants and pre-packs them for the CPU kernels.

    ``decoder(input_ids, n)`` returns a :class:`GenerationStats` whose tokens equal greedy ``model.generate``'s.
    ``compile_s`` is the time of the first call after building (compilation included), 0 without compile.
    """

    def __init__(self, lm_or_model, *, static: bool = True, compile: bool = False, freeze: bool = False,
                 max_len: int | None = None):
        from transformers import DynamicCache, StaticCache

        self.model = _as_model(lm_or_model)
        self.static, self.max_len, self.compile_s = static, max_len, 0.0
        self.device = next(self.model.parameters()).device
        config = self.model.config
        self._new_cache = ((lambda n: StaticCache(config=config, max_cache_len=self.max_len or n)) if static
                           else (lambda n: DynamicCache(config=config)))
        self._forward = self.model.forward
        if compile:
            if not static:
                raise ValueError("compile=True needs static=True: a growing cache changes shapes at every step")
            if freeze:
                import torch._inductor.config as inductor_config

                inductor_config.freezing = True
            self._forward = torch.compile(self.model.forward, dynamic=False, fullgraph=False)
        self._compiled = compile

    def _step(self, ids, cache, position):
        return self._forward(input_ids=ids, past_key_values=cache, cache_position=position, use_cache=True,
                             logits_to_keep=1).logits[:, -1].argmax(-1, keepdim=True)

    def __call__(self, input_ids: torch.Tensor, max_new_tokens: int = 32) -> GenerationStats:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens}: generate at least 1 token")
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        input_ids = input_ids.to(self.device)
        b, t = input_ids.shape
        if self.static and self.max_len and t + max_new_tokens > self.max_len:
            raise ValueError(f"prompt {t} + {max_new_tokens} new tokens exceed the static cache of {self.max_len}: "
                             f"build LeanDecoder(..., max_len={t + max_new_tokens})")
        first_call = self._compiled and not self.compile_s
        with torch.inference_mode():
            cache = self._new_cache(t + max_new_tokens)
            start = time.perf_counter()
            out = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1,
                             cache_position=torch.arange(t, device=self.device))
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            sync(self.device)
            stamps, tokens = [time.perf_counter() - start], [nxt]
            position = torch.tensor([t], device=self.device)
            for _ in range(max_new_tokens - 1):
                nxt = self._step(nxt, cache, position)
                position += 1
                sync(self.device)
                stamps.append(time.perf_counter() - start)
                tokens.append(nxt)
        if first_call:
            self.compile_s = stamps[-1]
        return GenerationStats(stamps, b, t, stamps[-1], 0, torch.cat(tokens, 1).tolist())


def compare_runs(runs: dict[str, Callable[[], GenerationStats]], *, repeats: int = 3, warmup: int = 1,
                 progress: bool = True):
    """Time several generation functions round-robin (A B C A B C ...) and tabulate them (notebook 05).

    Each function takes no argument and returns a :class:`GenerationStats` (``P.LeanDecoder``, a lambda around
    :func:`time_generation`, :func:`time_llama_cpp` ...). Returns a DataFrame, one row per function: median decode
    tok/s with its p10/p90 over the rounds, median time to first token and p50/p90 per-token latency.
    ``df.attrs["runs"]`` keeps every :class:`GenerationStats`.
    """
    from tqdm.auto import tqdm

    _check_counts(repeats, warmup)
    if not runs:
        raise ValueError("compare_runs() got no functions: pass {name: callable returning GenerationStats}")
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    stats: dict[str, list[GenerationStats]] = {name: [] for name in runs}
    for _ in tqdm(range(repeats), desc="rounds", disable=not progress, leave=False):
        for name, fn in runs.items():
            stats[name].append(fn())
    return _summary(stats)


def time_llama_cpp(llm, prompt: str, max_new_tokens: int = 32) -> GenerationStats:
    """Greedy generation with a ``llama_cpp.Llama``, one timestamp per streamed token (notebook 05).

    The same statistics as :func:`time_generation` (TTFT, decode tok/s), so that llama.cpp and torch are measured
    alike. It stops early if the model emits its end-of-text token. The stream ends with one more chunk that
    carries no token, only the reason for stopping: it gets no stamp (counted, it would add a token in no time).
    """
    start = time.perf_counter()
    stamps = []
    for chunk in llm(prompt, max_tokens=max_new_tokens, temperature=0.0, top_k=1, stream=True):
        if chunk["choices"][0].get("finish_reason") is None:
            stamps.append(time.perf_counter() - start)
    if not stamps:
        raise ValueError("llama.cpp generated no token: ask for max_new_tokens >= 1")
    return GenerationStats(stamps, 1, len(llm.tokenize(prompt.encode())), stamps[-1])


def decode_step(lm_or_model, input_ids: torch.Tensor) -> Callable[[], object]:
    """Prefill ``input_ids`` once, then return a function that decodes ONE token after them (notebook 05).

    Each call crops the cache back to the prompt first, so every call does the same work: the unit that the
    decode roofline, the profiler and the thread sweep measure.
    """
    model = _as_model(lm_or_model)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    with torch.inference_mode():
        out = model(input_ids, use_cache=True)
    cache, n = out.past_key_values, input_ids.shape[1]
    next_ids = out.logits[:, -1:].argmax(-1)

    def step():
        with torch.inference_mode():
            extra = cache.get_seq_length() - n
            if extra:
                cache.crop(-extra)  # transformers 5: a negative count removes that many tokens
            return model(next_ids, past_key_values=cache, use_cache=True)

    return step


def prefill_step(lm_or_model, input_ids: torch.Tensor) -> Callable[[], object]:
    """A function that runs the prompt through the model once, filling a fresh cache (notebook 05)."""
    model = _as_model(lm_or_model)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)

    def step():
        with torch.inference_mode():
            return model(input_ids, use_cache=True)

    return step


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of every ``nn.Linear`` (weights int8, activations quantized per call) (notebook 05).

    Uses ``torch.ao.quantization.quantize_dynamic`` (its deprecation notice about torchao is silenced: it still
    works in this torch and needs nothing else). Changes ``model`` in place and returns it; CPU only.
    """
    import warnings

    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("dynamic int8 quantization runs on the CPU only: pass a model on device='cpu'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
