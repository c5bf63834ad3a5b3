"""Checked exercises for workshops: right or wrong, with a hint, never the solution (every notebook's end).

A solution cell (tagged ``solution``) computes ``answer`` and ends with ``lmkit.exercises.check("00.1", answer, ...)``.
``make student`` replaces everything above that last line with ``answer = ...``, so a learner writes their own code
and runs the same check. Checkers recompute what they need from the objects passed in (the model, say), so that no
expected value is written down here or in the notebook.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any, Callable

_REGISTRY: dict[str, "Exercise"] = {}


@dataclass(frozen=True)
class Exercise:
    key: str
    checker: Callable[..., bool]
    hint: str


@dataclass(frozen=True)
class Result:
    """What :func:`check` returns: true when right; shows itself as a coloured line in a notebook."""

    key: str
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"{'✅ right' if self.ok else '❌ not yet'} ({self.key}): {self.message}"

    def _repr_html_(self) -> str:
        color, label = ("#1a7f37", "✅ Right") if self.ok else ("#b35900", "❌ Not yet")
        return (f'<div style="border-left:4px solid {color};padding:4px 10px;color:{color}">'
                f"<b>{label}</b> (exercise {html.escape(self.key)}): {html.escape(self.message)}</div>")


def exercise(key: str, hint: str):
    """Register ``checker(answer, **context) -> bool`` as the check of exercise ``key`` (e.g. ``"00.1"``)."""
    def register(checker):
        _REGISTRY[key] = Exercise(key, checker, hint)
        return checker
    return register


def keys() -> list[str]:
    """The keys of every registered exercise."""
    return sorted(_REGISTRY)


def check(key: str, answer: Any, **context) -> Result:
    """Check a learner's ``answer`` to exercise ``key``; ``context`` passes what the checker needs (e.g. ``lm=lm``)."""
    if key not in _REGISTRY:
        raise ValueError(f"unknown exercise {key!r}: use one of {', '.join(keys())}")
    ex = _REGISTRY[key]
    if answer is Ellipsis or answer is None:
        return Result(key, False, f"replace `answer = ...` with your answer. Hint: {ex.hint}")
    try:
        ok = bool(ex.checker(answer, **context))
    except Exception as exc:  # noqa: BLE001 - a learner's malformed answer is feedback, not a traceback
        return Result(key, False, f"could not check this answer ({type(exc).__name__}: {exc}). Hint: {ex.hint}")
    return Result(key, ok, "well done." if ok else f"Hint: {ex.hint}")


def _close(a: float, b: float, rel: float = 1e-3, abs_: float = 1e-6) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_)


# ------------------------------------------------------------------------------------------- notebook 00
@exercise("00.1", hint="softmax the logits at the LAST position of 'The capital of France is', then read the entry "
                       "of the token id of ' Paris' (one token: lm.tokenizer.encode(' Paris', add_special_tokens=False)).")
def _p_paris(answer, *, lm):
    import torch

    ids = lm.encode("The capital of France is")
    with torch.inference_mode():
        probs = torch.softmax(lm.model(ids).logits[0, -1].float(), -1)
    (tid,) = lm.tokenizer.encode(" Paris", add_special_tokens=False)
    return _close(answer, probs[tid].item())


def _n_params(cfg, layers: int, scale: int) -> int:
    d, V, dh = cfg.hidden_size * scale, cfg.vocab_size, cfg.head_dim
    h, kv, ff = cfg.num_attention_heads * scale, cfg.num_key_value_heads * scale, cfg.intermediate_size * scale
    attn = d * h * dh + 2 * d * kv * dh + h * dh * d
    return V * d + layers * (attn + 3 * d * ff) + (2 * layers + 1) * d


@exercise("00.2", hint="answer with a pair (parameters with 2x layers, parameters with 2x width); reuse the four "
                       "formulas of section 2 and scale d, the number of heads and d_ff together.")
def _twice(answer, *, lm):
    cfg = lm.model.config
    two_layers, two_width = answer
    return int(two_layers) == _n_params(cfg, 2 * cfg.num_hidden_layers, 1) and \
        int(two_width) == _n_params(cfg, cfg.num_hidden_layers, 2)


@exercise("00.3", hint="answer with the temperature (0.2 or 1.5) that gives MORE distinct samples; look at the "
                       "entropy of each distribution in the plot above.")
def _which_temperature(answer):
    return float(answer) == 1.5
