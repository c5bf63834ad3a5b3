"""Speculative decoding's first home, kept so that ``from lmkit.speculative import ...`` still works (notebook 07).

The code lives in :mod:`lmkit.decoding.speculative`; :mod:`lmkit.generate` re-exports its main names.
"""
from lmkit.decoding.speculative import (SpeculativeResult, accept_or_resample, early_exit_draft,
                                        expected_tokens_per_pass, propose, speculative, verify_greedy,
                                        verify_sampled)

__all__ = ["SpeculativeResult", "speculative", "early_exit_draft", "propose", "verify_greedy", "verify_sampled",
           "accept_or_resample", "expected_tokens_per_pass"]
