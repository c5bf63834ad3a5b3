"""Exercise checkers of notebook 04 (generation)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
