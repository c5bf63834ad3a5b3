"""Serving many users from one model: continuous batching over a paged KV cache (the serving notebook).

| module | what it holds |
|---|---|
| :mod:`~lmkit.serving.paged` | :class:`BlockAllocator` (blocks on demand, freed on finish, prefix caching), :class:`PagedKVCache` |
| :mod:`~lmkit.serving.engine` | :class:`Engine` (``add``, ``step``, ``run``, ``abort``): continuous batching with chunked prefill, :class:`Request` |
| :mod:`~lmkit.serving.trace` | Poisson traces, replayed with continuous or static batching, and the latencies each user saw |
"""
from lmkit.serving.engine import Engine, Request
from lmkit.serving.paged import BlockAllocator, PagedKVCache, block_hashes
from lmkit.serving.trace import (Served, TraceRequest, latency_summary, poisson_trace, replay_continuous,
                                 replay_static, user_turns)

__all__ = ["Engine", "Request", "BlockAllocator", "PagedKVCache", "block_hashes", "poisson_trace", "replay_continuous",
           "replay_static", "latency_summary", "user_turns", "Served", "TraceRequest"]
