"""Unstructured magnitude pruning: the smallest ``|w|`` of each linear layer set to zero, with
``torch.nn.utils.prune`` (notebook 14)."""
from __future__ import annotations


import torch
import torch.nn as nn

from lmkit import checks
from lmkit.compress.linears import decoder_linears
from lmkit.compress.tied import guard_tied


def prune_magnitude(model: nn.Module, sparsity: float, skip: tuple[str, ...] = ("lm_head",), *,
                    untie: bool = False) -> float:
    """Zero the ``sparsity`` fraction of smallest-|w| weights in each linear layer, in place (notebook 14).

    Each layer loses the same fraction (layer-wise magnitude pruning), with ``torch.nn.utils.prune.l1_unstructured``
    then ``prune.remove`` (the zeros are written into the weight, no mask or hook is left behind). Pruning to a
    higher sparsity after a lower one gives the same weights as pruning the original directly. A layer whose weight
    is tied to a tensor outside the pruned layers (``lm_head`` and the embedding, with ``skip=()``) raises
    :class:`TiedWeightError`; ``untie=True`` gives it its own copy first, with a warning. Returns the sparsity
    reached (see :func:`sparsity_of`).
    """
    from torch.nn.utils import prune

    sparsity = checks.probability("sparsity", sparsity, open_high=True,
                                  fix="e.g. 0.5 zeroes half of each layer's weights")
    checks.boolean("untie", untie)
    layers = decoder_linears(model, skip)
    guard_tied(model, [name for name, _ in layers], untie, "pruning")
    with torch.no_grad():
        for _, lin in layers:
            k = int(round(sparsity * lin.weight.numel()))
            if k == 0:
                continue
            prune.l1_unstructured(lin, "weight", amount=k)
            prune.remove(lin, "weight")
    return sparsity_of(model, skip)


def sparsity_of(model: nn.Module, skip: tuple[str, ...] = ("lm_head",)) -> float:
    """Fraction of exact zeros among the weights of the linear layers (notebook 14)."""
    zeros = total = 0
    for _, lin in decoder_linears(model, skip):
        zeros += (lin.weight == 0).sum().item()
        total += lin.weight.numel()
    return zeros / max(1, total)
