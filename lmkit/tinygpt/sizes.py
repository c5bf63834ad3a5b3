"""Parameter counts and training FLOPs per token (notebook 10).

Sources: ``6N`` per trained token, Kaplan et al. 2020, "Scaling laws for neural language models", section 2.1 and
table 1; the attention term ``12·L·d·T``, Chowdhery et al. 2022, "PaLM: Scaling language modeling with pathways",
appendix B (written there ``12·L·H·Q·T``, with ``H·Q = d``)."""
from __future__ import annotations


import torch.nn as nn

from lmkit import checks


def n_params(model: nn.Module, non_embedding: bool = False) -> int:
    """Parameters, tied weights counted once; ``non_embedding`` leaves out the token (and learned position) table."""
    checks.boolean("non_embedding", non_embedding)
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        total -= model.tok_emb.weight.numel()
        if getattr(model, "pos_emb", None) is not None:
            total -= model.pos_emb.weight.numel()
    return total


def flops_per_token(n_params_: int, n_layer: int, n_embd: int, context: int, training: bool = True, *,
                    vocab_size: int = 0) -> float:
    """nanoGPT/PaLM arithmetic: ``6N + 6·V·d + 12·L·d·T`` FLOPs per trained token (forward only: a third)
    (notebook 10).

    ``6N``: 2 FLOPs per multiply-add per weight of the blocks (``N`` = parameters outside the token embedding),
    forward (2N) plus backward (4N); ``6·V·d``: the output head, a ``d × V`` product per token (2·V·d forward) that a
    tied head performs although its matrix is the embedding, left out of ``N``; ``12·L·d·T``: the attention scores
    and the weighted sum, which grow with the context length ``T``. ``6N``: Kaplan et al. (2020), section 2.1;
    ``12·L·d·T``: Chowdhery et al. (2022, PaLM), appendix B.
    """
    for name, value in (("n_params_", n_params_), ("n_layer", n_layer), ("n_embd", n_embd), ("context", context),
                        ("vocab_size", vocab_size)):
        checks.integer(name, value, low=0, fix="a count (0 leaves its term out)")
    checks.boolean("training", training)
    total = 6 * n_params_ + 6 * vocab_size * n_embd + 12 * n_layer * n_embd * context
    return total if training else total / 3
