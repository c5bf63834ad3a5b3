"""Exercise checkers of notebook 13 (training across processes)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("13.1", hint="ZeRO stage 2 shards gradients and optimizer states but not the parameters: "
                       "p·Ψ + (g + o)·Ψ/N bytes with p = g = 2 and o = 12, Ψ = 7e9 and N = 64; divide by 2**30.")
def _zero_stage2(answer):
    from lmkit.distributed import zero_bytes

    return _close(answer, zero_bytes(7_000_000_000, 64, 2, param_bytes=2, grad_bytes=2, optimizer_bytes=12) / 2**30)


@exercise("13.2", hint="the global mean is a sum over every window divided by the batch size; a shard's mean is "
                       "its sum divided by its own size, so shard r must be weighted by size_r / batch size.")
def _shard_weights(answer):
    sizes = (2, 2, 4)  # the exercise's shards; fixed here, so that changing them in the notebook does not move it
    answer = list(answer)
    return len(answer) == len(sizes) and all(_close(a, s / sum(sizes)) for a, s in zip(answer, sizes))


@exercise("13.3", hint="a ring all-reduce is a reduce-scatter then an all-gather; each sends (N-1)/N of the buffer, "
                       "and the buffer is 4 bytes per float32 gradient.")
def _ring_all_reduce(answer):
    from lmkit.distributed import ring_bytes

    return _close(answer, ring_bytes("all_reduce", 4 * 134_515_008, 8))
