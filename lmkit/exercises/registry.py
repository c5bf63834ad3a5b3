"""The registry of checked exercises: :func:`exercise` registers a checker, :func:`check` runs it (see
:mod:`lmkit.exercises`). The checker modules ``exNN.py`` import this module, never the package, so that imports
point one way: the package loads the registry, then the checkers."""
from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

_REGISTRY: dict[str, "Exercise"] = {}


@dataclass(frozen=True)
class Exercise:
    key: str
    checker: Callable[..., bool]
    hint: str


@dataclass(frozen=True)
class CheckResult:
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


Result = CheckResult  # the name before the package had three classes called Result; old imports keep working


def check(key: str, answer: Any, **context) -> CheckResult:
    """Check a learner's ``answer`` to exercise ``key``; ``context`` passes what the checker needs (e.g. ``lm=lm``)."""
    if key not in _REGISTRY:
        raise ValueError(f"unknown exercise {key!r}: use one of {', '.join(keys())}")
    ex = _REGISTRY[key]
    if answer is Ellipsis or answer is None:
        return CheckResult(key, False, f"replace `answer = ...` with your answer. Hint: {ex.hint}")
    try:
        ok = bool(ex.checker(answer, **context))
    except Exception as exc:  # noqa: BLE001 - a learner's malformed answer is feedback, not a traceback
        ok, hint = False, f"could not check this answer ({type(exc).__name__}: {exc}). Hint: {ex.hint}"
    else:
        hint = f"Hint: {ex.hint}"
    result = CheckResult(key, ok, "well done." if ok else hint)
    if not ok and os.environ.get("LMKIT_STRICT_EXERCISES") == "1":
        raise AssertionError(repr(result))
    return result


def _close(a: float, b: float, rel: float = 1e-3, abs_: float = 1e-6) -> bool:
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_)
