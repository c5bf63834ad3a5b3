"""Constrained decoding: output that follows a JSON schema or a regular expression (notebook 12).

At each step a grammar says which tokens can continue *some* output that matches; the logits of every other token
are set to ``-inf`` before temperature, top-k, top-p and min-p, so greedy decoding and sampling can only pick
allowed tokens. The grammar work (schema → grammar, the tokenizer's byte trie, the per-step token mask) is done by
llguidance (https://github.com/guidance-ai/llguidance), a maintained Rust library with a small wheel and no
dependency; notebook 12 measures why it was chosen over xgrammar and lm-format-enforcer.

Use it through the settings of :func:`lmkit.generate.stream` / :func:`lmkit.generate.generate`:
``generate(lm, prompt, json_schema=schema)`` or ``regex=r"..."``. :class:`Grammar` is the object behind them,
public so that a notebook can look at the allowed-token mask of each step.
"""
from __future__ import annotations

import json
from functools import lru_cache

import torch

__all__ = ["Grammar", "JSON_OPTIONS", "check_settings", "for_settings", "tokenizer_info", "unpack_bitmask"]

# Whitespace between JSON tokens: spaces and newlines, at most 12 in a row. JSON allows any amount, and a grammar
# that does lets a model loop on whitespace until max_new_tokens (a random model does it at once).
JSON_OPTIONS = {"whitespace_pattern": r"[\n ]{0,12}"}


def _fail(msg: str):
    from lmkit.generate import SettingsError

    raise SettingsError(msg)


def check_settings(s) -> None:
    """Type checks of the ``json_schema`` / ``regex`` fields of :class:`lmkit.generate.Settings` (cheap, no compile)."""
    if s.json_schema is not None and not isinstance(s.json_schema, (dict, str)):
        _fail(f"json_schema must be a dict or a JSON string, not {type(s.json_schema).__name__}: "
              "e.g. {'type': 'object', 'properties': {...}}")
    if s.regex is not None and not isinstance(s.regex, str):
        _fail(f"regex={s.regex!r} must be a string (a regular expression the whole output must match)")
    if s.json_schema is not None and s.regex is not None:
        _fail("json_schema and regex were both given: constrain the output with one of them")
    if (s.json_schema is not None or s.regex is not None) and (s.num_beams > 1 or s.num_return_sequences > 1):
        _fail("json_schema/regex follow one sequence: use num_beams=1 and num_return_sequences=1")


def for_settings(lm, s) -> "Grammar | None":
    """The compiled :class:`Grammar` of ``s.json_schema`` / ``s.regex``, or None without a constraint."""
    if s.json_schema is None and s.regex is None:
        return None
    return Grammar(lm, json_schema=s.json_schema, regex=s.regex)


@lru_cache(maxsize=4)
def tokenizer_info(tokenizer, eos: tuple[int, ...] = ()):
    """llguidance's view of a fast Hugging Face tokenizer (about 1 s for 49k tokens, so it is cached).

    ``eos``: the ids that end generation (the model's, which may differ from the tokenizer's own EOS).
    """
    import llguidance.hf
    from transformers import PreTrainedTokenizerFast

    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        _fail(f"constrained decoding needs a fast tokenizer, not {type(tokenizer).__name__}: "
              "load the model with lmkit.load (which gives a fast one)")
    return llguidance.hf.from_tokenizer(tokenizer, eos_token=list(eos) or None)


def unpack_bitmask(bitmask: bytes, vocab_size: int) -> torch.Tensor:
    """A ``[vocab_size]`` bool tensor from llguidance's packed mask (bit ``i % 32`` of int32 word ``i // 32``)."""
    words = torch.frombuffer(bytearray(bitmask), dtype=torch.int32)
    bits = (words.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1
    return bits.flatten()[:vocab_size].bool()


class Grammar:
    """One constrained generation's grammar state (notebook 12).

    Built from ``json_schema`` (a dict or a JSON string) or ``regex`` (the whole output must match it). Everything
    is checked here, before any model work, and each failure raises :class:`lmkit.generate.SettingsError` in one
    line: a schema that is not valid JSON Schema (checked with ``jsonschema``) or that llguidance cannot compile,
    a regex that does not parse, and a regex that matches no string at all.

    - :meth:`allowed`: the ``[vocab]`` bool mask of tokens that can come next;
    - :meth:`mask`: logits ``[1, V]`` with the disallowed ones set to ``-inf`` (a new tensor);
    - :meth:`advance`: consume the chosen token; :attr:`done`: nothing can follow (the output is complete).
    """

    def __init__(self, lm, *, json_schema=None, regex=None):
        import llguidance

        from lmkit.generate import eos_ids

        if (json_schema is None) == (regex is None):
            _fail("give exactly one of json_schema= and regex=")
        if json_schema is not None:
            self.kind, source = "json_schema", self._check_schema(json_schema)
            grammar = llguidance.LLMatcher.grammar_from_json_schema(source, defaults=JSON_OPTIONS)
        else:
            if not isinstance(regex, str):
                _fail(f"regex={regex!r} must be a string (a regular expression the whole output must match)")
            self.kind, source = "regex", regex
            grammar = llguidance.LLMatcher.grammar_from_regex(regex)
        self.source = source
        self.info = tokenizer_info(lm.tokenizer, tuple(sorted(eos_ids(lm))))
        error = llguidance.LLMatcher.validate_grammar(grammar, self.info)
        if error:
            first = next((line.strip() for line in error.splitlines() if line.strip().startswith("error:")),
                         error.splitlines()[0].strip())
            _fail(f"{self.kind} {str(source)[:60]!r} rejected by llguidance ({first[:120]}): "
                  f"fix the {'schema' if self.kind == 'json_schema' else 'pattern'}")
        self.matcher = llguidance.LLMatcher(self.info, grammar, log_level=0)
        self.vocab_size = self.info.vocab_size
        first_mask = self.allowed()
        if self.matcher.is_error() or not first_mask.any():
            _fail(f"{self.kind} {str(source)[:60]!r} matches no output the tokenizer can write: "
                  "check the pattern (an empty character class such as [^\\s\\S] matches nothing)")
        self._first = first_mask

    @staticmethod
    def _check_schema(schema) -> dict:
        import jsonschema

        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except json.JSONDecodeError as err:
                _fail(f"json_schema is not valid JSON ({err.msg} at character {err.pos}): pass a dict or a JSON "
                      "string")
        if not isinstance(schema, dict):
            _fail(f"json_schema must be a JSON object (dict), not {type(schema).__name__}")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as err:
            _fail(f"json_schema is not a valid JSON Schema ({err.message[:100]}): fix the schema, e.g. "
                  "{'type': 'object', 'properties': {'name': {'type': 'string'}}}")
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
        if not self.matcher.consume_token(int(token_id)):
            raise RuntimeError(f"token {token_id} was not allowed by the grammar: {self.matcher.get_error()[:200]}")

    @property
    def done(self) -> bool:
        """True once nothing more can follow (the output is complete, or the grammar consumed EOS)."""
        return self.matcher.is_stopped()

    @property
    def accepting(self) -> bool:
        """True when the output so far is a complete match (more may still be allowed)."""
        return self.matcher.is_accepting()
