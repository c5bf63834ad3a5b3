"""What a loaded model is made of: parameters by component, and their bar chart (notebook 00)."""
from __future__ import annotations


import torch

from lmkit.models.lm import LM


# Matched in this order against each dotted part of a parameter name (norms first: "post_attention_layernorm").
_COMPONENTS = (("embedding", ("embed_tokens", "wte", "wpe", "embeddings", "lm_head")),
               ("norms", ("norm", "ln_")),
               ("attention", ("attn", "attention")),
               ("MLP", ("mlp", "feed_forward", "ffn")))


def parameter_breakdown(model: torch.nn.Module) -> dict[str, int]:
    """Parameters by component (embedding, attention, MLP, norms, other), tied weights counted once (notebook 00)."""
    counts = {name: 0 for name in ("embedding", "attention", "MLP", "norms", "other")}
    for pname, param in model.named_parameters():  # named_parameters() already skips tied duplicates
        parts = pname.split(".")
        kind = next((name for name, keys in _COMPONENTS if any(k in p for p in parts for k in keys)), "other")
        counts[kind] += param.numel()
    return counts


def plot_parameters(lm: LM, ax=None):
    """Bar chart of :func:`parameter_breakdown`, in millions, with each component's share (notebook 00)."""
    import matplotlib.pyplot as plt

    counts = {k: v for k, v in parameter_breakdown(lm.model).items() if v}
    total = sum(counts.values())
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    bars = ax.barh(list(counts), [v / 1e6 for v in counts.values()], color="#4C72B0")
    for bar, v in zip(bars, counts.values()):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v / 1e6:.1f}M ({v / total:.0%})",
                va="center")
    ax.invert_yaxis()
    ax.set_xlabel("parameters (millions)")
    ax.set_title(f"{lm.name}: {total / 1e6:.1f}M parameters by component")
    ax.set_xlim(0, max(counts.values()) / 1e6 * 1.35)
    return ax
