"""Checked exercises for workshops: right or wrong, with a hint, never the solution (every notebook's end).

A solution cell (tagged ``solution``) computes ``answer`` and ends with ``lmkit.exercises.check("00.1", answer, ...)``.
``make student`` replaces everything above that last line with ``answer = ...``, so a learner writes their own code
and runs the same check. Checkers recompute what they need from the objects passed in (the model, say), so that no
expected value is written down here or in the notebook. The checkers of notebook NN live in ``exNN.py``.

With ``LMKIT_STRICT_EXERCISES=1`` (``make test`` sets it) a wrong answer raises instead, so that CI fails when a
solution cell stops passing its own check.
"""
from __future__ import annotations

import importlib as _importlib
import pkgutil as _pkgutil

from lmkit.exercises.registry import _REGISTRY, CheckResult, Exercise, Result, _close, check, exercise, keys  # noqa: F401

__all__ = ["Exercise", "CheckResult", "Result", "check", "exercise", "keys"]

# The checkers register themselves on import, one module per notebook (each imports .registry, not this package).
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("ex") and _info.name[2:].isdigit():
        _importlib.import_module(f"{__name__}.{_info.name}")
