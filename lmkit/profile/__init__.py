"""Inference profiling against the hardware's limits (notebook 08): one module per question.

| module | what it holds |
|---|---|
| :mod:`~lmkit.profile.timing` | ``time_fn``, ``interleave`` (round-robin), ``Timing`` statistics, ``percentile``, ``sync`` |
| :mod:`~lmkit.profile.memory` | ``PeakMemory`` (kernel peak-RSS counter, GPU allocator peak, or a sampler), ``rss_bytes`` |
| :mod:`~lmkit.profile.generation` | ``GenerationStats``, the one timed greedy loop ``timed_greedy``, ``time_generation``, ``time_steps`` |
| :mod:`~lmkit.profile.decoding` | ``LeanDecoder`` (greedy with nothing but the model), ``decode_step``, ``prefill_step`` |
| :mod:`~lmkit.profile.fastdecode` | ``FastDecoder``: fused, quantized, static-cache, compiled greedy decoding (also notebook 11) |
| :mod:`~lmkit.profile.ceilings` | measured memory bandwidth, matmul throughput and its size sweep, matrix-vector bandwidth |
| :mod:`~lmkit.profile.roofline` | bytes and FLOPs per step, the KV-cache formula, decode/prefill bounds, ``RooflinePoint`` |
| :mod:`~lmkit.profile.plots` | the roofline plot, sweeps, configurations against their bound |
| :mod:`~lmkit.profile.torch_profiler` | ``top_operators``, ``step_breakdown``, ``op_dispatch_cost`` |
| :mod:`~lmkit.profile.quantize` | ``quantize_int8``: dynamic int8, a configuration timed here (also in ``lmkit.compress``) |
| :mod:`~lmkit.profile.compare` | ``compare_runs``, ``compare_generation``: configurations timed in the same rounds; ``compare_configs``, ``compare_timings``: ``lmkit.stats.compare`` on their paired rounds |
| :mod:`~lmkit.profile.isolated` | ``ChildWorker``: third-party native code in a child process, crashes as one line |
| :mod:`~lmkit.profile.llama_cpp` | ``LlamaCpp`` (in its own process) and ``time_llama_cpp`` |

Every public name is also here: ``from lmkit import profile as P; P.time_fn(...)``. Imports point down:
:mod:`lmkit.compress` (notebook 14) builds on this package, which imports nothing of ``compress``.
"""
from __future__ import annotations

from lmkit.profile.ceilings import matmul_sweep, matmul_throughput, matvec_bandwidth, memory_bandwidth
from lmkit.profile.compare import (compare_configs, compare_generation, compare_runs, compare_table, compare_timings,
                                   summary_table)
from lmkit.profile.decoding import LeanDecoder, decode_step, prefill_step
from lmkit.profile.fastdecode import FastDecoder
from lmkit.profile.generation import (GenerationStats, StampStreamer, as_model, time_generation, time_steps,
                                      timed_greedy)
from lmkit.profile.isolated import ChildCrashed, ChildError, ChildWorker
from lmkit.profile.llama_cpp import LlamaCpp, time_llama_cpp
from lmkit.profile.memory import PeakMemory, hwm_supported, release_free_memory, rss_bytes
from lmkit.profile.plots import GB, plot_against_bound, plot_roofline, plot_sweep
from lmkit.profile.quantize import quantize_int8
from lmkit.profile.roofline import (RooflinePoint, cache_bytes, decode_bound, decode_bytes, decode_flops,
                                    kv_cache_bytes, lookup_only_bytes, matmul_params, prefill_bound, prefill_flops,
                                    share_of_bound, weight_bytes)
from lmkit.profile.timing import Timing, interleave, percentile, sync, time_fn
from lmkit.profile.torch_profiler import op_dispatch_cost, step_breakdown, top_operators

__all__ = ["GB", "ChildCrashed", "ChildError", "ChildWorker", "FastDecoder", "GenerationStats", "LeanDecoder",
           "LlamaCpp", "PeakMemory", "RooflinePoint", "StampStreamer", "Timing", "as_model", "cache_bytes", "compare_configs", "compare_generation",
           "compare_runs", "compare_table", "compare_timings", "decode_bound", "decode_bytes", "decode_flops", "decode_step", "hwm_supported", "interleave",
           "kv_cache_bytes", "lookup_only_bytes", "matmul_params", "matmul_sweep", "matmul_throughput", "matvec_bandwidth",
           "memory_bandwidth", "op_dispatch_cost", "percentile", "plot_against_bound", "plot_roofline", "plot_sweep",
           "prefill_bound", "prefill_flops", "prefill_step", "quantize_int8", "release_free_memory", "rss_bytes",
           "share_of_bound", "step_breakdown", "summary_table", "sync", "time_fn", "time_generation", "time_llama_cpp",
           "time_steps", "timed_greedy", "top_operators", "weight_bytes"]

