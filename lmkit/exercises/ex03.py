"""Exercise checkers of notebook 03 (attention)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
