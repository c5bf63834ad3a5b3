"""Exercise checkers of notebook 05 (inference profiling)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
