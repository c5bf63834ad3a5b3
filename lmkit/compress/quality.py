"""Quality of a compressed model with an interval: per-block held-out loss, paired with float32 (notebook 14).

``block_means`` lives in :mod:`lmkit.stats` and is re-exported here.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from lmkit import checks
from lmkit.compress.size import with_model
from lmkit.stats import block_means


def heldout_block_nll(lm, model: nn.Module, *, block: int = 32, max_chars: int | None = None) -> torch.Tensor:
    """Per-block mean NLL (nats/token, shape ``[blocks]``) of ``model`` on the held-out text, in the one window of
    :func:`lmkit.metrics.heldout_perplexity` (notebook 14): ``exp`` of the mean over all tokens is that perplexity.

    Two models scored this way give paired samples, block ``i`` being the same tokens under both:
    ``lmkit.stats.compare(heldout_block_nll(lm, variant), heldout_block_nll(lm, lm.model))``.
    """
    from lmkit.data import heldout_text
    from lmkit.metrics import HELDOUT_WINDOW, token_nll

    nll = token_nll(with_model(lm, model), heldout_text(max_chars), window=HELDOUT_WINDOW, progress=False)
    return block_means(nll, block)
