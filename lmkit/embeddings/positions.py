"""Positional encodings: the Transformer's sinusoids and the rotary embedding (RoPE) that Llama uses (notebook 02).

The formulas live in :mod:`lmkit.layers` (one implementation for the whole package) and are re-exported here,
where notebook 02 teaches them; this module adds the plot.
"""
from __future__ import annotations

import torch

from lmkit.layers import apply_rope, rope_base, rope_cos_sin, rope_frequencies, sinusoidal_encoding

__all__ = ["apply_rope", "plot_positional", "rope_base", "rope_cos_sin", "rope_frequencies", "sinusoidal_encoding"]


def plot_positional(pe: torch.Tensor, ax=None, title: str = "sinusoidal positional encoding"):
    """Heatmap of a positional encoding: positions down, dimensions across (notebook 02)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    im = ax.imshow(torch.as_tensor(pe).float().cpu().numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1,
                   interpolation="nearest")
    ax.set_xlabel("dimension")
    ax.set_ylabel("position")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax
