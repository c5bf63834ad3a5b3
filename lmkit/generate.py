"""Decoding, one token at a time: greedy, temperature, top-k, top-p, repetition penalty, beams, chat (notebook 06).

:func:`stream` is the generation loop written out by hand, because that loop *is* the lesson: one forward pass
over the prompt (prefill), then one pass per new token that reuses the KV cache (decode). At each step the raw
logits go through transformers' own logits processors, in the order ``model.generate`` builds them
(:func:`processors`), and the next token is the argmax (greedy) or a ``torch.multinomial`` draw (sampling). So:

- greedy output is token-identical to ``model.generate(...)``;
- with ``seed=s``, sampled output is token-identical to ``torch.manual_seed(s); model.generate(do_sample=True, ...)``.

Each step reports the token, its probability under the processed distribution (the one sampled from) and under
the raw softmax, and the top alternatives, so a notebook or a widget can show what the settings did.

Notebook 07 adds ``min_p`` (transformers' ``MinPLogitsWarper``, same parity), output constrained to a JSON schema
or a regular expression (``json_schema=``, ``regex=``; :mod:`lmkit.decoding.grammar`), and speculative decoding
(:func:`speculative`, :func:`early_exit_draft`; :mod:`lmkit.decoding.speculative`).

This module is the top of the decoding stack (:mod:`lmkit.decoding`): the settings and their check, the prompt,
the EOS ids and the processors come from :mod:`lmkit.decoding.settings`, the loop from :mod:`lmkit.decoding.loop`;
their names are re-exported here, so ``lmkit.generate`` is the one import a notebook needs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Iterator

import torch

from lmkit import checks
from lmkit.decoding.grammar import for_settings
from lmkit.decoding.loop import TextAssembler, decode
from lmkit.decoding.settings import (DEFAULT_MAX_NEW_TOKENS, SETTINGS, Settings, SettingsError, check_prompt,
                                     check_settings, context_length, context_size, eos_ids, processors,
                                     prompt_ids)
from lmkit.decoding.speculative import SpeculativeResult, early_exit_draft, speculative

__all__ = ["SETTINGS", "DEFAULT_MAX_NEW_TOKENS", "SettingsError", "Settings", "Alternative", "Step", "Generation",
           "check_settings", "check_prompt", "context_length", "context_size", "prompt_ids", "eos_ids", "processors",
           "stream",
           "generate", "reference", "next_token_distribution", "plot_distribution", "speculative",
           "early_exit_draft", "SpeculativeResult"]


@dataclass(frozen=True)
class Alternative:
    """One candidate token at a step: id, text, probability after processing and under the raw softmax."""

    id: int
    text: str
    prob: float
    raw_prob: float


@dataclass(frozen=True)
class Step:
    """One generated token (notebook 06).

    ``text`` is the new text this token adds to the output (``""`` while a multi-byte character is still
    incomplete); ``token`` is the tokenizer's own piece. ``prob`` is its probability under the processed
    distribution (the one it was drawn from), ``raw_prob`` under the model's plain softmax. ``alternatives``
    are the most likely tokens at this step, best first. ``elapsed`` counts seconds since the call started.
    ``finish_reason`` says on the last step why the output ended (``"eos"``, ``"length"``, ``"context"``,
    ``"grammar"``; :data:`lmkit.decoding.loop.FINISH_REASONS`) and is None before. A caller's ``stop`` ends the
    stream after a step that was yielded before the stop came, so that step keeps None (or ``"stop"`` when a
    character had to be finished first).
    """

    index: int
    id: int
    text: str
    token: str
    prob: float
    raw_prob: float
    alternatives: tuple[Alternative, ...]
    is_eos: bool
    elapsed: float
    finish_reason: str | None = None

    @property
    def tokens_per_s(self) -> float:
        """Tokens so far divided by the time so far (prefill included)."""
        return (self.index + 1) / self.elapsed if self.elapsed > 0 else float("inf")


class Generation(str):
    """The text :func:`generate` returns: a ``str`` that also says why it ended (notebooks 06 and 07).

    ``finish_reason``: ``"eos"`` or ``"grammar"`` when the model finished, ``"length"``, ``"context"`` or
    ``"stop"`` when the output was cut (:data:`lmkit.decoding.loop.FINISH_REASONS`). ``complete`` is True for the
    first two. A constrained output (``json_schema=`` / ``regex=``) matches only when it is complete: a cut one is
    a prefix of a match, e.g. ``'{"name": "Fel'``.
    """

    finish_reason: str

    def __new__(cls, text: str, finish_reason: str):
        self = super().__new__(cls, text)
        self.finish_reason = finish_reason
        return self

    def __getnewargs__(self) -> tuple[str, str]:
        """What copy and pickle pass back to ``__new__``: the text and the reason."""
        return str(self), self.finish_reason

    @property
    def complete(self) -> bool:
        """True when the model ended the output itself (EOS, or a complete constrained output)."""
        return self.finish_reason in ("eos", "grammar")


# ----------------------------------------------------------------------------------------------- the steps
def _alternatives(tokenizer, probs: torch.Tensor, raw: torch.Tensor, n: int) -> tuple[Alternative, ...]:
    """The ``n`` best tokens: first those the processed distribution keeps (by its probability), then by raw."""
    n = min(n, probs.numel())
    if n <= 0:
        return ()
    kept = int((probs > 0).sum())
    ids = torch.topk(probs, min(n, kept)).indices.tolist()
    if len(ids) < n:
        ids += torch.topk(torch.where(probs > 0, -1.0, raw), n - len(ids)).indices.tolist()
    p, r = probs[ids].tolist(), raw[ids].tolist()
    return tuple(Alternative(i, tokenizer.decode([i]), pi, ri) for i, pi, ri in zip(ids, p, r))


def _should_stop(stop) -> bool:
    if stop is None:
        return False
    if hasattr(stop, "is_set"):
        return stop.is_set()
    return bool(stop())


def stream(lm, prompt, *, stop=None, n_alternatives: int = 10, **settings) -> Iterator[Step]:
    """Generate one token at a time, yielding a :class:`Step` for each (notebooks 06 and 07).

    - ``settings``: ``max_new_tokens, do_sample, temperature, top_k, top_p, min_p, repetition_penalty`` as in
      transformers, plus ``seed`` (``torch.manual_seed`` right before the first draw), ``chat`` (use the chat
      template; ``prompt`` may then be a list of messages), and ``json_schema`` or ``regex``: every step masks the
      tokens that cannot continue a matching output (:mod:`lmkit.decoding.grammar`, llguidance).
    - Stops after an EOS token (which is yielded, with ``is_eos=True``), after ``max_new_tokens``, at the end of the
      context, when the grammar is complete, or between two tokens once ``stop`` (a ``threading.Event`` or a
      callable) says so; a stop that comes while a character is incomplete takes effect once it is complete
      (at most 3 more tokens). The texts of the steps always join to ``tokenizer.decode`` of their ids.
    - Settings, prompt and grammar are all checked before any model work (:func:`check_settings`).
    """
    s = check_settings(lm, **settings)
    if s.num_beams != 1 or s.num_return_sequences != 1:
        checks.fail(f"stream() follows one sequence (num_beams={s.num_beams}, num_return_sequences="
                    f"{s.num_return_sequences}): use generate() for beam search and several sequences", SettingsError)
    checks.integer("n_alternatives", n_alternatives, low=0, fix="e.g. 10, or 0 for none", error=SettingsError)
    ids = prompt_ids(lm, prompt, s.chat)
    return _steps(lm, ids, s, stop, n_alternatives, for_settings(lm, s, ids.shape[1]))


def _steps(lm, ids: torch.Tensor, s: Settings, stop, n_alternatives: int, grammar) -> Iterator[Step]:
    """:class:`Step` objects from the decode loop (:func:`lmkit.decoding.loop.decode`): text held back while a
    character is incomplete, and ``stop`` honoured between two tokens (at once when the text so far is whole,
    else once it is, after at most 3 more tokens)."""
    tok, eos, text = lm.tokenizer, eos_ids(lm), TextAssembler(lm.tokenizer)
    budget = min(s.max_new_tokens, context_length(lm) - ids.shape[1])
    tokens = decode(lm.model, ids, processors(s, grammar), max_new_tokens=budget, do_sample=s.do_sample, eos=eos,
                    seed=s.seed)
    start, late = time.perf_counter(), 0
    for index, t in enumerate(tokens):
        reason = "stop" if late >= 3 and t.finish_reason is None else t.finish_reason
        if reason == "length" and budget < s.max_new_tokens:
            reason = "context"
        yield Step(index=index, id=t.id, text=text.add(t.id, flush=reason is not None),
                   token=tok.convert_ids_to_tokens(t.id), prob=float(t.probs[t.id]), raw_prob=float(t.raw[t.id]),
                   alternatives=_alternatives(tok, t.probs, t.raw, n_alternatives), is_eos=t.id in eos,
                   elapsed=time.perf_counter() - start, finish_reason=reason)
        stopping = reason is None and _should_stop(stop)
        if reason is not None or (stopping and text.complete):
            break
        if stopping:
            late += 1  # finish the character first: its bytes are already generated
    tokens.close()


def generate(lm, prompt, *, stop=None, **settings) -> Generation | list[Generation]:
    """The generated text, without the prompt and special tokens (notebooks 06 and 07).

    Returns a :class:`Generation`: a ``str`` whose ``finish_reason`` says why it ended (``"eos"``, ``"grammar"``,
    ``"length"``, ``"context"``, ``"stop"``) and ``complete`` whether the model ended it itself. One sequence (the
    default): the text of :func:`stream`. ``json_schema=`` / ``regex=`` constrain it: the text parses and validates
    when ``complete``; when the budget cut it (``finish_reason == "length"``) it is a prefix of a valid output. With
    ``num_beams > 1`` or ``num_return_sequences > 1`` it calls ``model.generate`` with the same, validated settings,
    and returns a list of ``num_return_sequences`` texts (a single one when that is 1).
    """
    s = check_settings(lm, **settings)
    ids = prompt_ids(lm, prompt, s.chat)
    room = context_length(lm) - ids.shape[1]
    if s.num_beams == 1 and s.num_return_sequences == 1:
        steps = list(_steps(lm, ids, s, stop, 0, for_settings(lm, s, ids.shape[1])))
        text = lm.tokenizer.decode([step.id for step in steps], skip_special_tokens=True)
        return Generation(text, steps[-1].finish_reason or "stop")
    s = replace(s, max_new_tokens=min(s.max_new_tokens, room))
    if s.seed is not None:
        torch.manual_seed(s.seed)
    with torch.inference_mode():
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), **s.generate_kwargs())
    new, eos = out[:, ids.shape[1]:], eos_ids(lm)
    texts = [Generation(lm.tokenizer.decode(row, skip_special_tokens=True),
                        "eos" if eos & set(row.tolist()) else "context" if s.max_new_tokens == room else "length")
             for row in new]
    return texts[0] if len(texts) == 1 else texts


def reference(lm, prompt, **settings) -> list[int]:
    """The new token ids that ``model.generate`` itself produces with the same settings and seed (notebook 06).

    The parity tests and the notebook compare :func:`stream` against this.
    """
    s = check_settings(lm, **settings)
    ids = prompt_ids(lm, prompt, s.chat)
    if s.seed is not None:
        torch.manual_seed(s.seed)
    with torch.inference_mode():
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), **s.generate_kwargs())
    return out[0, ids.shape[1]:].tolist()


def next_token_distribution(lm, prompt, **settings) -> tuple[torch.Tensor, torch.Tensor]:
    """The raw and the processed next-token probabilities after ``prompt`` (each ``[vocab]``) (notebook 06)."""
    s = check_settings(lm, **settings)
    ids = prompt_ids(lm, prompt, s.chat)
    with torch.inference_mode():
        logits = lm.model(ids, logits_to_keep=1).logits[:, -1].to(dtype=torch.float32)
        scores = processors(s)(ids, logits.clone())
    return torch.softmax(logits[0], -1), torch.softmax(scores[0], -1)


def plot_distribution(lm, raw: torch.Tensor, processed: torch.Tensor, k: int = 15, ax=None, title: str = ""):
    """Bars of the ``k`` most likely next tokens: raw probability vs after the processors (notebook 06)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    top = torch.topk(raw, k).indices.tolist()
    labels = [repr(lm.tokenizer.decode([i])) for i in top]
    x = torch.arange(len(top)).numpy()
    ax.bar(x - 0.2, raw[top].numpy(), width=0.4, label="raw", color="#9AA5B1")
    ax.bar(x + 0.2, processed[top].numpy(), width=0.4, label="after processors", color="#4C72B0")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("probability")
    ax.set_xlabel("next token (the raw top-k)")
    kept = int((processed > 0).sum())
    ax.set_title(title or f"next-token distribution ({kept} tokens kept)")
    ax.legend(fontsize=8)
    return ax
