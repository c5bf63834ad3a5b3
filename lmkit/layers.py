"""The transformer's small building blocks, each written once from its formula.

Every lmkit module that needs one of these imports it from here: the attention recomputation (notebook 04), the
positional encodings of notebook 02, the hand-written decoder of notebook 08 and the models built in cells
(notebooks 10 and 11).

- :func:`head_dim`: the width of one attention head of a transformers config;
- :func:`rms_norm`: RMSNorm (Zhang & Sennrich, 2019), as Llama applies it;
- :func:`rope_base`, :func:`rope_frequencies`, :func:`rope_cos_sin`, :func:`apply_rotary`, :func:`apply_rope`:
  the rotary position embedding (Su et al., 2021, RoFormer) in transformers' rotate-half layout;
- :func:`sinusoidal_encoding`: the fixed positional encoding of the Transformer (Vaswani et al., 2017).
"""
from __future__ import annotations

import torch

from lmkit import checks

__all__ = ["head_dim", "rms_norm", "rope_base", "rope_frequencies", "rope_cos_sin", "apply_rotary", "apply_rope",
           "sinusoidal_encoding"]


def head_dim(config) -> int:
    """The size ``d_k`` of one attention head: ``config.head_dim`` when set, else ``hidden_size // heads``.

    transformers configs of Llama-family models carry ``head_dim``; older or other configs leave it out (or None),
    and then the hidden size is split evenly over the query heads (notebooks 04 and 08).
    """
    value = getattr(config, "head_dim", None)
    if value:
        return int(value)
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    if not heads or not hidden:
        raise ValueError(f"{type(config).__name__} has no head_dim and no hidden_size/num_attention_heads: "
                         "pass a transformers decoder config")
    return int(hidden) // int(heads)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last axis: ``x / sqrt(mean(x²) + eps) * weight``, shapes ``[..., d]`` and ``[d]``.

    Zhang & Sennrich (2019), "Root Mean Square Layer Normalization": no mean subtraction and no bias, only a
    learned gain. As in transformers' ``LlamaRMSNorm``, the statistic is taken in float32 and the normalised
    vector is cast back to ``x``'s dtype before the gain, so half-precision inputs match the model's own layer
    (notebook 04 writes it in a cell; notebook 08's decoder uses it).
    """
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * weight


def rope_base(config) -> float:
    """The RoPE base ``θ`` (``rope_theta``) of a transformers config, old style or new (notebooks 02 and 04).

    Only the original RoPE (``rope_type="default"``) is written by hand here: a scaled type (``"llama3"``,
    ``"yarn"``, …) raises ``ValueError``, since its frequencies are not ``θ^(-2i/d)``.
    """
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    kind = params.get("rope_type", params.get("type", "default"))
    if kind != "default":
        raise ValueError(f"rope_type {kind!r}: lmkit's hand-written RoPE covers only the 'default' type "
                         "(read the model's own rotary_emb.inv_freq for scaled types)")
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def rope_frequencies(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """``ω_i = base^(-2i/d)`` for ``i = 0 .. d/2 - 1``, float64 ``[d/2]``: each pair turns at its own speed.

    Su et al. (2021), "RoFormer: Enhanced Transformer with Rotary Position Embedding", eq. 15 (notebook 02).
    """
    head_dim = checks.integer("head_dim", head_dim, low=2, multiple_of=2, must="an even head dimension (an int >= 2)",
                              fix="RoPE turns the dimensions in pairs")
    base = checks.real("base", base, low=0.0, low_open=True, fix="pass the model's rope_theta, e.g. 10000.0")
    return 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)


def rope_cos_sin(positions, head_dim: int | None = None, base: float = 10000.0, *,
                 frequencies: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos(p·ω)`` and ``sin(p·ω)`` for each position ``p``, laid out as transformers does: ``[T, head_dim]`` each.

    Llama pairs dimension ``i`` with ``i + d/2`` (not ``2i`` with ``2i+1``), so the ``d/2`` angles are repeated
    twice. The frequencies are :func:`rope_frequencies` of ``head_dim`` and ``base`` (angles in float64), or
    ``frequencies`` when given, e.g. a model's own ``rotary_emb.inv_freq`` (angles in its dtype, as the model
    computes them), which also covers scaled RoPE types. Float32 out (notebooks 02 and 08).
    """
    if frequencies is None:
        if head_dim is None:
            raise ValueError("rope_cos_sin needs head_dim (or frequencies=): pass e.g. head_dim=64")
        frequencies = rope_frequencies(head_dim, base)
    freq = torch.as_tensor(frequencies).flatten()
    pos = torch.as_tensor(positions).reshape(-1, 1).to(device=freq.device, dtype=freq.dtype)
    angles = pos * freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair ``(x_i, x_{i+d/2})`` of ``x[..., T, d]`` by the angles whose ``cos``/``sin`` are given.

    ``cos`` and ``sin`` are ``[T, d]`` tables from :func:`rope_cos_sin` (or a model's). Each pair goes through the
    2×2 rotation ``[[cos, -sin], [sin, cos]]``; written as ``x·cos + rotate_half(x)·sin`` with
    ``rotate_half(x) = (-x₂, x₁)``, it is transformers' ``apply_rotary_pos_emb`` (Su et al., 2021; notebooks 02,
    03 and 05).
    """
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x) + rotated * sin.to(x)


def apply_rope(x: torch.Tensor, positions=None, base: float = 10000.0) -> torch.Tensor:
    """The rotary position embedding of ``x[..., T, head_dim]`` at ``positions`` (default ``0 .. T-1``).

    Rotates each pair ``(x_i, x_{i+d/2})`` by the angle ``p·base^(-2i/d)`` of its position ``p``, so that the dot
    product of a rotated query and key depends only on their distance. Su et al. (2021), RoFormer; the layout is
    transformers' rotate-half convention. Written out in cells in notebook 02, used by notebook 04's recomputation.
    """
    if positions is None:
        positions = torch.arange(x.shape[-2])
    cos, sin = rope_cos_sin(positions, x.shape[-1], base)
    return apply_rotary(x, cos, sin)


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The Transformer's fixed positional encoding, float32 ``[n_positions, d_model]``:

    ``PE(pos, 2i) = sin(pos / base^(2i/d))`` and ``PE(pos, 2i+1) = cos(pos / base^(2i/d))`` (Vaswani et al.,
    2017, "Attention Is All You Need", section 3.5). Computed in float64. Taught in notebook 02; the tiny GPT of
    notebook 10 adds it to its token embeddings.
    """
    n_positions = checks.integer("n_positions", n_positions, low=1, fix="ask for at least one position")
    d_model = checks.integer("d_model", d_model, low=2, multiple_of=2, must="an even integer >= 2",
                             fix="sin and cos fill the dimensions in pairs")
    base = checks.real("base", base, low=0.0, low_open=True, fix="pass e.g. 10000.0 (the paper's)")
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / base ** (two_i / d_model)
    pe = torch.empty(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()
