"""Decoding, one token at a time: greedy, temperature, top-k, top-p, repetition penalty, beams, chat (notebook 04).

:func:`stream` is the generation loop written out by hand, because that loop *is* the lesson: one forward pass
over the prompt (prefill), then one pass per new token that reuses the KV cache (decode). At each step the raw
logits go through transformers' own logits processors, in the order ``model.generate`` builds them
(:func:`processors`), and the next token is the argmax (greedy) or a ``torch.multinomial`` draw (sampling). So:

- greedy output is token-identical to ``model.generate(...)``;
- with ``seed=s``, sampled output is token-identical to ``torch.manual_seed(s); model.generate(do_sample=True, ...)``.

Each step reports the token, its probability under the processed distribution (the one sampled from) and under
the raw softmax, and the top alternatives, so a notebook or a widget can show what the settings did.

Notebook 12 adds ``min_p`` (transformers' ``MinPLogitsWarper``, same parity), output constrained to a JSON schema
or a regular expression (``json_schema=``, ``regex=``; :mod:`lmkit.constrained`), and speculative decoding
(:func:`speculative`, :func:`early_exit_draft`; :mod:`lmkit.speculative`).
"""
from __future__ import annotations

import difflib
import math
import numbers
import time
from dataclasses import dataclass, replace
from typing import Iterator

import torch

from lmkit import constrained
from lmkit.kvcache import cache_arg, returned_cache, with_cache

__all__ = ["SETTINGS", "SettingsError", "Settings", "Alternative", "Step", "check_settings", "check_prompt",
           "context_size", "prompt_ids", "eos_ids", "processors", "stream", "generate", "reference",
           "next_token_distribution", "plot_distribution", "speculative", "early_exit_draft", "SpeculativeResult"]

# Settings named as in transformers, plus ``seed`` and ``chat``. ``None`` means: the model's generation_config
# value, else transformers' global default (exactly how ``model.generate`` resolves an unset setting).
SETTINGS = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed",
            "chat", "num_beams", "num_return_sequences", "json_schema", "regex")
DEFAULT_MAX_NEW_TOKENS = 64
_GLOBAL_DEFAULTS = {"do_sample": False, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None,
                    "repetition_penalty": 1.0, "num_beams": 1, "num_return_sequences": 1}


class SettingsError(ValueError):
    """A generation setting or prompt is invalid; the one-line message names the value and the fix (notebook 04)."""


@dataclass(frozen=True)
class Settings:
    """Generation settings after validation and defaults (notebook 04)."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    min_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    chat: bool = False
    num_beams: int = 1
    num_return_sequences: int = 1
    json_schema: dict | str | None = None
    regex: str | None = None

    def generate_kwargs(self) -> dict:
        """The same settings as keyword arguments of ``model.generate`` (sampling ones only when sampling).

        ``json_schema`` and ``regex`` have no ``model.generate`` keyword: they become a logits mask
        (:mod:`lmkit.constrained`).
        """
        kw = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample, num_beams=self.num_beams,
                  num_return_sequences=self.num_return_sequences, repetition_penalty=self.repetition_penalty)
        if self.do_sample:
            kw.update(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
            if self.min_p is not None:
                kw.update(min_p=self.min_p)
        return kw


@dataclass(frozen=True)
class Alternative:
    """One candidate token at a step: id, text, probability after processing and under the raw softmax."""

    id: int
    text: str
    prob: float
    raw_prob: float


@dataclass(frozen=True)
class Step:
    """One generated token (notebook 04).

    ``text`` is the new text this token adds to the output (``""`` while a multi-byte character is still
    incomplete); ``token`` is the tokenizer's own piece. ``prob`` is its probability under the processed
    distribution (the one it was drawn from), ``raw_prob`` under the model's plain softmax. ``alternatives``
    are the most likely tokens at this step, best first. ``elapsed`` counts seconds since the call started.
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

    @property
    def tokens_per_s(self) -> float:
        """Tokens so far divided by the time so far (prefill included)."""
        return (self.index + 1) / self.elapsed if self.elapsed > 0 else float("inf")


# ----------------------------------------------------------------------------------------------- settings
def _fail(msg: str):
    raise SettingsError(msg)


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_finite(x) -> bool:
    """A real number that is neither NaN nor infinite (``bool`` is not a number here)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_settings(lm, **settings) -> Settings:
    """Validate ``settings`` and fill in defaults as ``model.generate`` does (notebooks 04 and 12).

    Every check runs before any model work; a failure raises :class:`SettingsError` with one line naming the value
    and the fix. Numbers must be finite (NaN and inf are refused) and ``bool`` is not accepted as a number.
    """
    for name in settings:
        if name not in SETTINGS:
            close = difflib.get_close_matches(name, SETTINGS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(SETTINGS)}"
            _fail(f"unknown generation setting {name!r}: {hint}")
    config = getattr(lm.model, "generation_config", None)
    values = {}
    for name in SETTINGS:
        value = settings.get(name)
        if value is None and name in _GLOBAL_DEFAULTS:
            value = getattr(config, name, None)
            value = _GLOBAL_DEFAULTS[name] if value is None else value
        if value is not None:
            values[name] = value
    s = Settings(**values)

    if not _is_int(s.max_new_tokens) or s.max_new_tokens < 1:
        _fail(f"max_new_tokens={s.max_new_tokens!r} must be an integer >= 1: ask for at least one new token")
    if not isinstance(s.do_sample, bool):
        _fail(f"do_sample={s.do_sample!r} must be True (sample) or False (greedy / beam search)")
    if not _is_finite(s.temperature) or s.temperature < 0 or (s.do_sample and s.temperature == 0):
        _fail(f"temperature={s.temperature!r} must be a number > 0 when sampling (finite; 0 only for greedy): "
              "use e.g. 0.7, or do_sample=False for greedy decoding")
    if not _is_int(s.top_k) or s.top_k < 0:
        _fail(f"top_k={s.top_k!r} must be an integer >= 0: use 0 to switch top-k filtering off, or e.g. 50")
    if not _is_finite(s.top_p) or not 0 < s.top_p <= 1:
        _fail(f"top_p={s.top_p!r} must be in (0, 1]: use 1.0 to switch nucleus filtering off, or e.g. 0.9")
    if s.min_p is not None and (not _is_finite(s.min_p) or not 0 <= s.min_p <= 1):
        _fail(f"min_p={s.min_p!r} must be in [0, 1]: use None to switch min-p filtering off, or e.g. 0.05")
    if not _is_finite(s.repetition_penalty) or s.repetition_penalty <= 0:
        _fail(f"repetition_penalty={s.repetition_penalty!r} must be a finite number > 0: 1.0 is no penalty, "
              "1.2 a mild one")
    if s.seed is not None and (not _is_int(s.seed) or s.seed < 0):
        _fail(f"seed={s.seed!r} must be an integer >= 0, or None for no seeding")
    if not isinstance(s.chat, bool):
        _fail(f"chat={s.chat!r} must be True (use the chat template) or False (plain text continuation)")
    if not _is_int(s.num_beams) or s.num_beams < 1:
        _fail(f"num_beams={s.num_beams!r} must be an integer >= 1: 1 is no beam search, e.g. 4 is a small beam")
    if not _is_int(s.num_return_sequences) or s.num_return_sequences < 1:
        _fail(f"num_return_sequences={s.num_return_sequences!r} must be an integer >= 1")
    if s.num_beams > 1 and not s.do_sample and s.num_return_sequences > s.num_beams:
        _fail(f"num_return_sequences={s.num_return_sequences} exceeds num_beams={s.num_beams}: "
              "beam search returns at most num_beams sequences; raise num_beams")
    if s.num_beams == 1 and not s.do_sample and s.num_return_sequences > 1:
        _fail(f"num_return_sequences={s.num_return_sequences} with greedy decoding gives identical copies: "
              "set do_sample=True, or num_beams >= num_return_sequences")
    constrained.check_settings(s)
    return s


def context_size(lm) -> int:
    """How many tokens (prompt + generated) the model can attend to (notebook 04)."""
    return int(getattr(lm.model.config, "max_position_embeddings", None) or lm.tokenizer.model_max_length)


_PROMPT_TYPES = ("a str; with chat=True also a list of {'role': str, 'content': str} messages")


def check_prompt(prompt, chat: bool = False) -> list[dict] | str:
    """The prompt checked for type: a string, or with ``chat=True`` a list of messages (notebooks 04 and 12).

    Returns the string, or the list of messages (a chat string becomes one user turn). Raises :class:`SettingsError`
    naming the accepted prompt types for anything else (``None``, a number, a list of non-messages, ...).
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            _fail("empty prompt: give at least one word to continue" if not chat else
                  "empty chat: pass a non-empty string or a list of {'role': ..., 'content': ...} messages")
        return [{"role": "user", "content": prompt}] if chat else prompt
    if not chat:
        hint = "; pass a list of messages only with chat=True" if isinstance(prompt, (list, tuple)) else ""
        _fail(f"prompt must be a string, not {type(prompt).__name__}: use {_PROMPT_TYPES}{hint}")
    if not isinstance(prompt, (list, tuple)):
        _fail(f"prompt must be a string or a list of messages, not {type(prompt).__name__}: use {_PROMPT_TYPES}")
    for m in prompt:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            _fail(f"chat message {str(m)[:40]!r} is not a {{'role': str, 'content': str}} dict: use {_PROMPT_TYPES}")
    if not any(m["content"].strip() for m in prompt):
        _fail("empty chat: pass a non-empty string or a list of {'role': ..., 'content': ...} messages "
              "with non-empty content")
    return list(prompt)


def prompt_ids(lm, prompt, chat: bool = False) -> torch.Tensor:
    """The ``[1, T]`` ids that generation starts from (notebook 04).

    ``chat=False``: the text as is, no special tokens. ``chat=True``: ``prompt`` (a string, i.e. one user turn,
    or a list of ``{"role", "content"}`` messages) goes through the tokenizer's chat template, ending with the
    assistant's turn header. Wrong types raise :class:`SettingsError` (:func:`check_prompt`).
    """
    prompt = check_prompt(prompt, chat)
    warned = getattr(lm.tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):  # the context check below replaces the tokenizer's multi-line length warning
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    if chat:
        if getattr(lm.tokenizer, "chat_template", None) is None:
            _fail(f"chat=True, but the tokenizer of {lm.name!r} has no chat template: use chat=False or an "
                  "instruct model")
        text = lm.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        ids = lm.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids.to(lm.device)
    else:
        ids = lm.encode(prompt)
    if ids.shape[1] == 0:
        _fail(f"prompt {str(prompt)[:40]!r} gives no tokens: give at least one word to continue")
    room = context_size(lm) - ids.shape[1]
    if room < 1:
        _fail(f"prompt is {ids.shape[1]} tokens but the context holds {context_size(lm)}: "
              "shorten the prompt to leave room for new tokens")
    return ids


def eos_ids(lm) -> set[int]:
    """The token ids that end generation: the generation_config's EOS (a list or one id), else the tokenizer's."""
    eos = getattr(lm.model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = lm.tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def processors(settings: Settings):
    """transformers' logits processors for ``settings``, in the order ``model.generate`` builds them (notebook 04).

    Repetition penalty always applies; temperature, top-k, top-p and min-p (the former "warpers") only when
    sampling. min-p (Nguyen et al. 2024, "Turning up the heat: min-p sampling") keeps the tokens whose probability
    is at least ``min_p`` times the top token's (notebook 12).
    """
    from transformers import (LogitsProcessorList, MinPLogitsWarper, RepetitionPenaltyLogitsProcessor,
                              TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

    procs = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.do_sample:
        if settings.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_k != 0:
            procs.append(TopKLogitsWarper(top_k=settings.top_k))
        if settings.top_p < 1.0:
            procs.append(TopPLogitsWarper(top_p=settings.top_p))
        if settings.min_p is not None:
            procs.append(MinPLogitsWarper(min_p=settings.min_p))
    return procs


# ----------------------------------------------------------------------------------------------- the loop
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
    """Generate one token at a time, yielding a :class:`Step` for each (notebooks 04 and 12).

    - ``settings``: ``max_new_tokens, do_sample, temperature, top_k, top_p, min_p, repetition_penalty`` as in
      transformers, plus ``seed`` (``torch.manual_seed`` right before the first draw), ``chat`` (use the chat
      template; ``prompt`` may then be a list of messages), and ``json_schema`` or ``regex``: every step masks the
      tokens that cannot continue a matching output (:mod:`lmkit.constrained`, llguidance).
    - Stops after an EOS token (which is yielded, with ``is_eos=True``), after ``max_new_tokens``, at the end of the
      context, when the grammar is complete, or between two tokens once ``stop`` (a ``threading.Event`` or a
      callable) says so; a stop that comes while a character is incomplete takes effect once it is complete
      (at most 3 more tokens). The texts of the steps always join to ``tokenizer.decode`` of their ids.
    - Settings, prompt and grammar are all checked before any model work (:func:`check_settings`).
    """
    s = check_settings(lm, **settings)
    if s.num_beams != 1 or s.num_return_sequences != 1:
        _fail(f"stream() follows one sequence (num_beams={s.num_beams}, num_return_sequences="
              f"{s.num_return_sequences}): use generate() for beam search and several sequences")
    if not _is_int(n_alternatives) or n_alternatives < 0:
        _fail(f"n_alternatives={n_alternatives!r} must be an integer >= 0")
    ids = prompt_ids(lm, prompt, s.chat)
    return _loop(lm, ids, s, stop, n_alternatives, constrained.for_settings(lm, s))


def _loop(lm, ids: torch.Tensor, s: Settings, stop, n_alternatives: int, grammar=None) -> Iterator[Step]:
    from transformers import DynamicCache

    model, tok = lm.model, lm.tokenizer
    procs, eos = processors(s), eos_ids(lm)
    max_new = min(s.max_new_tokens, context_size(lm) - ids.shape[1])
    start = time.perf_counter()
    if s.seed is not None:
        torch.manual_seed(s.seed)
    n_prompt, late, emitted_all = ids.shape[1], 0, True
    kwargs = dict(attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1,
                  **with_cache(model, DynamicCache(config=model.config)))
    step_ids, emitted = ids, ""
    with torch.inference_mode():
        for index in range(max_new):
            if index > 0 and _should_stop(stop):
                if not emitted_all:
                    late += 1  # finish the character first: its bytes are already generated
                else:
                    return
            out = model(input_ids=step_ids, position_ids=None, return_dict=True, **kwargs)
            kwargs[cache_arg(model)] = returned_cache(out)
            logits = out.logits[:, -1].to(copy=True, dtype=torch.float32)  # [1, vocab], as generate takes them
            raw = torch.softmax(logits[0], dim=-1)
            if grammar is not None:
                logits = grammar.mask(logits)
            scores = procs(ids, logits)
            probs = torch.softmax(scores, dim=-1)
            next_id = torch.multinomial(probs, num_samples=1) if s.do_sample else scores.argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_id], dim=-1)
            kwargs["attention_mask"] = torch.ones_like(ids)
            step_ids = next_id
            token_id = int(next_id)
            if grammar is not None:
                grammar.advance(token_id)
            last = (token_id in eos or index == max_new - 1 or late >= 3
                    or (grammar is not None and grammar.done))
            full = tok.decode(ids[0, n_prompt:])
            # Hold back a trailing incomplete character (decoded as U+FFFD) until its bytes arrive; the last step
            # flushes whatever is left, so the texts always join to the decode of the ids.
            emitted_all = last or not full.endswith("\ufffd")
            text = full[len(emitted):] if emitted_all else ""
            emitted = full if emitted_all else emitted
            yield Step(index=index, id=token_id, text=text, token=tok.convert_ids_to_tokens(token_id),
                       prob=float(probs[0, token_id]), raw_prob=float(raw[token_id]),
                       alternatives=_alternatives(tok, probs[0], raw, n_alternatives),
                       is_eos=token_id in eos, elapsed=time.perf_counter() - start)
            if last:
                return


def generate(lm, prompt, *, stop=None, **settings) -> str | list[str]:
    """The generated text, without the prompt and special tokens (notebooks 04 and 12).

    One sequence (the default): the text of :func:`stream` (``json_schema=`` / ``regex=`` constrain it: the text
    parses and validates whenever the grammar completed within ``max_new_tokens``). With ``num_beams > 1`` or
    ``num_return_sequences > 1`` it calls ``model.generate`` with the same, validated settings, and returns a list
    of ``num_return_sequences`` strings (a single string when that is 1).
    """
    s = check_settings(lm, **settings)
    ids = prompt_ids(lm, prompt, s.chat)
    if s.num_beams == 1 and s.num_return_sequences == 1:
        new = [step.id for step in _loop(lm, ids, s, stop, 0, constrained.for_settings(lm, s))]
        return lm.tokenizer.decode(new, skip_special_tokens=True)
    s = replace(s, max_new_tokens=min(s.max_new_tokens, context_size(lm) - ids.shape[1]))
    if s.seed is not None:
        torch.manual_seed(s.seed)
    with torch.inference_mode():
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), **s.generate_kwargs())
    texts = lm.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
    return texts[0] if len(texts) == 1 else texts


def reference(lm, prompt, **settings) -> list[int]:
    """The new token ids that ``model.generate`` itself produces with the same settings and seed (notebook 04).

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
    """The raw and the processed next-token probabilities after ``prompt`` (each ``[vocab]``) (notebook 04)."""
    s = check_settings(lm, **settings)
    ids = prompt_ids(lm, prompt, s.chat)
    with torch.inference_mode():
        logits = lm.model(ids, logits_to_keep=1).logits[:, -1].to(dtype=torch.float32)
        scores = processors(s)(ids, logits.clone())
    return torch.softmax(logits[0], -1), torch.softmax(scores[0], -1)


def plot_distribution(lm, raw: torch.Tensor, processed: torch.Tensor, k: int = 15, ax=None, title: str = ""):
    """Bars of the ``k`` most likely next tokens: raw probability vs after the processors (notebook 04)."""
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


# Speculative decoding lives beside this module (one idea per module); its names are part of this API.
from lmkit.speculative import SpeculativeResult, early_exit_draft, speculative  # noqa: E402
