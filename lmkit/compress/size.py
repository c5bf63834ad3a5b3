"""What a compressed model costs and how far it moved: bytes on disk and in memory, bits per weight, relative error
(notebook 14)."""
from __future__ import annotations

import dataclasses
import io

import torch
import torch.nn as nn

from lmkit.profile.roofline import weight_bytes


def disk_bytes(model: nn.Module) -> int:
    """Bytes of the model's state dict serialized (tied tensors once, packed int8/low-bit weights as stored).

    Zeros from pruning still take their 4 bytes: a dense file does not shrink with unstructured sparsity.
    """
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def memory_bytes(model: nn.Module) -> int:
    """Bytes held by the weights in memory: parameters, buffers (the low-bit codes) and packed int8 weights."""
    seen, total = set(), weight_bytes(model)
    seen.update(p.data_ptr() for p in model.parameters())
    for b in model.buffers():
        if b.data_ptr() not in seen and b.numel() and not b.dtype == torch.bool:
            seen.add(b.data_ptr())
            total += b.numel() * b.element_size()
    return total


def with_model(lm, model: nn.Module):
    """The ``lmkit.LM`` ``lm`` with another model (same tokenizer and device), e.g. for ``metrics.perplexity``."""
    return dataclasses.replace(lm, model=model)


def size_mb(model: nn.Module) -> dict[str, float]:
    """``{"disk MB": ..., "memory MB": ...}`` of ``model`` (notebook 14)."""
    return {"disk MB": disk_bytes(model) / 1e6, "memory MB": memory_bytes(model) / 1e6}


def bits_per_weight(bits: int, group_size: int) -> float:
    """Storage per weight of :class:`QuantLinear`: the code plus a float16 scale and offset per group."""
    return bits + 2 * 16 / group_size


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖a - b‖ / ‖b‖``, the error of an approximation ``a`` of ``b``."""
    return (torch.linalg.vector_norm((a - b).float()) / torch.linalg.vector_norm(b.float())).item()
