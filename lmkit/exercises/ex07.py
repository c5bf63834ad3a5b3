"""Exercise checkers of notebook 07 (a GPT from scratch)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
