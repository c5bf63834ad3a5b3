"""Serving many users from one model: continuous batching over a paged KV cache (the serving notebook).

| module | what it holds |
|---|---|
| :mod:`~lmkit.serving.paged` | :class:`BlockAllocator` (blocks on demand, freed on finish, prefix caching), :class:`PagedKVCache` |
| :mod:`~lmkit.serving.engine` | :class:`Engine` (``add``, ``step``, ``run``): continuous batching with chunked prefill, :class:`Request` |
"""
from lmkit.serving.engine import Engine, Request
from lmkit.serving.paged import BlockAllocator, PagedKVCache, block_hashes

__all__ = ["Engine", "Request", "BlockAllocator", "PagedKVCache", "block_hashes"]
