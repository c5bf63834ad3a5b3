"""Attention recomputed from the formula and the layer's weights alone, and checked against the model (notebook 04).

:func:`attention_steps` applies one layer's attention block by hand (RMSNorm, projections, RoPE, grouped-query
sharing, causal mask, ``softmax(QKᵀ/√d_k)``, values, output projection), :func:`recompute` returns its
probabilities for a text, and :func:`verify` compares every layer with the model. The building blocks (RMSNorm,
RoPE, ``head_dim``) come from :mod:`lmkit.layers`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lmkit import checks
from lmkit.attention.capture import _layers, check_layer, trace
from lmkit.layers import apply_rope, head_dim, rms_norm, rope_base

__all__ = ["Steps", "attention_steps", "recompute", "rms_norm", "rope", "verify"]

@dataclass
class Steps:
    """Every intermediate tensor of one attention block, recomputed by hand (notebook 04).

    Shapes for ``T`` tokens, ``H`` query heads, ``G`` key/value heads, head size ``d_k``, model width ``d``.
    """

    x: torch.Tensor          # [T, d]       the layer's input (the residual stream)
    x_norm: torch.Tensor     # [T, d]       after the input RMSNorm
    q: torch.Tensor          # [H, T, d_k]  queries X·W_Q, split into heads, before RoPE
    k: torch.Tensor          # [G, T, d_k]  keys X·W_K
    v: torch.Tensor          # [G, T, d_k]  values X·W_V
    q_rot: torch.Tensor      # [H, T, d_k]  queries after RoPE
    k_rot: torch.Tensor      # [G, T, d_k]  keys after RoPE
    scores: torch.Tensor     # [H, T, T]    QKᵀ/√d_k with -inf above the diagonal
    probs: torch.Tensor      # [H, T, T]    softmax over the keys
    context: torch.Tensor    # [H, T, d_k]  probs · V for each head
    output: torch.Tensor     # [T, d]       concat(heads) · W_O, the block's output (added to the residual)


def rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary position embedding of ``x[..., T, d_k]`` at positions 0..T-1: :func:`lmkit.layers.apply_rope`.

    Dimension ``i`` (``i < d_k/2``) and ``i + d_k/2`` form a pair rotated by the angle ``pos · theta^(-2i/d_k)``
    (Su et al., 2021). :func:`attention_steps` calls it through this name, so a test can swap it out (notebook 04).
    """
    return apply_rope(x, None, theta)


def attention_steps(lm, hidden: torch.Tensor, layer: int) -> Steps:
    """Layer ``layer``'s attention block applied by hand to its input ``hidden`` (``[T, d]`` or ``[1, T, d]``).

    Only the layer's weights and the config are read: RMSNorm, Q/K/V projections, RoPE, grouped-query sharing,
    causal mask, scaling by 1/√d_k, softmax, the weighted sum of values and the output projection (notebook 04).
    """
    layer = check_layer(lm, layer)
    cfg = lm.model.config
    theta = rope_base(cfg)  # refuses scaled RoPE types, which this formula does not cover
    block = _layers(lm.model)[layer]
    attn = block.self_attn
    n_heads, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    d_k = head_dim(cfg)
    f32 = dict(dtype=torch.float32, device="cpu")
    with torch.inference_mode():
        x = hidden.reshape(-1, hidden.shape[-1]).to(**f32)
        t = x.shape[0]
        x_norm = rms_norm(x, block.input_layernorm.weight.to(**f32), cfg.rms_norm_eps)

        def project(linear, heads):  # [T, d] -> [heads, T, d_k]
            y = x_norm @ linear.weight.to(**f32).T
            if linear.bias is not None:
                y = y + linear.bias.to(**f32)
            return y.view(t, heads, d_k).transpose(0, 1)

        q, k, v = project(attn.q_proj, n_heads), project(attn.k_proj, n_kv), project(attn.v_proj, n_kv)
        q_rot, k_rot = rope(q, theta), rope(k, theta)
        group = n_heads // n_kv                      # query heads 0..group-1 share KV head 0, and so on
        k_shared, v_shared = k_rot.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
        scores = q_rot @ k_shared.transpose(-1, -2) / math.sqrt(d_k)
        future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
        probs = scores.softmax(-1)
        context = probs @ v_shared
        output = context.transpose(0, 1).reshape(t, n_heads * d_k) @ attn.o_proj.weight.to(**f32).T
        if attn.o_proj.bias is not None:
            output = output + attn.o_proj.bias.to(**f32)
    return Steps(x, x_norm, q, k, v, q_rot, k_rot, scores, probs, context, output)



def recompute(lm, text: str, layer: int) -> torch.Tensor:
    """Layer ``layer``'s attention probabilities ``[heads, T, T]``, rebuilt from its input and weights (notebook 04).

    The model runs once only to record the layer's *input* hidden states; the probabilities are then computed by
    :func:`attention_steps`, never read from the model. :func:`verify` compares them with the model's own.
    """
    layer = check_layer(lm, layer)
    return attention_steps(lm, trace(lm, text).inputs[layer], layer).probs


def verify(lm, text: str, *, atol: float = 1e-5, rtol: float = 1e-4):
    """Recompute every layer and compare with the model: a DataFrame of max differences, one row a layer.

    Columns: ``probs_max_abs_diff``, ``output_max_abs_diff``, ``output_max_abs`` (the scale of the block output)
    and ``equal`` (both ``torch.allclose`` at ``atol``/``rtol``) (notebook 04).
    """
    import pandas as pd

    atol = checks.real("atol", atol, low=0, fix="the absolute tolerance, such as 1e-5")
    rtol = checks.real("rtol", rtol, low=0, fix="the relative tolerance, such as 1e-4")
    tr = trace(lm, text)
    rows = []
    for layer in range(len(tr.inputs)):
        s = attention_steps(lm, tr.inputs[layer], layer)
        own_p, own_o = tr.attentions[layer], tr.block_outputs[layer]
        rows.append({"layer": layer,
                     "probs_max_abs_diff": (s.probs - own_p).abs().max().item(),
                     "output_max_abs_diff": (s.output - own_o).abs().max().item(),
                     "output_max_abs": own_o.abs().max().item(),
                     "equal": bool(torch.allclose(s.probs, own_p, atol=atol, rtol=rtol)
                                   and torch.allclose(s.output, own_o, atol=atol, rtol=rtol))})
    return pd.DataFrame(rows).set_index("layer")
