"""Tied weights (the embedding that is also the output head): find them, untie one, refuse to change one through
the other by accident (notebook 14)."""
from __future__ import annotations

import warnings

import torch.nn as nn


class TiedWeightError(ValueError):
    """An operation would change a tensor that another name shares (a tied output head and embedding)."""


def tied_names(model: nn.Module) -> dict[str, list[str]]:
    """For each parameter shared by several names, its first name -> every name (e.g. the tied head) (notebook 14).

    ``{"model.embed_tokens.weight": ["model.embed_tokens.weight", "lm_head.weight"]}`` for SmolLM2.
    """
    by_tensor: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(p), []).append(name)
    return {names[0]: names for names in by_tensor.values() if len(names) > 1}


def untie(model: nn.Module, module_name: str, tensor: str = "weight") -> nn.Parameter:
    """Give ``module_name.tensor`` its own copy of a shared parameter, and record it in the config; returns it.

    After this, changing the head leaves the embedding as it was (and the model is ``numel`` floats larger).
    ``config.tie_word_embeddings`` becomes False so that ``tie_weights()`` or a save/load does not tie them again.
    """
    module = model.get_submodule(module_name)
    fresh = nn.Parameter(getattr(module, tensor).detach().clone(), requires_grad=getattr(module, tensor).requires_grad)
    setattr(module, tensor, fresh)
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "tie_word_embeddings", False):
        config.tie_word_embeddings = False
    return fresh


def guard_tied(model: nn.Module, targets: list[str], untie_shared: bool, action: str) -> None:
    """Refuse (or untie first, saying so) when a ``targets`` weight is shared with a name outside ``targets``."""
    chosen = {f"{t}.weight" for t in targets}
    for names in tied_names(model).values():
        inside, outside = [n for n in names if n in chosen], [n for n in names if n not in chosen]
        if not inside or not outside:
            continue
        if not untie_shared:
            raise TiedWeightError(
                f"{inside[0]} is the same tensor as {outside[0]} (tied weights): {action} it would change "
                f"{outside[0]} too; pass untie=True to give it its own copy first, or skip={(inside[0].split('.')[0],)!r}")
        for name in inside:
            untie(model, name.removesuffix(".weight"))
            warnings.warn(f"untied {name} from {outside[0]} before {action} it: the two are separate tensors now",
                          stacklevel=3)
