"""Exercise checkers of notebook 09 (applications)."""
from __future__ import annotations

from . import _close, exercise  # noqa: F401
