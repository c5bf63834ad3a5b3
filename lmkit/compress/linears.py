"""Which layers the compression methods touch: the decoder's ``nn.Linear`` layers, and how to swap one (notebook 14)."""
from __future__ import annotations


import torch.nn as nn


def decoder_linears(model: nn.Module, skip: tuple[str, ...] = ("lm_head",)):
    """(name, module) of every ``nn.Linear`` whose name contains none of ``skip``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and not any(s in n for s in skip)]


def set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
