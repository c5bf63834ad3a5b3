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


@exercise("07.3", hint="pass json_schema=schema to lmkit.generate.generate (chat=True, enough max_new_tokens for "
                       "the whole object); answer with what generate returns: text that parses with json.loads, "
                       "validates against the schema, and says it ended because the grammar completed "
                       "(finish_reason == 'grammar'), which a typed string cannot.")
def _json(answer, *, schema):
    import json

    import jsonschema

    if not isinstance(answer, str) or getattr(answer, "finish_reason", None) != "grammar":
        return False
    try:
        jsonschema.validate(json.loads(answer), schema)
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False
    return True
