"""Constrained decoding: output that follows a JSON schema or a regular expression (notebook 07).

At each step a grammar says which tokens can continue *some* output that matches; the logits of every other token
are set to ``-inf`` before temperature, top-k, top-p and min-p, so greedy decoding and sampling can only pick
allowed tokens. The grammar work (schema → grammar, the tokenizer's byte trie, the per-step token mask) is done by
llguidance (https://github.com/guidance-ai/llguidance), a maintained Rust library with a small wheel and no
dependency; notebook 07 (section 8) measures it (its size, dependencies, compile and mask costs; no other library
is measured there) and says why it was chosen over xgrammar and lm-format-enforcer.

- :class:`Grammar`: one output's grammar state (the allowed-token mask of each step, public so that a notebook can
  look at it);
- :class:`GrammarLogitsProcessor`: the grammar as a transformers ``LogitsProcessor``. It reads the tokens chosen so
  far from ``input_ids`` on every call (rolling the grammar back when a caller backs up, as speculative decoding's
  verification does), so the same object constrains lmkit's own loop, :func:`lmkit.decoding.speculative.speculative`
  and ``model.generate(..., logits_processor=[...])``.

Use it through the settings of :func:`lmkit.generate.stream` / :func:`lmkit.generate.generate`:
``generate(lm, prompt, json_schema=schema)`` or ``regex=r"..."``.
"""
from __future__ import annotations

import json
from functools import lru_cache

import torch

from lmkit import checks
from lmkit.decoding.settings import Settings, SettingsError, eos_ids

__all__ = ["Grammar", "GrammarLogitsProcessor", "JSON_OPTIONS", "strict_schema", "for_settings",
           "tokenizer_info", "unpack_bitmask"]

JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
"""llguidance's JSON options that lmkit uses by default: one layout, ``{"a": 1, "b": [2, 3]}`` (the separators of
Python's ``json.dumps``), no other whitespace. JSON allows any amount, and a grammar that does lets a small model
fill its budget with blank lines. A schema opts out with its own ``"x-guidance"`` key, which llguidance applies
over these defaults: ``{"x-guidance": {"whitespace_flexible": true, "item_separator": ",", "key_separator": ":"},
...}`` allows any JSON whitespace around the separators."""

_SUBSCHEMA_DICTS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalItems", "not", "if", "then", "else", "contains", "additionalProperties")


def strict_schema(schema: dict) -> dict:
    """A copy of ``schema`` in which every object schema that names its ``properties`` and says nothing else about
    other keys gets ``"additionalProperties": false`` (notebook 07).

    JSON Schema lets an object carry any property it does not name, so a grammar compiled from it lets a model
    invent keys (``"population_density_by_city": [...]``) until the budget runs out. Structured-output engines
    (OpenAI's strict mode, for one) close objects by default; so does lmkit. A schema keeps extra keys by saying so:
    ``"additionalProperties": true`` (or a schema for them). Left open: an object that names no properties
    (``{"type": "object"}`` means any object), and one combined with ``allOf`` / ``anyOf`` / ``oneOf`` or
    ``patternProperties``, where closing one part would refuse the keys that another part names.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    says_more = ("additionalProperties", "unevaluatedProperties", "patternProperties", "allOf", "anyOf", "oneOf")
    if isinstance(out.get("properties"), dict) and not any(key in out for key in says_more):
        out["additionalProperties"] = False
    for key in _SUBSCHEMA_DICTS:
        if isinstance(out.get(key), dict):
            out[key] = {name: strict_schema(sub) for name, sub in out[key].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [strict_schema(sub) for sub in out[key]]
    for key in _SUBSCHEMA_ONE:
        if isinstance(out.get(key), dict):
            out[key] = strict_schema(out[key])
    return out


def for_settings(lm, s: Settings, prompt_length: int) -> "GrammarLogitsProcessor | None":
    """The :class:`GrammarLogitsProcessor` of ``s.json_schema`` / ``s.regex`` for a prompt of ``prompt_length``
    tokens, or None without a constraint. Compiles (and so checks) the grammar: a bad one raises
    :class:`lmkit.decoding.settings.SettingsError` in one line before any model work."""
    if s.json_schema is None and s.regex is None:
        return None
    return GrammarLogitsProcessor(Grammar(lm, json_schema=s.json_schema, regex=s.regex), prompt_length)


@lru_cache(maxsize=4)
def tokenizer_info(tokenizer, eos: tuple[int, ...] = ()):
    """llguidance's view of a fast Hugging Face tokenizer (about 1 s for 49k tokens, so it is cached).

    ``eos``: the ids that end generation (the model's, which may differ from the tokenizer's own EOS).
    """
    import llguidance.hf
    from transformers import PreTrainedTokenizerFast

    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        checks.fail(f"constrained decoding needs a fast tokenizer, not {type(tokenizer).__name__}: "
                    "load the model with lmkit.load (which gives a fast one)", SettingsError)
    return llguidance.hf.from_tokenizer(tokenizer, eos_token=list(eos) or None)


def unpack_bitmask(bitmask: bytes, vocab_size: int) -> torch.Tensor:
    """A ``[vocab_size]`` bool tensor from llguidance's packed mask (bit ``i % 32`` of int32 word ``i // 32``)."""
    words = torch.frombuffer(bytearray(bitmask), dtype=torch.int32)
    bits = (words.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1
    return bits.flatten()[:vocab_size].bool()


class Grammar:
    """One constrained generation's grammar state (notebook 07).

    Built from ``json_schema`` (a dict or a JSON string) or ``regex`` (the whole output must match it). Everything
    is checked here, before any model work, and each failure raises :class:`lmkit.decoding.settings.SettingsError`
    in one line: a schema that is not valid JSON Schema (checked with ``jsonschema``) or that llguidance cannot compile,
    a regex that does not parse, and a regex that matches no string at all. A JSON schema is compiled with
    lmkit's strict, compact defaults: objects closed (:func:`strict_schema`; ``strict=False`` keeps JSON Schema's
    open objects) and one layout (:data:`JSON_OPTIONS`; ``json_options=`` replaces them).

    - :meth:`allowed`: the ``[vocab]`` bool mask of tokens that can come next;
    - :meth:`mask`: logits ``[1, V]`` with the disallowed ones set to ``-inf`` (a new tensor);
    - :meth:`advance`: consume the chosen token; :attr:`done`: nothing can follow (the output is complete);
    - :meth:`rollback` and :meth:`follow`: undo tokens, or move to any output (for callers that back up).
    """

    def __init__(self, lm, *, json_schema=None, regex=None, strict: bool = True, json_options: dict | None = None):
        import llguidance

        if (json_schema is None) == (regex is None):
            checks.fail("give exactly one of json_schema= and regex=", SettingsError)
        if json_schema is not None:
            self.kind, source = "json_schema", self._check_schema(json_schema)
            compiled = strict_schema(source) if strict else source
            options = JSON_OPTIONS if json_options is None else json_options
            grammar = llguidance.LLMatcher.grammar_from_json_schema(compiled, defaults=options)
        else:
            if not isinstance(regex, str):
                checks.fail(f"regex={regex!r} must be a string (a regular expression the whole output must match)",
                            SettingsError)
            self.kind, source = "regex", regex
            grammar = llguidance.LLMatcher.grammar_from_regex(regex)
        self.source = source
        self.info = tokenizer_info(lm.tokenizer, tuple(sorted(eos_ids(lm))))
        error = llguidance.LLMatcher.validate_grammar(grammar, self.info)
        if error:
            first = next((line.strip() for line in error.splitlines() if line.strip().startswith("error:")),
                         error.splitlines()[0].strip())
            checks.fail(f"{self.kind} {str(source)[:60]!r} rejected by llguidance ({first[:120]}): "
                        f"fix the {'schema' if self.kind == 'json_schema' else 'pattern'}", SettingsError)
        self.matcher = llguidance.LLMatcher(self.info, grammar, log_level=0)
        self.vocab_size = self.info.vocab_size
        first_mask = self.allowed()
        if self.matcher.is_error() or not first_mask.any():
            checks.fail(f"{self.kind} {str(source)[:60]!r} matches no output the tokenizer can write: "
                        "check the pattern (an empty character class such as [^\\s\\S] matches nothing)", SettingsError)
        self._first = first_mask
        self.consumed: list[int] = []

    @staticmethod
    def _check_schema(schema) -> dict:
        import jsonschema

        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as err:
                checks.fail(f"json_schema is not valid JSON ({err.msg} at character {err.pos}): pass a dict or a JSON "
                            "string", SettingsError)
        if not isinstance(schema, dict):
            checks.fail(f"json_schema must be a JSON object (dict), not {type(schema).__name__}", SettingsError)
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as err:
            checks.fail(f"json_schema is not a valid JSON Schema ({err.message[:100]}): fix the schema, e.g. "
                        "{'type': 'object', 'properties': {'name': {'type': 'string'}}}", SettingsError)
        return schema

    def allowed(self) -> torch.Tensor:
        """``[vocab]`` bool: the tokens that can come next (EOS only once the output is complete)."""
        if getattr(self, "_first", None) is not None:
            first, self._first = self._first, None
            return first
        return unpack_bitmask(self.matcher.compute_bitmask(), self.vocab_size)

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` ``[1, V]`` with every token the grammar forbids at this step set to ``-inf``."""
        ok = self.allowed().to(logits.device)
        keep = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
        n = min(ok.numel(), keep.numel())
        keep[:n] = ok[:n]
        return logits.masked_fill(~keep, float("-inf"))

    def advance(self, token_id: int) -> None:
        """Consume the token that was chosen (it must be one that :meth:`allowed` allowed)."""
        self._first = None
        if not self.matcher.consume_token(int(token_id)):
            raise RuntimeError(f"token {token_id} was not allowed by the grammar: {self.matcher.get_error()[:200]}")
        self.consumed.append(int(token_id))

    def rollback(self, n: int) -> None:
        """Undo the last ``n`` :meth:`advance` calls (llguidance's ``LLMatcher.rollback``)."""
        if n > 0:
            self._first = None
            if not self.matcher.rollback(n):
                raise RuntimeError(f"the grammar could not roll back {n} tokens: {self.matcher.get_error()[:200]}")
            del self.consumed[len(self.consumed) - n:]

    def follow(self, ids) -> None:
        """Bring the state to the output ``ids`` (a list of token ids): roll back past the first token that differs
        from what was consumed, then consume the rest. Idempotent; costs nothing when ``ids`` only grew."""
        ids = [int(i) for i in ids]
        same = 0
        for a, b in zip(self.consumed, ids):
            if a != b:
                break
            same += 1
        self.rollback(len(self.consumed) - same)
        for token in ids[same:]:
            if self.done:  # a stopped grammar takes nothing more (the output is complete; EOS may follow)
                break
            self.advance(token)

    @property
    def done(self) -> bool:
        """True once nothing more can follow (the output is complete, or the grammar consumed EOS)."""
        return self.matcher.is_stopped()

    @property
    def accepting(self) -> bool:
        """True when the output so far is a complete match (more may still be allowed)."""
        return self.matcher.is_accepting()


class GrammarLogitsProcessor:
    """A :class:`Grammar` as a transformers ``LogitsProcessor``: ``proc(input_ids, scores) -> scores`` (notebook 07).

    ``input_ids``: ``[1, t]``, the prompt (its first ``prompt_length`` tokens) and the output so far; ``scores``:
    ``[1, V]`` logits. On every call the grammar follows the output in ``input_ids`` (:meth:`Grammar.follow`), so
    the processor needs no other bookkeeping and stays right when a caller backs up (speculative decoding verifies
    proposals, then keeps a prefix). The tokens the grammar forbids get ``-inf``; once the output is complete only
    EOS is allowed, so ``model.generate`` stops by itself. :attr:`finished` tells a loop that the output is complete.

    Pass it to ``model.generate(ids, logits_processor=LogitsProcessorList([proc]))``: transformers (5.23,
    ``GenerationMixin._get_logits_processor``) puts custom processors after its own plain ones (repetition penalty)
    and before temperature, top-k, top-p and min-p, so sampling there also draws only allowed tokens.
    :func:`lmkit.decoding.settings.processors` puts the grammar first of all; a repetition penalty leaves ``-inf`` at
    ``-inf``, so both orders give the same distribution (``tests/test_constrained.py`` checks greedy and seeded
    sampling token by token).
    One sequence at a time (batch size 1: no beams, no batched prompts).
    """

    def __init__(self, grammar: Grammar, prompt_length: int):
        self.grammar = grammar
        self.prompt_length = checks.integer("prompt_length", prompt_length, low=0, error=SettingsError)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != 1:
            checks.fail(f"a grammar follows one sequence, got a batch of {input_ids.shape[0]}: decode one prompt at a "
                        "time", SettingsError)
        self.follow(input_ids)
        return self.grammar.mask(scores)

    def follow(self, input_ids: torch.LongTensor) -> None:
        """Bring the grammar to the output in ``input_ids`` ``[1, t]`` (the tokens after the prompt)."""
        self.grammar.follow(input_ids[0, self.prompt_length:].tolist())

    def finished(self, input_ids: torch.LongTensor) -> bool:
        """True when the output in ``input_ids`` ``[1, t]`` is complete: nothing more can follow."""
        self.follow(input_ids)
        return self.grammar.done
