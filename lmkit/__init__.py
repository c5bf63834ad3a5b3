"""lmkit: the helper package of the lmkit workbook, one module per notebook subject.

``lmkit.load()`` gives the bundled SmolLM2-135M-Instruct offline (notebook 00).
"""
from lmkit import env, exercises
from lmkit.models import LM, LoadError, load

__version__ = "0.1.0"
__all__ = ["LM", "LoadError", "env", "exercises", "load", "__version__"]
