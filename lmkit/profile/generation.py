"""Generation timed token by token: time to first token, decode tokens/s, p50/p90 latency (notebook 08).

- :class:`GenerationStats`: the per-token timestamps of one generation and what follows from them.
- :func:`timed_greedy`: THE timed greedy loop of lmkit (prefill, then one step per token, a timestamp after each);
  :class:`lmkit.profile.LeanDecoder` and :class:`lmkit.profile.FastDecoder` run their models through it.
- :func:`time_generation`: ``model.generate`` with a streamer (:class:`StampStreamer`) stamping every token.
- :func:`time_steps`: stamps whatever a generator yields, e.g. ``lmkit.generate.stream``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from transformers.generation.streamers import BaseStreamer

from lmkit import checks
from lmkit.profile.memory import PeakMemory
from lmkit.profile.timing import format_seconds, percentile, sync

__all__ = ["GenerationStats", "timed_greedy", "time_steps", "StampStreamer", "as_model", "time_generation"]


@dataclass
class GenerationStats:
    """Per-token timestamps of one generation, and what follows from them (notebook 08).

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
                f"ttft={format_seconds(self.ttft_s)}, decode={self.decode_tok_s:.1f} tok/s, "
                f"p50={format_seconds(self.p50_s)}, p90={format_seconds(self.p90_s)})")


def timed_greedy(prefill: Callable[[], torch.Tensor], step: Callable[[torch.Tensor, int], torch.Tensor],
                 max_new_tokens: int, *, prompt_shape: tuple[int, int], device=None) -> GenerationStats:
    """Greedy decoding with a timestamp per token: the one timed loop that every hand-made decoder uses (notebook 08).

    ``prefill()`` runs the prompt and returns the first new token ids ``[batch, 1]``; ``step(ids, i)`` feeds the
    ``[batch, 1]`` ids of new token ``i`` (0-based) and returns the next ones. Each stamp is taken after a GPU
    synchronisation. ``prompt_shape`` is ``(batch, prompt tokens)``. Runs under ``torch.inference_mode``.
    """
    max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, fix="generate at least 1 token")
    with torch.inference_mode():
        start = time.perf_counter()
        nxt = prefill()
        sync(device)
        stamps, tokens = [time.perf_counter() - start], [nxt]
        for i in range(max_new_tokens - 1):
            nxt = step(nxt, i)
            sync(device)
            stamps.append(time.perf_counter() - start)
            tokens.append(nxt)
    batch, prompt_tokens = prompt_shape
    return GenerationStats(stamps, batch, prompt_tokens, stamps[-1], 0, torch.cat(tokens, 1).tolist())


def time_steps(steps: Iterable, *, batch: int = 1, prompt_tokens: int = 0, device=None) -> GenerationStats:
    """Timestamp each item that ``steps`` yields, e.g. ``lmkit.generate.stream(...)`` (notebook 08)."""
    start = time.perf_counter()
    stamps, tokens = [], []
    for step in steps:
        sync(device)
        stamps.append(time.perf_counter() - start)
        tokens.append(step)
    if not stamps:
        raise ValueError("the generator yielded no token: ask for max_new_tokens >= 1")
    return GenerationStats(stamps, batch, prompt_tokens, stamps[-1], 0, tokens)


class StampStreamer(BaseStreamer):
    """A transformers streamer that records when each new token arrives (seconds since ``start``) (notebook 08).

    ``model.generate`` calls ``put`` once with the prompt, then once per new token, then ``end``.
    """

    def __init__(self, start: float):
        self.start, self.stamps, self.seen_prompt = start, [], False

    def put(self, value) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        self.stamps.append(time.perf_counter() - self.start)

    def end(self) -> None:
        pass


def as_model(lm_or_model):
    """The torch model inside an :class:`lmkit.LM`, or the model itself (a causal LM also has a ``.model``)."""
    return lm_or_model if isinstance(lm_or_model, torch.nn.Module) else lm_or_model.model


def time_generation(lm_or_model, input_ids: torch.Tensor, max_new_tokens: int = 32, *, memory: bool = False,
                    **generate_kwargs) -> GenerationStats:
    """Greedy ``model.generate`` with a timestamp per token: TTFT, decode tok/s, p50/p90 latency (notebook 08).

    Generation runs exactly ``max_new_tokens`` steps (``min_new_tokens`` is set too, so an end-of-text token does
    not cut a timing short). ``memory=True`` also records the peak memory (:class:`PeakMemory`).
    """
    checks.integer("max_new_tokens", max_new_tokens, low=1, fix="generate at least 1 token")
    model = as_model(lm_or_model)
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
        streamer = StampStreamer(start)
        out = model.generate(input_ids, streamer=streamer, **kwargs)
        sync(device)
        total = time.perf_counter() - start
        if mem:
            mem.__exit__(None, None, None)
    return GenerationStats(streamer.stamps, input_ids.shape[0], input_ids.shape[1], total,
                           mem.peak if mem else 0, out[:, input_ids.shape[1]:].tolist())
