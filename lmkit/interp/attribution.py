"""Direct logit attribution: the final residual stream as a sum of parts, each read by the unembedding (notebook 05).

The residual stream at the last layer's output is a plain sum, ``x = embed + Σ_l (attn_l + mlp_l)``, and each
attention block's output splits further into one term per head, because ``o_proj`` is linear:
``attn_l = Σ_h z_h W_O[:, h]ᵀ`` (``z_h`` the head's ``d_k`` outputs, ``W_O[:, h]`` its ``d_k`` columns of
``o_proj``). The final RMSNorm is *not* linear (it divides by the RMS of the whole ``x``), so its scale
``1/sqrt(mean(x²) + eps)`` is frozen at the clean run's value; with it fixed, the logit is linear in ``x`` and
each part's contribution is ``(part · scale ⊙ g) · W_U[answer]``. Elhage et al. (2021), "A Mathematical
Framework for Transformer Circuits"; nostalgebraist (2020) for reading the stream with the unembedding.
"""
from __future__ import annotations

import pandas as pd
import torch

from lmkit import checks
from lmkit.interp.hooks import run_with_cache, token_ids
from lmkit.interp.patching import check_answers
from lmkit.layers import head_dim

__all__ = ["components", "logit_attribution", "plot_attribution"]


def components(lm, text) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """``(names, parts, x_final)`` at the last position: ``parts[i]`` (``[n, d]``, float64) are the embedding, every
    head's share of each attention output (``L{l}H{h}``, plus ``L{l}.attn_bias`` if ``o_proj`` has a bias) and
    every MLP output (``L{l}.mlp``); they sum to ``x_final``, the stream entering the final norm (notebook 05)."""
    cfg = lm.model.config
    n_layers, n_heads, d_k = cfg.num_hidden_layers, cfg.num_attention_heads, head_dim(cfg)
    points = [("embed", 0), ("final", 0)] + [(p, l) for l in range(n_layers) for p in ("z", "mlp")]
    _, cache = run_with_cache(lm, token_ids(lm, text), points)
    names, parts = ["embedding"], [cache[("embed", 0)][0, -1].double()]
    for layer, block in enumerate(lm.model.model.layers):
        w_o = block.self_attn.o_proj.weight.detach().double().cpu()          # [d, H·d_k]
        z = cache[("z", layer)][0, -1].double()                               # [H·d_k]
        for h in range(n_heads):
            cols = slice(h * d_k, (h + 1) * d_k)
            names.append(f"L{layer}H{h}")
            parts.append(w_o[:, cols] @ z[cols])
        if block.self_attn.o_proj.bias is not None:
            names.append(f"L{layer}.attn_bias")
            parts.append(block.self_attn.o_proj.bias.detach().double().cpu())
        names.append(f"L{layer}.mlp")
        parts.append(cache[("mlp", layer)][0, -1].double())
    return names, torch.stack(parts), cache[("final", 0)][0, -1].double()


def logit_attribution(lm, text, answer, foil=None) -> pd.Series:
    """Each component's direct contribution to the logit of ``answer`` (minus that of ``foil``) at the last position.

    Index: ``embedding``, each attention head ``L{l}H{h}`` (layer, head) and each MLP ``L{l}.mlp``, in the order
    of the forward pass. The values (float64, logits) sum to the model's own logit (or logit difference
    ``answer − foil``) to about 1e-5 in float32. The final RMSNorm's scale is **frozen at the clean run's value**
    (the run of ``text`` itself), which makes the readout linear; the model's ``g`` (the norm's weight) and the
    unembedding ``W_U`` are applied as they are. A head's part is its ``d_k`` outputs times its own columns of
    ``o_proj`` (the per-head split of ``o_proj``). "Direct" means through the residual stream straight to the
    logits: what a head does by changing later layers' inputs is not counted here (patching measures that).
    ``answer``/``foil``: one-token strings or ids, not the same token (a one-line ValueError otherwise) (notebook 05).
    """
    a, f = check_answers(lm, answer, foil)
    names, parts, x = components(lm, text)
    norm = lm.model.model.norm
    eps = getattr(norm, "variance_epsilon", None) or getattr(norm, "eps", None) or lm.model.config.rms_norm_eps
    scale = torch.rsqrt(x.pow(2).mean() + eps)                                  # frozen: the clean run's
    w_u = lm.model.get_output_embeddings().weight.detach()
    direction = w_u[a].double().cpu() - (0 if f is None else w_u[f].double().cpu())
    readout = norm.weight.detach().double().cpu() * scale * direction          # [d]: part -> logit
    values = parts @ readout
    label = "logit" if f is None else "logit difference"
    return pd.Series(values.numpy(), index=names, name=label)


def plot_attribution(series: pd.Series, n_layers: int, n_heads: int, ax=None, title: str | None = None):
    """Heads as a ``layers × heads`` heatmap beside the MLPs (and embedding) per layer, one colour scale (notebook 05)."""
    import matplotlib.pyplot as plt
    import numpy as np

    n_layers = checks.integer("n_layers", n_layers, low=1, fix="pass the model's num_hidden_layers")
    n_heads = checks.integer("n_heads", n_heads, low=1, fix="pass the model's num_attention_heads")
    if not isinstance(series, pd.Series):
        checks.fail(f"series={checks.show(series)} is not a pandas Series: pass logit_attribution(...)'s result")
    missing = [k for k in [f"L{l}H{h}" for l in range(n_layers) for h in range(n_heads)]
               + [f"L{l}.mlp" for l in range(n_layers)] + ["embedding"] if k not in series.index]
    if missing:
        checks.fail(f"series has no {missing[0]!r} (n_layers={n_layers}, n_heads={n_heads}): pass the model's "
                    "num_hidden_layers and num_attention_heads and logit_attribution(...)'s result")
    heads = np.array([[series[f"L{l}H{h}"] for h in range(n_heads)] for l in range(n_layers)])
    mlps = np.array([[series[f"L{l}.mlp"]] for l in range(n_layers)])
    grid = np.concatenate([heads, np.full((n_layers, 1), np.nan), mlps], axis=1)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.25 * n_layers + 1.5))
    lim = float(np.nanmax(np.abs(grid))) or 1.0
    im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(list(range(n_heads)) + [n_heads + 1], [f"H{h}" for h in range(n_heads)] + ["MLP"], fontsize=8)
    ax.set_yticks(range(0, n_layers, 2), range(0, n_layers, 2), fontsize=8)
    ax.set_xlabel("attention head (and the layer's MLP)")
    ax.set_ylabel("layer")
    ax.set_title(title or f"direct {series.name} attribution (embedding: {series['embedding']:+.2f})")
    ax.figure.colorbar(im, ax=ax, label=series.name)
    return ax
