"""Constrained decoding's first home, kept so that ``from lmkit import constrained`` still works (notebook 07).

The code lives in :mod:`lmkit.decoding.grammar` (the grammar and its logits processor); the cheap type checks of
``json_schema`` / ``regex`` are :func:`lmkit.decoding.settings.check_constraint`.
"""
from lmkit.decoding.grammar import (JSON_OPTIONS, Grammar, GrammarLogitsProcessor, for_settings, tokenizer_info,
                                    unpack_bitmask)
from lmkit.decoding.settings import check_constraint as check_settings

__all__ = ["Grammar", "GrammarLogitsProcessor", "JSON_OPTIONS", "check_settings", "for_settings", "tokenizer_info",
           "unpack_bitmask"]
