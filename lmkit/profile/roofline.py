"""Bytes and FLOPs of a decode step, and the roofline bounds that follow from the measured ceilings (notebook 08).

- Bytes: the weights as stored (:func:`weight_bytes`), the KV-cache formula (:func:`kv_cache_bytes`) and the
  bytes a real cache holds (:func:`cache_bytes`), the bytes one decode step reads (:func:`decode_bytes`).
- FLOPs: :func:`matmul_params`, :func:`decode_flops`, :func:`prefill_flops`.
- Bounds: :func:`decode_bound` (tokens/s at the memory bandwidth), :func:`prefill_bound`, :func:`share_of_bound`,
  and :class:`RooflinePoint` for one measured configuration on the roofline (Williams et al., 2009).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lmkit import checks
from lmkit.layers import head_dim as _head_dim

__all__ = ["weight_bytes", "kv_cache_bytes", "cache_bytes", "matmul_params", "decode_flops", "prefill_flops",
           "lookup_only_bytes", "decode_bytes", "decode_bound", "prefill_bound", "share_of_bound", "RooflinePoint"]


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the parameters as stored, tied tensors once, quantized packed weights included (notebook 08).

    Decoding one token reads every weight once (the tied embedding too: the output head multiplies by all of it).
    """
    seen, total = set(), 0
    for t in model.parameters():
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    for mod in model.modules():  # dynamic int8 Linear layers keep their weight in a packed param, not a Parameter
        packed = getattr(mod, "_packed_params", None)
        if packed is not None and hasattr(packed, "_weight_bias"):
            w, b = packed._weight_bias()
            total += w.numel() * w.element_size() + (b.numel() * b.element_size() if b is not None else 0)
    return total


def _shape(config) -> tuple[int, int, int, int, int]:
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = _head_dim(config)
    return layers, heads, kv_heads, head_dim, config.hidden_size


def kv_cache_bytes(config, tokens: int, *, batch: int = 1, dtype=torch.float32) -> int:
    """The KV cache formula: layers × 2 (K and V) × kv_heads × head_dim × tokens × batch × bytes (notebook 08)."""
    tokens = checks.integer("tokens", tokens, low=0, fix="the tokens the cache holds")
    batch = checks.integer("batch", batch, low=1, fix="the sequences decoded together")
    layers, _, kv_heads, head_dim, _ = _shape(config)
    return layers * 2 * kv_heads * head_dim * tokens * batch * torch.empty((), dtype=dtype).element_size()


def cache_bytes(cache) -> int:
    """Bytes actually held by a transformers cache (``past_key_values``): every key and value tensor (notebook 08)."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise ValueError(f"{type(cache).__name__} is not a transformers Cache: pass out.past_key_values")
    total = 0
    for layer in layers:
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def matmul_params(model: torch.nn.Module) -> int:
    """Parameters used in matrix products per token: every Linear (output head included), not the embedding lookup."""
    total = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            total += mod.in_features * mod.out_features
        elif hasattr(mod, "in_features") and hasattr(mod, "out_features") and hasattr(mod, "_packed_params"):
            total += mod.in_features * mod.out_features
    return total


def decode_flops(model: torch.nn.Module, context: int) -> int:
    """FLOPs to decode one token after ``context`` cached ones: 2 × matmul params + 4 × layers × heads × head_dim × context.

    The attention term counts QKᵀ and (scores)V for one query over ``context`` keys; norms, RoPE and softmax
    are a few percent and left out.
    """
    layers, heads, _, head_dim, _ = _shape(model.config)
    return 2 * matmul_params(model) + 4 * layers * heads * head_dim * context


def _head_params(model: torch.nn.Module) -> int:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or not hasattr(head, "in_features"):
        return 0
    return head.in_features * head.out_features


def prefill_flops(model: torch.nn.Module, prompt_tokens: int, *, all_logits: bool = False) -> int:
    """FLOPs to prefill a prompt of ``prompt_tokens`` tokens (notebook 08).

    Every token goes through every layer: 2 × (matmul params − head params) each, plus attention over its own
    prefix, counted as ``prompt_tokens`` queries over ``prompt_tokens // 2`` keys on average (the causal mask halves
    the square). The output head runs once, for the last position only, as in ``model.generate``, which passes
    ``logits_to_keep=1`` (transformers' generation utilities); ``all_logits=True`` counts it for every position, as a
    plain forward pass that returns all logits does. Raises ``ValueError`` for a negative count.
    """
    prompt_tokens = checks.integer("prompt_tokens", prompt_tokens, low=0, fix="the prompt's length in tokens")
    head = _head_params(model)
    per_token = decode_flops(model, prompt_tokens // 2) - 2 * head
    return prompt_tokens * per_token + 2 * head * (prompt_tokens if all_logits else min(prompt_tokens, 1))


def lookup_only_bytes(model: torch.nn.Module) -> int:
    """Bytes of embedding tables that a decode step does NOT read: all but one row of each lookup-only table.

    A tied embedding is also the output head, read in full every token, so it is not counted here; an untied
    input embedding (or the fp32 table left beside an int8 head) is only looked up, one row per token.
    """
    linear_ptrs = {m.weight.data_ptr() for m in model.modules() if isinstance(m, torch.nn.Linear)}
    total = 0
    for mod in model.modules():
        if isinstance(mod, torch.nn.Embedding) and mod.weight.data_ptr() not in linear_ptrs:
            w = mod.weight
            total += (w.shape[0] - 1) * w.shape[1] * w.element_size()
    return total


def decode_bytes(model: torch.nn.Module, context: int, *, batch: int = 1, kv_dtype=None) -> int:
    """Bytes read per decode step of ``batch`` rows: every weight once (lookup tables: one row) + each row's KV cache.

    (notebook 08)
    """
    kv_dtype = kv_dtype or next(model.parameters()).dtype
    if not kv_dtype.is_floating_point:
        kv_dtype = torch.float32
    return (weight_bytes(model) - lookup_only_bytes(model)
            + kv_cache_bytes(model.config, context, batch=batch, dtype=kv_dtype))


def decode_bound(bandwidth: float, model: torch.nn.Module, context: int, *, batch: int = 1, kv_dtype=None) -> float:
    """The decode roofline in tokens/s: bandwidth / bytes read per step, times the rows per step (notebook 08)."""
    return batch * bandwidth / decode_bytes(model, context, batch=batch, kv_dtype=kv_dtype)


def prefill_bound(flops_per_s: float, bandwidth: float, model: torch.nn.Module, prompt_tokens: int) -> float:
    """The prefill bound in seconds: the larger of compute time (FLOPs / peak) and memory time (bytes / bandwidth).

    A prompt of T tokens costs :func:`prefill_flops` (about T × a decode step's FLOPs, the output head once) but
    reads the weights only once, so prefill is compute-bound and decode memory-bound (notebook 08).
    """
    flops = prefill_flops(model, prompt_tokens)
    return max(flops / flops_per_s, weight_bytes(model) / bandwidth)


def share_of_bound(tok_s: float, bound_tok_s: float) -> float:
    """The fraction of the roofline a measured speed reaches (1.0 = at the physical limit)."""
    return tok_s / bound_tok_s


@dataclass
class RooflinePoint:
    """One measured configuration on the roofline: FLOPs and bytes per unit of work, and the achieved rate."""

    label: str
    flops: float  # per token (or per step)
    bytes: float  # read + written per token (or per step)
    per_s: float  # tokens (or steps) per second measured

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes

    @property
    def flops_per_s(self) -> float:
        return self.flops * self.per_s

    def share(self, peak_flops: float, bandwidth: float) -> float:
        """Achieved FLOP/s over the roofline at this intensity: min(peak, intensity × bandwidth)."""
        return self.flops_per_s / min(peak_flops, self.intensity * bandwidth)
