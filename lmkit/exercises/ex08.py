"""Exercise checkers of notebook 08 (compression)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
