"""Exercise checkers of notebook 07 (decoding, faster and constrained)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("07.1", hint="if each proposal is accepted independently with probability alpha, a round keeps j "
                       "proposals with probability alpha**j * (1 - alpha) (j < k) and all k with alpha**k, and "
                       "always adds the target's own token: sum (j + 1) times those probabilities, or sum the "
                       "geometric series 1 + alpha + ... + alpha**k; answer with a float.")
def _tokens_per_pass(answer, *, alpha, k):
    from lmkit.decoding.speculative import expected_tokens_per_pass

    return _close(answer, expected_tokens_per_pass(float(alpha), int(k)), rel=1e-6)


@exercise("07.2", hint="after a rejection the target's token is drawn from the part of p that q does not cover: "
                       "take max(0, p - q) element by element, then divide by its sum; answer with the [vocab] "
                       "probability tensor.")
def _residual(answer, *, p, q):
    import torch

    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    expected = (p - q).clamp(min=0)
    expected = expected / expected.sum()
    answer = torch.as_tensor(answer, dtype=torch.float64).flatten()
    return answer.shape == expected.shape and torch.allclose(answer, expected, atol=1e-6)


CITY_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city", "country", "population"],
               "properties": {"city": {"type": "string", "maxLength": 40},
                              "country": {"type": "string", "maxLength": 40},
                              "population": {"type": "integer", "minimum": 0, "maximum": 50_000_000}}}
"""Exercise 07.3's schema: what the student writes, and what the checker validates the answer against."""


@exercise("07.3", hint="write the schema as a dict: type object; properties city and country (type string, "
                       "maxLength 40) and population (type integer, minimum 0, maximum 50_000_000); required lists "
                       "all three; additionalProperties False. Pass it as json_schema= to lmkit.generate.generate "
                       "(chat=True, max_new_tokens about 60) and answer with what generate returns: the checker "
                       "validates it against its own copy of the schema and wants finish_reason == 'grammar', "
                       "which a typed string cannot have.")
def _json(answer):
    """Right when ``answer`` is a Generation that the grammar completed and that validates against
    :data:`CITY_SCHEMA`: a schema that leaves out a field or types the population as a string fails."""
    import json

    import jsonschema

    if not isinstance(answer, str) or getattr(answer, "finish_reason", None) != "grammar":
        return False
    try:
        jsonschema.validate(json.loads(answer), CITY_SCHEMA)
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False
    return True
