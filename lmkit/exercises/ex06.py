"""Exercise checkers of notebook 06 (fine-tuning)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
