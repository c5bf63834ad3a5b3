"""Quality of a compressed model with an interval: per-block held-out loss, paired with float32 (notebook 12)."""
from __future__ import annotations

import torch
import torch.nn as nn

from lmkit import checks
from lmkit.compress.size import with_model


def block_means(nll: torch.Tensor, block: int = 32) -> torch.Tensor:
    """Mean of ``nll`` (1-D, per-token losses in nats) over consecutive blocks of ``block`` tokens, shape
    ``[len(nll) // block]``; a last partial block is dropped so that every block weighs the same (notebook 12).

    Neighbouring tokens' losses are correlated (a hard line is hard for several tokens), so a paired comparison over
    single tokens would claim more precision than the text holds; means over blocks of ~32 tokens are closer to
    independent items for :func:`lmkit.stats.compare`. Raises ValueError for a non-1-D ``nll`` or fewer than 2
    whole blocks.
    """
    block = checks.integer("block", block, low=1, fix="pass the tokens per block, e.g. 32")
    if nll.dim() != 1:
        raise ValueError(f"nll has shape {tuple(nll.shape)}: pass the 1-D per-token losses (metrics.token_nll)")
    n = nll.numel() // block
    if n < 2:
        raise ValueError(f"{nll.numel()} tokens make {n} block(s) of {block}: pass a longer text or a smaller block")
    return nll[: n * block].float().view(n, block).mean(1)


def heldout_block_nll(lm, model: nn.Module, *, block: int = 32, max_chars: int | None = None) -> torch.Tensor:
    """Per-block mean NLL (nats/token, shape ``[blocks]``) of ``model`` on the held-out text, in the one window of
    :func:`lmkit.metrics.heldout_perplexity` (notebook 12): ``exp`` of the mean over all tokens is that perplexity.

    Two models scored this way give paired samples, block ``i`` being the same tokens under both:
    ``lmkit.stats.compare(heldout_block_nll(lm, variant), heldout_block_nll(lm, lm.model))``.
    """
    from lmkit.data import heldout_text
    from lmkit.metrics import HELDOUT_WINDOW, token_nll

    nll = token_nll(with_model(lm, model), heldout_text(max_chars), window=HELDOUT_WINDOW, progress=False)
    return block_means(nll, block)
