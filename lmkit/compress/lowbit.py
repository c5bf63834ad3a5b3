"""Weight-only low-bit quantization written by hand in pure torch (notebook 14).

Each group of ``group_size`` weights of a row is stored as ``bits``-bit integers with a float16 scale and offset,
``w ≈ q·s + m``; 4-bit codes are packed two per byte. The layer dequantizes on the fly, so it saves memory and disk,
not time (a fused low-bit kernel would).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmkit.compress.linears import decoder_linears, set_module


class QuantLinear(nn.Module):
    """A linear layer whose weight is stored in ``bits`` bits per value, by groups along the input (notebook 14).

    For each row and each group of ``group_size`` inputs: ``s = (max - min) / (2^bits - 1)``, ``m = min``,
    ``q = round((w - m) / s)``; so ``w ≈ q·s + m`` with an error of at most ``s/2``. Forward dequantizes the
    whole weight and calls ``F.linear``: memory shrinks, arithmetic stays float32.
    """

    def __init__(self, linear: nn.Linear, bits: int = 4, group_size: int = 64):
        super().__init__()
        if bits not in (2, 4, 8):
            raise ValueError(f"bits={bits} is not supported: use 8, 4 or 2")
        out_f, in_f = linear.weight.shape
        if group_size < 2 or in_f % group_size:
            raise ValueError(f"group_size={group_size} must divide in_features={in_f}: try 32, 64 or 128")
        self.in_features, self.out_features, self.bits, self.group_size = in_f, out_f, bits, group_size
        w = linear.weight.detach().float().reshape(out_f, in_f // group_size, group_size)
        # offset and scale are rounded to float16 first, and the codes computed from the rounded values, so that
        # the error stays within half a step
        lo, hi = w.amin(-1, keepdim=True).half().float(), w.amax(-1, keepdim=True)
        scale = ((hi - lo) / (2**bits - 1)).clamp_min(1e-6).half().float()
        q = torch.round((w - lo) / scale).clamp_(0, 2**bits - 1).to(torch.uint8).reshape(out_f, in_f)
        self.register_buffer("qweight", self._pack(q, bits))
        self.register_buffer("scale", scale.squeeze(-1).half())
        self.register_buffer("offset", lo.squeeze(-1).half())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    @staticmethod
    def _pack(q: torch.Tensor, bits: int) -> torch.Tensor:
        per_byte = 8 // bits
        q = q.reshape(q.shape[0], -1, per_byte)
        packed = torch.zeros(q.shape[:2], dtype=torch.uint8)
        for i in range(per_byte):
            packed |= q[..., i] << (bits * i)
        return packed

    def codes(self) -> torch.Tensor:
        """The integer codes q, unpacked: uint8 [out, in]."""
        per_byte, mask = 8 // self.bits, 2**self.bits - 1
        parts = [(self.qweight >> (self.bits * i)) & mask for i in range(per_byte)]
        return torch.stack(parts, -1).reshape(self.out_features, self.in_features)

    def dequantize(self) -> torch.Tensor:
        """The float32 weight that this layer computes with: ``q·s + m`` per group."""
        q = self.codes().float().reshape(self.out_features, -1, self.group_size)
        return (q * self.scale.float()[..., None] + self.offset.float()[..., None]).reshape(
            self.out_features, self.in_features)

    def forward(self, x):
        return F.linear(x, self.dequantize().to(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bits={self.bits}, group_size={self.group_size}"


def quantize_weights(model: nn.Module, bits: int = 4, group_size: int = 64,
                     skip: tuple[str, ...] = ("lm_head",)) -> nn.Module:
    """A copy of ``model`` with each ``nn.Linear`` (except names containing ``skip``) a :class:`QuantLinear`.

    The tied output head is skipped by default: it is the embedding table, which stays float32 for the lookup
    (notebook 14).
    """
    model = copy.deepcopy(model)
    for name, lin in decoder_linears(model, skip):
        set_module(model, name, QuantLinear(lin, bits, group_size))
    return model
