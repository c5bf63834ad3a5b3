"""Generation settings, their check, prompt encoding, EOS ids and the logits processors (notebooks 06 and 07).

The bottom of the decoding stack (:mod:`lmkit.decoding`): everything a decoder needs to know before its first
forward pass, and nothing that runs the model. The settings are named as in transformers (``max_new_tokens,
do_sample, temperature, top_k, top_p, min_p, repetition_penalty, num_beams, num_return_sequences``) plus ``seed``,
``chat``, ``json_schema`` and ``regex``; :func:`check_settings` fills an unset one exactly as ``model.generate``
does (the model's generation_config, else transformers' global default) and refuses a bad one in one line
(:class:`SettingsError`), before any model work. :func:`processors` builds transformers' own logits processors in
the order ``model.generate`` builds them, with the grammar of a constrained output first
(:class:`lmkit.decoding.grammar.GrammarLogitsProcessor`).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch

from lmkit import checks
from lmkit.logprobs import special_tokens_in

__all__ = ["SETTINGS", "DEFAULT_MAX_NEW_TOKENS", "SettingsError", "Settings", "check_settings", "check_prompt",
           "check_constraint", "context_length", "context_size", "prompt_ids", "eos_ids", "processors"]

# Settings named as in transformers, plus ``seed`` and ``chat``. ``None`` means: the model's generation_config
# value, else transformers' global default (exactly how ``model.generate`` resolves an unset setting).
SETTINGS = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed",
            "chat", "num_beams", "num_return_sequences", "json_schema", "regex")
DEFAULT_MAX_NEW_TOKENS = 64
_GLOBAL_DEFAULTS = {"do_sample": False, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None,
                    "repetition_penalty": 1.0, "num_beams": 1, "num_return_sequences": 1}


class SettingsError(ValueError):
    """A generation setting or prompt is invalid; the one-line message names the value and the fix (notebook 06)."""


@dataclass(frozen=True)
class Settings:
    """Generation settings after validation and defaults (notebook 06)."""

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
        (:mod:`lmkit.decoding.grammar`).
        """
        kw = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample, num_beams=self.num_beams,
                  num_return_sequences=self.num_return_sequences, repetition_penalty=self.repetition_penalty)
        if self.do_sample:
            kw.update(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
            if self.min_p is not None:
                kw.update(min_p=self.min_p)
        return kw


def check_settings(lm, **settings) -> Settings:
    """Validate ``settings`` and fill in defaults as ``model.generate`` does (notebooks 06 and 07).

    Every check runs before any model work; a failure raises :class:`SettingsError` with one line naming the value
    and the fix. Numbers must be finite (NaN and inf are refused) and ``bool`` is not accepted as a number.
    """
    for name in settings:
        if name not in SETTINGS:
            close = difflib.get_close_matches(name, SETTINGS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(SETTINGS)}"
            checks.fail(f"unknown generation setting {name!r}: {hint}", SettingsError)
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

    E = SettingsError
    checks.integer("max_new_tokens", s.max_new_tokens, low=1, fix="ask for at least one new token", error=E)
    checks.boolean("do_sample", s.do_sample, fix="True (sample) or False (greedy / beam search)", error=E)
    if not checks.is_real(s.temperature) or s.temperature < 0 or (s.do_sample and s.temperature == 0):
        checks.fail(f"temperature={s.temperature!r} must be a number > 0 when sampling (finite; 0 only for greedy): "
                    "use e.g. 0.7, or do_sample=False for greedy decoding", E)
    checks.integer("top_k", s.top_k, low=0, fix="use 0 to switch top-k filtering off, or e.g. 50", error=E)
    checks.probability("top_p", s.top_p, open_low=True, fix="use 1.0 to switch nucleus filtering off, or e.g. 0.9",
                       error=E)
    if s.min_p is not None:
        checks.probability("min_p", s.min_p, fix="use None to switch min-p filtering off, or e.g. 0.05", error=E)
    checks.real("repetition_penalty", s.repetition_penalty, low=0, low_open=True,
                fix="1.0 is no penalty, 1.2 a mild one", error=E)
    if s.seed is not None:
        checks.integer("seed", s.seed, low=0, high=2**64 - 1, error=E,  # what torch.manual_seed takes
                       fix="pass e.g. 0, or None for no seeding")
    checks.boolean("chat", s.chat, fix="True (use the chat template) or False (plain text continuation)", error=E)
    checks.integer("num_beams", s.num_beams, low=1, fix="1 is no beam search, e.g. 4 is a small beam", error=E)
    checks.integer("num_return_sequences", s.num_return_sequences, low=1, fix="e.g. 1", error=E)
    if s.num_beams > 1 and not s.do_sample and s.num_return_sequences > s.num_beams:
        checks.fail(f"num_return_sequences={s.num_return_sequences} exceeds num_beams={s.num_beams}: "
                    "beam search returns at most num_beams sequences; raise num_beams", E)
    if s.num_beams == 1 and not s.do_sample and s.num_return_sequences > 1:
        checks.fail(f"num_return_sequences={s.num_return_sequences} with greedy decoding gives identical copies: "
                    "set do_sample=True, or num_beams >= num_return_sequences", E)
    check_constraint(s)
    return s


def check_constraint(s: Settings) -> None:
    """Type checks of ``json_schema`` / ``regex`` (cheap; compiling the grammar is :mod:`lmkit.decoding.grammar`'s)."""
    if s.json_schema is not None and not isinstance(s.json_schema, (dict, str)):
        checks.fail(f"json_schema must be a dict or a JSON string, not {type(s.json_schema).__name__}: "
                    "e.g. {'type': 'object', 'properties': {...}}", SettingsError)
    if s.regex is not None and not isinstance(s.regex, str):
        checks.fail(f"regex={s.regex!r} must be a string (a regular expression the whole output must match)",
                    SettingsError)
    if s.json_schema is not None and s.regex is not None:
        checks.fail("json_schema and regex were both given: constrain the output with one of them", SettingsError)
    if (s.json_schema is not None or s.regex is not None) and (s.num_beams > 1 or s.num_return_sequences > 1):
        checks.fail("json_schema/regex follow one sequence: use num_beams=1 and num_return_sequences=1",
                    SettingsError)


def context_length(lm) -> int:
    """How many tokens (prompt + generated) the model can attend to (notebook 06)."""
    return int(getattr(lm.model.config, "max_position_embeddings", None) or lm.tokenizer.model_max_length)


context_size = context_length  # the name before lmkit called the model's context one thing everywhere


_PROMPT_TYPES = ("a str; with chat=True also a list of {'role': str, 'content': str} messages")


def check_prompt(prompt, chat: bool = False) -> list[dict] | str:
    """The prompt checked for type: a string, or with ``chat=True`` a list of messages (notebooks 06 and 07).

    Returns the string, or the list of messages (a chat string becomes one user turn). Raises :class:`SettingsError`
    naming the accepted prompt types for anything else (``None``, a number, a list of non-messages, ...).
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            checks.fail("empty prompt: give at least one word to continue" if not chat else
                        "empty chat: pass a non-empty string or a list of {'role': ..., 'content': ...} messages",
                        SettingsError)
        return [{"role": "user", "content": prompt}] if chat else prompt
    if not chat:
        hint = "; pass a list of messages only with chat=True" if isinstance(prompt, (list, tuple)) else ""
        checks.fail(f"prompt must be a string, not {type(prompt).__name__}: use {_PROMPT_TYPES}{hint}", SettingsError)
    if not isinstance(prompt, (list, tuple)):
        checks.fail(f"prompt must be a string or a list of messages, not {type(prompt).__name__}: use "
                    f"{_PROMPT_TYPES}", SettingsError)
    for m in prompt:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            checks.fail(f"chat message {str(m)[:40]!r} is not a {{'role': str, 'content': str}} dict: use "
                        f"{_PROMPT_TYPES}", SettingsError)
    if not any(m["content"].strip() for m in prompt):
        checks.fail("empty chat: pass a non-empty string or a list of {'role': ..., 'content': ...} messages "
                    "with non-empty content", SettingsError)
    return list(prompt)


def prompt_ids(lm, prompt, chat: bool = False) -> torch.Tensor:
    """The ``[1, T]`` ids that generation starts from (notebook 06).

    ``chat=False``: the text as is (special-token text such as ``"<|im_start|>"`` is read as that token, so a
    template can be written out by hand), no special tokens added. ``chat=True``: ``prompt`` (a string, i.e. one user
    turn, or a list of ``{"role", "content"}`` messages) goes through the tokenizer's chat template, ending with the
    assistant's turn header; a message that writes a special token as text is refused, since the template would make
    it a control token. Wrong types raise :class:`SettingsError` (:func:`check_prompt`).
    """
    prompt = check_prompt(prompt, chat)
    warned = getattr(lm.tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):  # the context check below replaces the tokenizer's multi-line length warning
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    if chat:
        if getattr(lm.tokenizer, "chat_template", None) is None:
            checks.fail(f"chat=True, but the tokenizer of {lm.name!r} has no chat template: use chat=False or an "
                        "instruct model", SettingsError)
        for m in prompt:  # the template would turn such text into control tokens: a turn ended inside a message
            found = special_tokens_in(lm.tokenizer, m["content"])
            if found:
                checks.fail(f"a {m['role']} message writes the special token {found[0]!r} as text, which the chat "
                            "template would read as a control token: remove it, or write the whole template yourself "
                            "with chat=False", SettingsError)
        text = lm.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        ids = lm.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids.to(lm.device)
    else:
        ids = lm.encode(prompt)
    if ids.shape[1] == 0:
        checks.fail(f"prompt {str(prompt)[:40]!r} gives no tokens: give at least one word to continue", SettingsError)
    room = context_length(lm) - ids.shape[1]
    if room < 1:
        checks.fail(f"prompt is {ids.shape[1]} tokens but the context holds {context_length(lm)}: "
              "shorten the prompt to leave room for new tokens", SettingsError)
    return ids


def eos_ids(lm) -> set[int]:
    """The token ids that end generation: the generation_config's EOS (a list or one id), else the tokenizer's."""
    eos = getattr(lm.model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = lm.tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def processors(settings: Settings, grammar=None):
    """transformers' logits processors for ``settings``, in the order ``model.generate`` builds them (notebook 06).

    Repetition penalty always applies; temperature, top-k, top-p and min-p (the former "warpers") only when
    sampling. min-p (Nguyen et al. 2024, "Turning up the heat: min-p sampling") keeps the tokens whose probability
    is at least ``min_p`` times the top token's (notebook 07). ``grammar``, a logits processor that masks the tokens
    a constrained output cannot take (:class:`lmkit.decoding.grammar.GrammarLogitsProcessor`), goes first, so that
    temperature, top-k, top-p and min-p only ever see allowed tokens. Returns a ``LogitsProcessorList``: call it as
    ``procs(input_ids [1, t], scores [1, V]) -> [1, V]``.
    """
    from transformers import (LogitsProcessorList, MinPLogitsWarper, RepetitionPenaltyLogitsProcessor,
                              TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

    procs = LogitsProcessorList([grammar] if grammar is not None else [])
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
