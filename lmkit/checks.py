"""Argument checks, written once for the whole package: integer, real, probability, one-of, boolean, seed, index
(layer index), text and a list of texts.

Every public lmkit function checks its arguments with these before any model work, so a bad value always fails the
same way: a :class:`CheckError` (a ``ValueError``) whose one line names the argument, the value and the fix, e.g.::

    max_new_tokens=2.7 must be an integer >= 1: ask for at least one new token

Rules that hold everywhere:

- ``bool`` is never a number (``True`` is not ``1`` here), although Python's ``int`` subclasses it;
- numpy integers and floats count as integers and reals;
- reals must be finite unless ``finite=False`` (NaN is always refused);
- a check returns the value converted (``int`` / ``float``), so callers store plain Python numbers.

A module whose errors have their own class (:class:`lmkit.generate.SettingsError`, ...) passes it as ``error=``;
it must subclass ``ValueError``. This module imports nothing from lmkit: every other module may import it.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable

__all__ = ["CheckError", "fail", "show", "is_integer", "is_real", "integer", "real", "probability", "one_of", "boolean",
           "seed", "index", "layer_index", "text", "texts", "SEED_MAX"]

SEED_MAX = 2**32 - 1
"""The largest seed :func:`seed` accepts: NumPy's ``RandomState`` takes ``0 .. 2**32 - 1``, torch and Python more."""


class CheckError(ValueError):
    """A bad argument: the one-line message names the argument, its value and the fix."""


def fail(message: str, error: type[ValueError] = CheckError):
    """Raise ``error(message)``; ``message`` is one line naming the value and the fix."""
    raise error(message)


def is_integer(value) -> bool:
    """True for ``int`` and numpy integers, False for ``bool`` (and everything else)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value, finite: bool = True) -> bool:
    """True for a real number that is not ``bool`` nor NaN (nor infinite when ``finite``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return not math.isnan(value) and (not finite or math.isfinite(value))


def _range(low, high, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def show(value, width: int = 80) -> str:
    """``repr(value)`` on one line (a multi-line repr's lines joined by a space), cut to ``width`` characters, for an
    error message."""
    text = " ".join(line.strip() for line in repr(value).splitlines())
    return text if len(text) <= width else text[:width - 3] + "..."


def _message(name: str, value, kind: str, where: str, fix: str, must: str | None = None) -> str:
    head = f"{name}={show(value)} must be " + (must or " ".join(part for part in (kind, where) if part))
    return f"{head}: {fix}" if fix else head


def integer(name: str, value, *, low: int | None = None, high: int | None = None, multiple_of: int | None = None,
            must: str | None = None, fix: str = "", error: type[ValueError] = CheckError) -> int:
    """``value`` as an ``int`` if it is an integer (not ``bool``) with ``low <= value <= high``; else raise.

    ``low`` / ``high`` are inclusive and optional; so is ``multiple_of`` (2: an even number). The message reads
    ``name=value must be <must>: <fix>``; ``must`` defaults to the rule (``an integer >= 1``), ``fix`` says what
    to pass instead.
    """
    if (not is_integer(value) or (low is not None and value < low) or (high is not None and value > high)
            or (multiple_of is not None and value % multiple_of)):
        kind = "an integer" if multiple_of is None else f"a multiple of {multiple_of}"
        fail(_message(name, value, kind, _range(low, high), fix, must), error)
    return int(value)


def real(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False, finite: bool = True, must: str | None = None, fix: str = "",
         error: type[ValueError] = CheckError) -> float:
    """``value`` as a ``float`` if it is a real number (not ``bool``, not NaN, finite unless ``finite=False``) in the
    interval from ``low`` to ``high``; ``low_open`` / ``high_open`` exclude the bounds. Else raise.

    ``must`` replaces the rule in the message (``name=value must be <must>: <fix>``)."""
    ok = is_real(value, finite)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        where = _range(low, high, low_open, high_open)
        # an interval says "a number" by itself: "top_p=0.0 must be in (0, 1]"
        kind = "" if low is not None and high is not None else "a finite number" if finite else "a number (not NaN)"
        fail(_message(name, value, kind, where, fix, must), error)
    return float(value)


def probability(name: str, value, *, open_low: bool = False, open_high: bool = False, must: str | None = None,
                fix: str = "", error: type[ValueError] = CheckError) -> float:
    """``value`` as a ``float`` in ``[0, 1]`` (each end excluded when ``open_low`` / ``open_high``); else raise."""
    return real(name, value, low=0, high=1, low_open=open_low, high_open=open_high, must=must, fix=fix,
                error=error)


def one_of(name: str, value, choices: Iterable, *, fix: str = "", error: type[ValueError] = CheckError):
    """``value`` if it is one of ``choices`` (compared with ``==``, ``bool`` never standing for a number); else
    raise, listing the choices and the closest spelling when ``value`` is a string. ``fix`` ends the message
    (default: ``pass one of them``)."""
    choices = tuple(choices)
    if any(isinstance(value, bool) == isinstance(c, bool) and value == c for c in choices):
        return value
    hint = ""
    if isinstance(value, str):
        import difflib

        close = difflib.get_close_matches(value, [c for c in choices if isinstance(c, str)], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(map(repr, choices))
    fail(f"{name}={show(value)} is not one of {listed}{hint}: {fix or 'pass one of them'}", error)


def boolean(name: str, value, *, fix: str = "", error: type[ValueError] = CheckError) -> bool:
    """``value`` if it is ``True`` or ``False`` (not ``0`` / ``1``, not a string); else raise."""
    if not isinstance(value, bool):
        fail(_message(name, value, "True or False", "", fix), error)
    return value


def seed(name: str, value, *, fix: str = "", error: type[ValueError] = CheckError) -> int:
    """``value`` as an ``int`` seed in ``0 .. SEED_MAX`` (the range NumPy, torch and Python all accept); else raise."""
    return integer(name, value, low=0, high=SEED_MAX, must="an integer from 0 to 2**32 - 1",
                   fix=fix or f"pass e.g. {name}=0", error=error)


def index(name: str, value, size: int, *, what: str | None = None, negative: bool = True,
          error: type[ValueError] = CheckError) -> int:
    """``value`` as an index ``0..size-1`` (``bool`` refused); when ``negative``, ``-size..-1`` count from the end.

    The message reads ``name=value is out of range: <what>, pass 0..size-1 (or -size..-1)``, ``what`` saying what
    is counted (``"the model has 30 layers"``).
    """
    low = -size if negative else 0
    if not is_integer(value) or not low <= value < size:
        also = f" (or -{size}..-1)" if negative and size else ""
        bad = "is out of range" if is_integer(value) else "is not an integer index"
        fail(f"{name}={show(value)} {bad}: {what or f'there are {size}'}, pass 0..{size - 1}{also}", error)
    return int(value) % size


def layer_index(name: str, value, n_layers: int, *, error: type[ValueError] = CheckError) -> int:
    """``value`` as a layer index ``0..n_layers-1``; negative values count from the end (``-1`` is the last).

    ``bool`` is refused. The message gives both accepted ranges.
    """
    return index(name, value, n_layers, what=f"the model has {n_layers} layers", error=error)


def text(name: str, value, *, blank_ok: bool = False, fix: str = "pass a non-empty string",
         error: type[ValueError] = CheckError) -> str:
    """``value`` if it is a string with at least one non-space character (any non-empty string when
    ``blank_ok``: a tokenizer has tokens for spaces); else raise."""
    if not isinstance(value, str):
        fail(f"{name}={show(value)} must be a string, not {type(value).__name__}: {fix}", error)
    if not (value if blank_ok else value.strip()):
        fail(f"{name}={show(value)} is empty: {fix}", error)
    return value


def texts(name: str, value, *, what: str = "strings", fix: str = "", error: type[ValueError] = CheckError
          ) -> list[str]:
    """``value`` as a list of strings, each with a non-space character: one string becomes a list of one; an
    empty list, or a list with an empty string or a non-string, raises.

    The message reads ``name must be a non-empty list of <what>, none of them blank, got <value>: <fix>``.
    """
    items = [value] if isinstance(value, str) else value
    ok = not isinstance(items, (dict, bytes, bytearray)) and hasattr(items, "__iter__")
    items = list(items) if ok else []
    if not ok or not items or not all(isinstance(t, str) and t.strip() for t in items):
        head = f"{name} must be a non-empty list of {what}, none of them blank, got {show(value)}"
        fail(f"{head}: {fix}" if fix else head, error)
    return items
