"""A paged KV cache: fixed-size blocks, a block table per sequence, blocks taken on demand and given back on finish,
and full prompt blocks shared between requests that start alike (prefix caching).

Kwon et al. 2023, "Efficient Memory Management for Large Language Model Serving with PagedAttention" (vLLM): the
cache of every layer is one pool of ``num_blocks`` blocks of ``block_size`` token slots; a sequence's ``i``-th
token lives in slot ``i % block_size`` of block ``block_table[i // block_size]``, so a sequence holds at most one
partly empty block, and nothing is reserved for tokens it has not produced. Prefix caching (vLLM's automatic prefix
caching; SGLang's RadixAttention, Zheng et al. 2024) names each *full* block by a hash of its tokens and of every
token before it, so two prompts that share a system prompt share its blocks instead of computing them twice.
"""
from __future__ import annotations

from collections import OrderedDict

import torch

from lmkit import checks

__all__ = ["BlockAllocator", "PagedKVCache", "block_hashes"]


def block_hashes(token_ids, block_size: int) -> list[int]:
    """The prefix-cache key of each *full* block of ``token_ids``: a hash of the block's tokens chained to the key of
    the block before it, so that equal keys mean an equal prefix, not only an equal block."""
    keys, parent = [], None
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        parent = hash((parent, tuple(token_ids[start:start + block_size])))
        keys.append(parent)
    return keys


class BlockAllocator:
    """The book-keeping of a paged cache: which blocks are free, which are held and by how many sequences, and which
    hold a cached prefix (notebook on serving).

    - :meth:`allocate` takes a free block (or, when none is free, evicts the least recently released cached block);
    - :meth:`release` gives a sequence's blocks back: a block nobody holds goes back to the free list, unless it holds
      a full prompt block registered with :meth:`register`, in which case it stays cached (evictable) until needed;
    - :meth:`lookup` finds the cached blocks of a prompt's leading full blocks and takes a reference on each.

    ``in_use``: blocks some sequence holds; ``cached``: blocks nobody holds that keep a prefix; ``n_free``: blocks
    that can be handed out now (free plus cached). Errors: :class:`lmkit.checks.CheckError` for bad sizes;
    ``MemoryError`` when every block is held.
    """

    def __init__(self, num_blocks: int, block_size: int):
        self.num_blocks = checks.integer("num_blocks", num_blocks, low=1, fix="the blocks of the pool, such as 256")
        self.block_size = checks.integer("block_size", block_size, low=1, fix="token slots per block, such as 16")
        self.free = list(range(self.num_blocks - 1, -1, -1))  # a stack: block 0 is handed out first
        self.refs = [0] * self.num_blocks
        self.key_of: dict[int, int] = {}  # block -> its prefix key
        self.block_of: dict[int, int] = {}  # prefix key -> block
        self.evictable: OrderedDict[int, None] = OrderedDict()  # cached blocks nobody holds, oldest first
        self.hits = 0  # blocks reused from the prefix cache

    @property
    def n_free(self) -> int:
        return len(self.free) + len(self.evictable)

    @property
    def in_use(self) -> int:
        return sum(1 for r in self.refs if r > 0)

    @property
    def cached(self) -> int:
        return len(self.evictable)

    def allocate(self) -> int:
        if self.free:
            block = self.free.pop()
        elif self.evictable:
            block, _ = self.evictable.popitem(last=False)  # the least recently released
            del self.block_of[self.key_of.pop(block)]
        else:
            raise MemoryError(f"all {self.num_blocks} KV blocks are held: give the engine more blocks "
                              "(num_blocks) or fewer sequences at once (max_batch)")
        self.refs[block] = 1
        return block

    def register(self, block: int, key: int) -> None:
        """Name a held, full prompt block by its prefix key, so later prompts with the same prefix can share it."""
        if key not in self.block_of and block not in self.key_of:
            self.block_of[key], self.key_of[block] = block, key

    def lookup(self, keys) -> list[int]:
        """The cached blocks for the leading ``keys`` (:func:`block_hashes`), up to the first miss; each is now held."""
        found = []
        for key in keys:
            block = self.block_of.get(key)
            if block is None:
                break
            if self.refs[block] == 0:
                self.evictable.pop(block, None)
            self.refs[block] += 1
            found.append(block)
        self.hits += len(found)
        return found

    def release(self, blocks) -> None:
        for block in blocks:
            self.refs[block] -= 1
            if self.refs[block] < 0:
                raise RuntimeError(f"block {block} released more often than it was taken")
            if self.refs[block] == 0:
                if block in self.key_of:
                    self.evictable[block] = None
                else:
                    self.free.append(block)

    def check_no_leak(self) -> None:
        """Raise AssertionError unless every block is free or cached and nobody holds any: the state after a trace."""
        held = [b for b, r in enumerate(self.refs) if r]
        assert not held, f"blocks still held after every sequence finished: {held[:10]}"
        assert len(self.free) + len(self.evictable) == self.num_blocks, "a block is neither free nor cached"
        assert len(set(self.free) | set(self.evictable)) == self.num_blocks, "a block is listed twice"


class PagedKVCache:
    """The pooled keys and values of every layer: ``k[layer]`` and ``v[layer]`` of shape
    ``[num_blocks * block_size, n_kv_heads, head_dim]`` (one row per token slot), and the :class:`BlockAllocator`
    that hands the blocks out (notebook on serving).

    :meth:`slots` maps a sequence's positions to rows through its block table; :meth:`write` stores new keys and
    values there; :meth:`gather` reads a sequence's keys and values back in position order. ``bytes_per_token``: what
    one token costs across the layers (keys and values).
    """

    def __init__(self, num_layers: int, n_kv_heads: int, head_dim: int, *, num_blocks: int, block_size: int,
                 dtype=torch.float32, device="cpu"):
        self.allocator = BlockAllocator(num_blocks, block_size)
        self.block_size = block_size
        shape = (num_blocks * block_size, n_kv_heads, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.bytes_per_token = 2 * num_layers * n_kv_heads * head_dim * torch.finfo(dtype).bits // 8

    def slots(self, block_table: list[int], positions: torch.Tensor) -> torch.Tensor:
        """Rows of the pool for ``positions`` (a 1-D long tensor) of a sequence with ``block_table``."""
        table = torch.as_tensor(block_table, dtype=torch.long, device=positions.device)
        return table[positions // self.block_size] * self.block_size + positions % self.block_size

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store ``k``, ``v`` ``[n, n_kv_heads, head_dim]`` at ``slots`` ``[n]`` of ``layer``."""
        self.k[layer].index_copy_(0, slots, k)
        self.v[layer].index_copy_(0, slots, v)

    def gather(self, layer: int, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values at ``slots`` of ``layer``: ``[n, n_kv_heads, head_dim]`` each."""
        return self.k[layer].index_select(0, slots), self.v[layer].index_select(0, slots)
