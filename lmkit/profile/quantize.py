"""Dynamic int8 quantization, one of the configurations that notebook 08 times (and notebook 14 measures further).

It lives here, low in the stack, so that :mod:`lmkit.compress` (notebook 14) builds on it: ``compress`` imports
``profile``, never the other way round.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn as nn

__all__ = ["quantize_int8"]


def quantize_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantization of every ``nn.Linear`` (weights int8, activations quantized per call) (notebook 08).

    Uses ``torch.ao.quantization.quantize_dynamic`` (its deprecation notice about torchao is silenced: it still
    works in this torch and needs nothing else). Changes ``model`` in place and returns it; CPU only. The modules
    are replaced, no weight tensor is written: a tied embedding keeps its float32 values beside the int8 head.
    Also ``lmkit.compress.quantize_int8``.
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("dynamic int8 quantization runs on the CPU only: pass a model on device='cpu'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
