"""Exercise checkers of notebook 02 (tokens and embeddings)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
