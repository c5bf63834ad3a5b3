"""Dynamic int8 quantization on a copy, with per-channel scales and layers left in float32, and fake quantization
that rounds the weights or the activations alone to find which costs the quality (notebook 14)."""
from __future__ import annotations

import copy
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmkit import checks
from lmkit.profile.quantize import quantize_int8
from lmkit.compress.linears import decoder_linears, set_module


def dynamic_int8(model: nn.Module, skip: tuple[str, ...] = (), per_channel: bool = False) -> nn.Module:
    """A copy of ``model`` with its ``nn.Linear`` layers in dynamic int8: int8 weights, activations quantized per
    call, int8 matmuls (notebook 14).

    With the defaults this is :func:`quantize_int8` (notebook 08): every linear layer, the tied output
    head included, one scale per weight tensor. ``skip``: layers whose name contains one of these fragments stay
    float32 (e.g. ``("lm_head", "mlp.down_proj")``). ``per_channel``: one weight scale per output row instead of
    one per tensor. The activations always get one scale per call (per tensor), and on x86 (fbgemm) only 7 bits
    of range (``reduce_range``, which avoids an int16 overflow in its kernel).
    """
    if not skip and not per_channel:
        return quantize_int8(copy.deepcopy(model))
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    model = copy.deepcopy(model)
    spec = {n: qconfig for n, m in model.named_modules() if isinstance(m, nn.Linear) and not any(s in n for s in skip)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


ACT_SCALES = ("tensor", "token")
"""How :func:`fake_quant_activations` sets the activation scale: one for the whole tensor, or one per token."""


def fake_quant_activations(x: torch.Tensor, bits: int = 8, *, scale: str = "tensor",
                           exact_first: int = 0) -> torch.Tensor:
    """``x`` rounded as dynamic quantization rounds a linear layer's input, float in, float out (notebook 14).

    Asymmetric rounding to ``2^bits`` levels between the min and the max (each clamped to include 0): step
    ``(max - min) / (2^bits - 1)``, zero point ``round(-min / step)``, as torch.ao's dynamic ``MinMaxObserver``
    (fbgemm keeps 7 bits of range, ``reduce_range``). ``x`` has shape ``[..., T, features]`` (a 2-D ``[T,
    features]`` works too); the shape is kept.

    ``scale="tensor"`` (default): one step and zero point for the whole tensor, what the real kernel does.
    ``scale="token"``: one per row of the last dimension (per token), so one token's spike sets only its own step
    (the per-token activation scale of ZeroQuant, Yao et al. 2022, and LLM.int8(), Dettmers et al. 2022).
    ``exact_first=k``: the first ``k`` positions along dimension ``-2`` stay exact and the per-tensor scale comes
    from the other positions: the rounding *without* the first token's massive activation (Sun et al. 2024).
    It reads positions from the tensor, so it suits a full-sequence forward pass (perplexity), not cached
    decoding, where a one-token call at position 40 is row 0.

    Raises ValueError for ``bits`` outside 2..16, an unknown ``scale``, or ``exact_first`` < 0.
    """
    bits = checks.integer("bits", bits, low=2, high=16, fix="fbgemm's activations use 7")
    scale = checks.one_of("scale", scale, ACT_SCALES, fix="'tensor' (one scale per call) or 'token' (one per token)")
    exact_first = checks.integer("exact_first", exact_first, low=0, fix="the leading positions to keep exact")
    if exact_first and x.dim() >= 2 and x.shape[-2] > exact_first:
        head, rest = x[..., :exact_first, :], x[..., exact_first:, :]
        return torch.cat([head, fake_quant_activations(rest, bits, scale=scale)], dim=-2)
    qmax = 2**bits - 1
    if scale == "token":
        lo, hi = x.amin(-1, keepdim=True).clamp(max=0), x.amax(-1, keepdim=True).clamp(min=0)
    else:
        lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
    step = ((hi - lo) / qmax).clamp_min(1e-12)
    zero = torch.round(-lo / step)
    return (torch.clamp(torch.round(x / step) + zero, 0, qmax) - zero) * step


class FakeQuantLinear(nn.Module):
    """A float32 linear layer that rounds what dynamic int8 would round, and nothing else (notebook 14).

    ``weights``: ``None`` (exact), ``"tensor"`` (symmetric int8, one scale per matrix) or ``"channel"`` (one scale
    per output row). ``act_bits``: ``None`` (exact) or the bits of the activation rounding; ``act_scale`` and
    ``act_exact_first`` are :func:`fake_quant_activations`' ``scale`` and ``exact_first`` (default: what the real
    kernel does, one scale per tensor). Switching one at a time says which rounding costs the quality.
    """

    def __init__(self, linear: nn.Linear, weights: str | None = "tensor", act_bits: int | None = 7, *,
                 act_scale: str = "tensor", act_exact_first: int = 0):
        super().__init__()
        if weights not in (None, "tensor", "channel"):
            raise ValueError(f"weights={weights!r}: use None, 'tensor' or 'channel'")
        checks.one_of("act_scale", act_scale, ACT_SCALES, fix="'tensor' (one scale per call) or 'token' (one per token)")
        w = linear.weight.detach().float()
        if weights:
            amax = w.abs().amax() if weights == "tensor" else w.abs().amax(1, keepdim=True)
            scale = (amax / 127.5).clamp_min(1e-12)  # as torch.ao MinMaxObserver: amax / ((127 - -128) / 2)
            w = torch.round(w / scale).clamp(-128, 127) * scale
        self.register_buffer("weight", w.clone())
        self.bias = linear.bias
        self.act_bits, self.act_scale, self.act_exact_first = act_bits, act_scale, act_exact_first

    def forward(self, x):
        if self.act_bits:
            x = fake_quant_activations(x, self.act_bits, scale=self.act_scale, exact_first=self.act_exact_first)
        return F.linear(x, self.weight.to(x.dtype), self.bias)


def fake_quantize(model: nn.Module, weights: str | None = "tensor", act_bits: int | None = 7,
                  skip: tuple[str, ...] = (), *, act_scale: str = "tensor", act_exact_first: int = 0) -> nn.Module:
    """A copy of ``model`` with each ``nn.Linear`` (names without ``skip``) a :class:`FakeQuantLinear` with these
    settings (notebook 14)."""
    model = copy.deepcopy(model)
    for name, lin in decoder_linears(model, skip):
        set_module(model, name, FakeQuantLinear(lin, weights, act_bits, act_scale=act_scale,
                                                act_exact_first=act_exact_first))
    return model


@torch.no_grad()
def activation_outliers(model: nn.Module, ids: torch.Tensor) -> dict[str, dict[str, float]]:
    """For the input of every ``nn.Linear`` on ``ids`` (``[1, T]``, T >= 2): where its largest value sits, and how
    large it is against the typical one (notebook 14).

    Keys: ``max |x|``, its root mean square ``rms`` and their ratio ``max / rms`` over the whole input (what one
    per-tensor scale sees); ``position`` and ``channel`` of the largest ``|x|``; and the same three figures without
    position 0 (``max |x| after 0``, ``rms after 0``, ``max / rms after 0``). A ratio of several hundred means that
    one per-tensor scale, set by the largest value, leaves very few levels for all the others. In SmolLM2 the
    largest inputs of ``down_proj`` sit at the first token, in a couple of channels: the *massive activations* of
    Sun et al. (2024), which also inflate the whole-input ``rms``. Raises ValueError for fewer than 2 tokens.
    """
    if ids.dim() != 2 or ids.shape[0] != 1 or ids.shape[1] < 2:
        raise ValueError(f"ids has shape {tuple(ids.shape)}: pass one row of at least 2 tokens, shape [1, T]")
    stats, hooks = {}, []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            def hook(_, inputs, name=name):
                x = inputs[0].float()[0]  # [T, features]
                amax, rms = x.abs().max().item(), x.pow(2).mean().sqrt().item()
                at = int(x.abs().argmax())
                rest = x[1:]
                amax_r, rms_r = rest.abs().max().item(), rest.pow(2).mean().sqrt().item()
                stats[name] = {"max |x|": amax, "rms": rms, "max / rms": amax / max(rms, 1e-12),
                               "position": at // x.shape[1], "channel": at % x.shape[1],
                               "max |x| after 0": amax_r, "rms after 0": rms_r,
                               "max / rms after 0": amax_r / max(rms_r, 1e-12)}
            hooks.append(mod.register_forward_pre_hook(hook))
    try:
        model(ids)
    finally:
        for h in hooks:
            h.remove()
    return stats
