"""Decoding, one token at a time: greedy, temperature, top-k, top-p, repetition penalty, beams, chat (notebook 04).

:func:`stream` is the generation loop written out by hand, because that loop *is* the lesson: one forward pass
over the prompt (prefill), then one pass per new token that reuses the KV cache (decode). At each step the raw
logits go through transformers' own logits processors, in the order ``model.generate`` builds them
(:func:`processors`), and the next token is the argmax (greedy) or a ``torch.multinomial`` draw (sampling). So:

- greedy output is token-identical to ``model.generate(...)``;
- with ``seed=s``, sampled output is token-identical to ``torch.manual_seed(s); model.generate(do_sample=True, ...)``.

Each step reports the token, its probability under the processed distribution (the one sampled from) and under
the raw softmax, and the top alternatives, so a notebook or a widget can show what the settings did.
"""
from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import torch

# Settings named as in transformers, plus ``seed`` and ``chat``. ``None`` means: the model's generation_config
# value, else transformers' global default (exactly how ``model.generate`` resolves an unset setting).
SETTINGS = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "repetition_penalty", "seed", "chat",
            "num_beams", "num_return_sequences")
DEFAULT_MAX_NEW_TOKENS = 64
_GLOBAL_DEFAULTS = {"do_sample": False, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.0,
                    "num_beams": 1, "num_return_sequences": 1}


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
    repetition_penalty: float = 1.0
    seed: int | None = None
    chat: bool = False
    num_beams: int = 1
    num_return_sequences: int = 1

    def generate_kwargs(self) -> dict:
        """The same settings as keyword arguments of ``model.generate`` (sampling ones only when sampling)."""
        kw = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample, num_beams=self.num_beams,
                  num_return_sequences=self.num_return_sequences, repetition_penalty=self.repetition_penalty)
        if self.do_sample:
            kw.update(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
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
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_settings(lm, **settings) -> Settings:
    """Validate ``settings`` and fill in defaults as ``model.generate`` does; raises :class:`SettingsError` (notebook 04).

    Every check runs before any model work, and each failure is one line naming the value and the fix.
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
    if not _is_number(s.temperature) or (s.do_sample and s.temperature <= 0):
        _fail(f"temperature={s.temperature!r} must be a number > 0 when sampling: use e.g. 0.7, "
              "or do_sample=False for greedy decoding")
    if not _is_int(s.top_k) or s.top_k < 0:
        _fail(f"top_k={s.top_k!r} must be an integer >= 0: use 0 to switch top-k filtering off, or e.g. 50")
    if not _is_number(s.top_p) or not 0 < s.top_p <= 1:
        _fail(f"top_p={s.top_p!r} must be in (0, 1]: use 1.0 to switch nucleus filtering off, or e.g. 0.9")
    if not _is_number(s.repetition_penalty) or s.repetition_penalty <= 0:
        _fail(f"repetition_penalty={s.repetition_penalty!r} must be a number > 0: 1.0 is no penalty, 1.2 a mild one")
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
    return s


def context_size(lm) -> int:
    """How many tokens (prompt + generated) the model can attend to (notebook 04)."""
    return int(getattr(lm.model.config, "max_position_embeddings", None) or lm.tokenizer.model_max_length)


def prompt_ids(lm, prompt, chat: bool = False) -> torch.Tensor:
    """The ``[1, T]`` ids that generation starts from (notebook 04).

    ``chat=False``: the text as is, no special tokens. ``chat=True``: ``prompt`` (a string, i.e. one user turn,
    or a list of ``{"role", "content"}`` messages) goes through the tokenizer's chat template, ending with the
    assistant's turn header.
    """
    warned = getattr(lm.tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):  # the context check below replaces the tokenizer's multi-line length warning
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    if chat:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt or [])
        if (not messages or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)
                or not any(str(m["content"]).strip() for m in messages)):
            _fail("empty chat: pass a non-empty string or a list of {'role': ..., 'content': ...} messages "
                  "with non-empty content")
        if getattr(lm.tokenizer, "chat_template", None) is None:
            _fail(f"chat=True, but the tokenizer of {lm.name!r} has no chat template: use chat=False or an "
                  "instruct model")
        text = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = lm.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids.to(lm.device)
    else:
        if not isinstance(prompt, str):
            _fail(f"prompt must be a string, not {type(prompt).__name__}: pass a list of messages only with chat=True")
        if not prompt.strip():
            _fail("empty prompt: give at least one word to continue")
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

    Repetition penalty always applies; temperature, top-k and top-p (the former "warpers") only when sampling.
    """
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                              TopKLogitsWarper, TopPLogitsWarper)

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
    """Generate one token at a time, yielding a :class:`Step` for each (notebook 04).

    - ``settings``: ``max_new_tokens, do_sample, temperature, top_k, top_p, repetition_penalty`` as in
      transformers, plus ``seed`` (``torch.manual_seed`` right before the first draw) and ``chat`` (use the chat
      template; ``prompt`` may then be a list of messages).
    - Stops after an EOS token (which is yielded, with ``is_eos=True``), after ``max_new_tokens``, at the end of the
      context, or between two tokens once ``stop`` (a ``threading.Event`` or a callable) says so.
    - All settings are checked before any work starts (:func:`check_settings`).
    """
    s = check_settings(lm, **settings)
    if s.num_beams != 1 or s.num_return_sequences != 1:
        _fail(f"stream() follows one sequence (num_beams={s.num_beams}, num_return_sequences="
              f"{s.num_return_sequences}): use generate() for beam search and several sequences")
    if not _is_int(n_alternatives) or n_alternatives < 0:
        _fail(f"n_alternatives={n_alternatives!r} must be an integer >= 0")
    ids = prompt_ids(lm, prompt, s.chat)
    return _loop(lm, ids, s, stop, n_alternatives)


def _loop(lm, ids: torch.Tensor, s: Settings, stop, n_alternatives: int) -> Iterator[Step]:
    from transformers import DynamicCache

    model, tok = lm.model, lm.tokenizer
    procs, eos = processors(s), eos_ids(lm)
    max_new = min(s.max_new_tokens, context_size(lm) - ids.shape[1])
    start = time.perf_counter()
    if s.seed is not None:
        torch.manual_seed(s.seed)
    n_prompt = ids.shape[1]
    kwargs = dict(attention_mask=torch.ones_like(ids), past_key_values=DynamicCache(config=model.config),
                  use_cache=True, logits_to_keep=1)
    step_ids, emitted = ids, ""
    with torch.inference_mode():
        for index in range(max_new):
            if index > 0 and _should_stop(stop):
                return
            out = model(input_ids=step_ids, position_ids=None, return_dict=True, **kwargs)
            kwargs["past_key_values"] = out.past_key_values
            logits = out.logits[:, -1].to(copy=True, dtype=torch.float32)  # [1, vocab], as generate takes them
            scores = procs(ids, logits)
            probs = torch.softmax(scores, dim=-1)
            next_id = torch.multinomial(probs, num_samples=1) if s.do_sample else scores.argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_id], dim=-1)
            kwargs["attention_mask"] = torch.ones_like(ids)
            step_ids = next_id
            token_id = int(next_id)
            raw = torch.softmax(logits[0], dim=-1)
            full = tok.decode(ids[0, n_prompt:])
            text = "" if full.endswith("\ufffd") else full[len(emitted):]
            emitted = emitted if full.endswith("\ufffd") else full
            yield Step(index=index, id=token_id, text=text, token=tok.convert_ids_to_tokens(token_id),
                       prob=float(probs[0, token_id]), raw_prob=float(raw[token_id]),
                       alternatives=_alternatives(tok, probs[0], raw, n_alternatives),
                       is_eos=token_id in eos, elapsed=time.perf_counter() - start)
            if token_id in eos:
                return


def generate(lm, prompt, *, stop=None, **settings) -> str | list[str]:
    """The generated text, without the prompt and special tokens (notebook 04).

    One sequence (the default): the text of :func:`stream`. With ``num_beams > 1`` or ``num_return_sequences > 1``
    it calls ``model.generate`` with the same, validated settings, and returns a list of
    ``num_return_sequences`` strings (a single string when that is 1).
    """
    s = check_settings(lm, **settings)
    ids = prompt_ids(lm, prompt, s.chat)
    if s.num_beams == 1 and s.num_return_sequences == 1:
        new = [step.id for step in _loop(lm, ids, s, stop, 0)]
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
