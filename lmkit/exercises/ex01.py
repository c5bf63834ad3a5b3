"""Exercise checkers of notebook 01 (language models)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
