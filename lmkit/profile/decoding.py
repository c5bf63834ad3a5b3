"""Decoding stripped to the model: the lean greedy loop, and the single prefill and decode steps that notebook 08 times.

- :class:`LeanDecoder`: ``model.generate``'s greedy output with nothing but the model in the loop (static KV cache,
  optional ``torch.compile``), timed by :func:`lmkit.profile.generation.timed_greedy`.
- :func:`decode_step`, :func:`prefill_step`: the units of work that the roofline, the profiler and the thread
  sweep measure.
"""
from __future__ import annotations

from typing import Callable

import torch

from lmkit.profile.generation import GenerationStats, as_model, timed_greedy
from lmkit.transformers_compat import returned_cache, with_cache

__all__ = ["LeanDecoder", "decode_step", "prefill_step"]


class LeanDecoder:
    """A greedy decode loop with nothing but the model in it: the fastest pure-torch path here (notebook 08).

    ``model.generate`` runs logits processors, stopping criteria, a streamer and cache bookkeeping at every step;
    this loop runs one forward pass per token (``logits_to_keep=1``: only the last position goes through the
    output head), an argmax, and nothing else. With ``static=True`` the KV cache is a
    ``transformers.StaticCache`` allocated once for ``context_length`` tokens and written in place (no concatenation), so
    every decode step has the same shapes (``context_length=None``: sized to each call, prompt + new tokens, so that
    attention reads no empty slots): that is what lets ``compile=True`` (``torch.compile`` of the decode
    step only; the prefill stays eager) build one graph and reuse it. ``freeze=True`` also turns on inductor's
    ``freezing`` for this compile only (``torch.compile(..., options={"freezing": True})``; the process-wide
    ``torch._inductor.config`` is left as it was), which folds the weights into the graph as constants and
    pre-packs them for the CPU kernels.

    ``decoder(input_ids, n)`` returns a :class:`GenerationStats` whose tokens equal greedy ``model.generate``'s.
    ``compile_s`` is the time of the first call after building (compilation included), 0 without compile.
    """

    def __init__(self, lm_or_model, *, static: bool = True, compile: bool = False, freeze: bool = False,
                 context_length: int | None = None):
        from transformers import DynamicCache, StaticCache

        self.model = as_model(lm_or_model)
        self.static, self.context_length, self.compile_s = static, context_length, 0.0
        self.device = next(self.model.parameters()).device
        config = self.model.config
        self._new_cache = ((lambda n: StaticCache(config=config, max_cache_len=self.context_length or n)) if static
                           else (lambda n: DynamicCache(config=config)))
        self._forward = self.model.forward
        if compile:
            if not static:
                raise ValueError("compile=True needs static=True: a growing cache changes shapes at every step")
            # Inductor's `freezing` for this compile only (an option of the call, not the process-wide config)
            self._forward = torch.compile(self.model.forward, dynamic=False, fullgraph=False,
                                          options={"freezing": True} if freeze else None)
        self._compiled = compile

    def __call__(self, input_ids: torch.Tensor, max_new_tokens: int = 32) -> GenerationStats:
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        input_ids = input_ids.to(self.device)
        b, t = input_ids.shape
        if self.static and self.context_length and t + max_new_tokens > self.context_length:
            raise ValueError(f"prompt {t} + {max_new_tokens} new tokens exceed the static cache of {self.context_length}: "
                             f"build LeanDecoder(..., context_length={t + max_new_tokens})")
        first_call = self._compiled and not self.compile_s
        cache = self._new_cache(t + max(max_new_tokens, 1))

        def prefill():
            out = self.model(input_ids=input_ids, **with_cache(self.model, cache), use_cache=True, logits_to_keep=1,
                             cache_position=torch.arange(t, device=self.device))
            return out.logits[:, -1].argmax(-1, keepdim=True)

        def step(ids, i):
            position = torch.tensor([t + i], device=self.device)
            out = self._forward(input_ids=ids, **with_cache(self.model, cache), cache_position=position,
                                use_cache=True, logits_to_keep=1)
            return out.logits[:, -1].argmax(-1, keepdim=True)

        stats = timed_greedy(prefill, step, max_new_tokens, prompt_shape=(b, t), device=self.device)
        if first_call:
            self.compile_s = stats.stamps[-1]
        return stats


def decode_step(lm_or_model, input_ids: torch.Tensor) -> Callable[[], object]:
    """Prefill ``input_ids`` once, then return a function that decodes ONE token after them (notebook 08).

    Each call crops the cache back to the prompt first, so every call does the same work: the unit that the
    decode roofline, the profiler and the thread sweep measure.
    """
    model = as_model(lm_or_model)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    with torch.inference_mode():
        out = model(input_ids, use_cache=True)
    cache, n = returned_cache(out), input_ids.shape[1]
    next_ids = out.logits[:, -1:].argmax(-1)

    def step():
        with torch.inference_mode():
            extra = cache.get_seq_length() - n
            if extra:
                cache.crop(-extra)  # transformers 5: a negative count removes that many tokens
            return model(next_ids, use_cache=True, **with_cache(model, cache))

    return step


def prefill_step(lm_or_model, input_ids: torch.Tensor) -> Callable[[], object]:
    """A function that runs the prompt through the model once, filling a fresh cache (notebook 08)."""
    model = as_model(lm_or_model)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)

    def step():
        with torch.inference_mode():
            return model(input_ids, use_cache=True)

    return step
