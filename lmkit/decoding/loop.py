"""The decode loop, written once: prefill, then one cached forward pass per new token (notebook 06).

:func:`decode` is a short generator that every one-sequence decoder of lmkit runs (:func:`lmkit.generate.stream`,
:func:`lmkit.generate.generate`): one forward pass over the prompt fills the KV cache (prefill), then each step runs
the model on the last token only, passes the float32 logits through the logits processors (transformers' own, in
``model.generate``'s order, with a grammar first when the output is constrained) and takes the argmax (greedy) or a
``torch.multinomial`` draw (sampling), exactly as ``model.generate`` does. It knows nothing about text.

:class:`TextAssembler` turns the growing list of ids into text pieces. A byte-level tokenizer may split one
character over several tokens; while the decoded tail is an incomplete character (U+FFFD) it holds the text back,
so every piece is whole characters and the pieces always join to ``tokenizer.decode`` of all the ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from lmkit.transformers_compat import cache_arg, returned_cache, with_cache

__all__ = ["FINISH_REASONS", "Token", "decode", "finished", "TextAssembler"]

FINISH_REASONS = ("eos", "length", "context", "grammar", "stop")
"""Why an output ended: an end-of-sequence token (``"eos"``, OpenAI's ``"stop"``), the ``max_new_tokens`` budget
(``"length"``), the end of the model's context (``"context"``), a constrained output that is complete
(``"grammar"``), or the caller's ``stop`` (``"stop"``). Only ``"eos"`` and ``"grammar"`` mean the model finished
its answer; after ``"length"``, ``"context"`` or ``"stop"`` the text may be cut mid-word (or mid-JSON)."""


@dataclass(frozen=True)
class Token:
    """One step of :func:`decode`: the chosen ``id``, the processed and the raw distributions (``[V]`` each,
    float32, on the model's device), and ``finish_reason``: None while more steps follow, else ``"eos"``,
    ``"grammar"`` or ``"length"`` (:data:`FINISH_REASONS`)."""

    id: int
    probs: torch.Tensor
    raw: torch.Tensor
    finish_reason: str | None = None

    @property
    def last(self) -> bool:
        """True when no step follows."""
        return self.finish_reason is not None


def finished(procs, ids: torch.Tensor) -> bool:
    """True when a processor that can tell (a grammar's ``finished``) says the output in ``ids`` ``[1, t]`` is
    complete: nothing more may follow."""
    return any(getattr(p, "finished", None) is not None and p.finished(ids) for p in procs)


def decode(model, ids: torch.Tensor, procs, *, max_new_tokens: int, do_sample: bool, eos: set[int],
           seed: int | None = None) -> Iterator[Token]:
    """Yield one :class:`Token` per new token after the prompt ``ids`` ``[1, T]`` (notebook 06).

    ``procs``: a ``LogitsProcessorList`` (:func:`lmkit.decoding.settings.processors`); ``max_new_tokens``: the
    budget, already clipped to the context; ``eos``: the ids that end the output (the EOS token is yielded);
    ``seed``: ``torch.manual_seed(seed)`` right before the prefill, as ``torch.manual_seed(s); model.generate(...)``
    draws. Runs under ``torch.inference_mode``; closing the generator early stops the work.
    """
    from transformers import DynamicCache

    kwargs = dict(attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1,
                  **with_cache(model, DynamicCache(config=model.config)))
    step_ids = ids
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        for index in range(max_new_tokens):
            out = model(input_ids=step_ids, return_dict=True, **kwargs)
            kwargs[cache_arg(model)] = returned_cache(out)
            logits = out.logits[:, -1].to(copy=True, dtype=torch.float32)  # [1, V], as generate takes them
            raw = torch.softmax(logits[0], dim=-1)
            scores = procs(ids, logits)
            probs = torch.softmax(scores, dim=-1)
            step_ids = torch.multinomial(probs, num_samples=1) if do_sample else scores.argmax(-1, keepdim=True)
            ids = torch.cat([ids, step_ids], dim=-1)
            kwargs["attention_mask"] = torch.ones_like(ids)
            token = int(step_ids)
            reason = ("eos" if token in eos else "grammar" if finished(procs, ids) else
                      "length" if index == max_new_tokens - 1 else None)
            yield Token(id=token, probs=probs[0], raw=raw, finish_reason=reason)
            if reason is not None:
                return


class TextAssembler:
    """Text pieces for a growing list of token ids, whole characters only (notebook 06).

    ``add(token_id, flush=False)`` returns the new text this token completes: ``""`` while the decoded tail is an
    incomplete character, then everything held back once its bytes have arrived. ``flush=True`` (the last token)
    returns whatever is left. ``complete`` is False while text is held back. The pieces join to
    ``tokenizer.decode(ids)``.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = ""
        self.complete = True

    def add(self, token_id: int, flush: bool = False) -> str:
        self.ids.append(int(token_id))
        full = self.tokenizer.decode(self.ids)
        self.complete = flush or not full.endswith("\ufffd")
        if not self.complete:
            return ""
        piece, self.emitted = full[len(self.emitted):], full
        return piece
