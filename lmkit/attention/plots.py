"""Attention drawn with matplotlib: one head, every head, the head view, head statistics, rollout, logit lens.

Each function takes ``ax=None`` and returns the axes (notebook 04).
"""
from __future__ import annotations

import numpy as np
import torch

from lmkit import checks
from lmkit.attention.across_layers import LogitLens
from lmkit.attention.capture import _visible
from lmkit.attention.heads import HEAD_CLASSES

__all__ = ["plot_grid", "plot_head", "plot_head_stats", "plot_head_view", "plot_logit_lens", "plot_rollout"]

def _as_np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def _cmap(name: str = "viridis", bad: str = "#eeeeee"):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad=bad)  # bad: the masked future


def _one_head(weights, tokens, query):
    """``(w, T, query)``: one head's ``[T, T]`` map as an array, checked against ``T`` labels and the query row."""
    w = _as_np(weights)
    t = w.shape[-1]
    if w.shape != (t, t) or len(tokens) != t:
        raise ValueError(f"weights {w.shape} and {len(tokens)} tokens do not match: pass one head [T, T] and T labels")
    if query is not None:
        query = checks.index("query", query, t, negative=False, what=f"the map has {t} tokens")
    return w, t, query


def plot_head(weights, tokens, ax=None, *, title: str | None = None, query: int | None = None,
              cmap: str = "viridis", colorbar: bool = True, gamma: float | None = None):
    """One head's ``[T, T]`` attention map as a heatmap, token labels on both axes (notebook 04).

    Rows are queries (the token attending), columns keys (the token attended to); the masked future is grey.
    ``query`` frames that row. Colours run from 0 to the map's maximum, or, with ``gamma``, from 0 to 1 on a
    power scale (fixed, so maps can be compared, with weak weights still visible).
    """
    from matplotlib.colors import PowerNorm
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    w, t, query = _one_head(weights, tokens, query)
    if gamma is not None:
        gamma = checks.real("gamma", gamma, low=0, low_open=True,
                            fix="pass e.g. gamma=0.5, or None for a linear scale")
    if ax is None:
        size = min(12, max(4, 0.22 * t + 2))
        _, ax = plt.subplots(figsize=(size + 1, size))
    shown = np.where(np.triu(np.ones((t, t), bool), 1), np.nan, w)
    norm = PowerNorm(gamma, vmin=0, vmax=1) if gamma else None
    im = ax.imshow(shown, cmap=_cmap(cmap), norm=norm, interpolation="nearest",
                   **({} if gamma else {"vmin": 0, "vmax": max(float(np.nanmax(shown)), 1e-9)}))
    fs = 9 if t <= 24 else 7 if t <= 48 else 5
    ax.set_xticks(range(t), tokens, rotation=90, fontsize=fs)
    ax.set_yticks(range(t), tokens, fontsize=fs)
    ax.set_xlabel("key: the token attended to")
    ax.set_ylabel("query: the token attending")
    ax.set_title(title or "attention probabilities")
    if query is not None:
        ax.add_patch(Rectangle((-0.5, query - 0.5), query + 1, 1, fill=False, edgecolor="red", linewidth=2))
    if colorbar:
        label = f"probability (power scale, γ={gamma})" if gamma else "probability"
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    return ax


def plot_grid(att: torch.Tensor, ax=None, *, title: str | None = None, gamma: float = 0.5):
    """Every head of every layer as a small map in one mosaic: columns are layers, rows heads (notebook 04).

    Colours use a power scale (``gamma``) so that weak patterns stay visible next to the strong first-token sink.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import PowerNorm

    gamma = checks.real("gamma", gamma, low=0, low_open=True, fix="pass e.g. gamma=0.5")
    a = _as_np(att)
    if a.ndim != 4:
        raise ValueError(f"att has shape {a.shape}: pass [layers, heads, T, T] as from attentions()")
    n_layers, n_heads, t, _ = a.shape
    cell = t + 1
    mosaic = np.full((n_heads * cell - 1, n_layers * cell - 1), np.nan)
    future = np.triu(np.ones((t, t), bool), 1)
    for layer in range(n_layers):
        for head in range(n_heads):
            mosaic[head * cell:head * cell + t, layer * cell:layer * cell + t] = np.where(future, np.nan,
                                                                                        a[layer, head])
    if ax is None:
        _, ax = plt.subplots(figsize=(min(18, 0.5 * n_layers + 1.5), min(10, 0.5 * n_heads + 1.2)))
    cmap = _cmap("viridis", bad="white")
    im = ax.imshow(mosaic, cmap=cmap, norm=PowerNorm(gamma, vmin=0, vmax=1), interpolation="nearest")
    ax.set_xticks([l * cell + t / 2 - 0.5 for l in range(n_layers)], range(n_layers), fontsize=7)
    ax.set_yticks([h * cell + t / 2 - 0.5 for h in range(n_heads)], range(n_heads), fontsize=8)
    ax.set_xlabel("layer")
    ax.set_ylabel("head")
    ax.set_title(title or f"attention of every head ({t} tokens; each cell a [query × key] map)")
    ax.figure.colorbar(im, ax=ax, fraction=0.02, pad=0.01, label=f"probability (power scale, γ={gamma})")
    return ax


def plot_head_view(weights, tokens, ax=None, *, query: int | None = None, min_weight: float = 0.02,
                   title: str | None = None, color: str = "#1f77b4"):
    """A "head view": each token on the left joined to the tokens it attends to on the right (notebook 04).

    Line width and opacity follow the probability; weights below ``min_weight`` are not drawn. With ``query``,
    only that token's lines are drawn and its targets are labelled with their weight.
    """
    import matplotlib.pyplot as plt

    w, t, query = _one_head(weights, tokens, query)
    min_weight = checks.probability("min_weight", min_weight, fix="the least weight drawn, e.g. 0.02")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, max(3, 0.28 * t + 1)))
    fs = 9 if t <= 24 else 7 if t <= 48 else 5
    queries = range(t) if query is None else [query]
    segments, colours, widths = [], [], []
    for i in queries:
        for j in range(i + 1):
            p = float(w[i, j])
            if p >= min_weight:
                segments.append([(0.0, i), (1.0, j)])
                colours.append((*__import__("matplotlib").colors.to_rgb(color), min(1.0, 0.15 + 0.85 * p)))
                widths.append(0.5 + 4 * p)
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths))
    for i, tok in enumerate(tokens):
        bold = "bold" if i == query else "normal"
        ax.text(-0.02, i, tok, ha="right", va="center", fontsize=fs, fontweight=bold,
                color="red" if i == query else "black")
        label = tok if query is None or w[query, i] < min_weight or i > query else f"{tok}  {w[query, i]:.2f}"
        ax.text(1.02, i, label, ha="left", va="center", fontsize=fs)
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(t - 0.5, -0.5)
    ax.set_xticks([0, 1], ["query (attending)", "key (attended to)"])
    ax.set_yticks([])
    ax.set_ylabel("position")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "head view")
    return ax


def plot_head_stats(stats, ax=None, *, title: str | None = None):
    """Layers × heads heatmap of the normalised entropy, each cell marked with its class letter (notebook 04).

    P previous-token, F first-token (sink), D diagonal, B broad, · mixed.
    """
    import matplotlib.pyplot as plt

    n_layers, n_heads = stats["layer"].max() + 1, stats["head"].max() + 1
    grid = np.zeros((n_heads, n_layers))
    letters = {"previous-token": "P", "first-token": "F", "diagonal": "D", "broad": "B", "mixed": "·"}
    if ax is None:
        _, ax = plt.subplots(figsize=(min(18, 0.45 * n_layers + 2), 0.45 * n_heads + 1.5))
    for row in stats.itertuples():
        grid[row.head, row.layer] = row.norm_entropy
    im = ax.imshow(grid, cmap="magma", vmin=0, vmax=1, aspect="auto")
    for row in stats.itertuples():
        ax.text(row.layer, row.head, letters[row.kind], ha="center", va="center", fontsize=8,
                color="white" if row.norm_entropy < 0.6 else "black")
    ax.set_xticks(range(n_layers), range(n_layers), fontsize=7)
    ax.set_yticks(range(n_heads), range(n_heads))
    ax.set_xlabel("layer")
    ax.set_ylabel("head")
    counts = stats["kind"].value_counts()
    ax.set_title(title or "head entropy (1 = uniform) and pattern: " + ", ".join(
        f"{letters[k]} {k} {counts.get(k, 0)}" for k in HEAD_CLASSES))
    ax.figure.colorbar(im, ax=ax, fraction=0.02, pad=0.01, label="entropy / log2(visible tokens)")
    return ax


def plot_rollout(roll: torch.Tensor, tokens, ax=None, *, query: int = -1, title: str | None = None):
    """How much each input token reaches position ``query`` after each layer, per :func:`rollout` (notebook 04)."""
    import matplotlib.pyplot as plt

    r = _as_np(roll)
    n_layers, t, _ = r.shape
    q = checks.index("query", query, t, what=f"the text has {t} tokens")
    if ax is None:
        _, ax = plt.subplots(figsize=(min(14, 0.45 * t + 3), 6))
    im = ax.imshow(r[:, q, :q + 1], cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(q + 1), tokens[:q + 1], rotation=90, fontsize=8)
    ax.set_yticks(range(0, n_layers, 2), range(0, n_layers, 2), fontsize=8)
    ax.set_xlabel("input token")
    ax.set_ylabel("after layer")
    ax.set_title(title or f"attention rollout into {tokens[q]!r} (position {q})")
    ax.figure.colorbar(im, ax=ax, label="rolled-out share")
    return ax


def plot_logit_lens(lens: LogitLens, ax=None, *, rows=None, title: str | None = None):
    """The logit lens as a heatmap: top guess (text) and its probability (colour) by layer and position (notebook 04)."""
    import matplotlib.pyplot as plt

    rows = list(range(len(lens.row_labels))) if rows is None else list(rows)
    p = lens.top_probs[rows].numpy()
    t = p.shape[1]
    if ax is None:
        _, ax = plt.subplots(figsize=(min(18, 1.3 * t + 2), 0.32 * len(rows) + 1.5))
    im = ax.imshow(p, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for r, row in enumerate(rows):
        for c in range(t):
            ax.text(c, r, _visible(lens.top_tokens[row][c])[:10], ha="center", va="center",
                    fontsize=7, color="white" if p[r, c] > 0.6 else "black")
    ax.set_xticks(range(t), [f"{tok}\n→" for tok in lens.tokens], fontsize=8)
    ax.set_yticks(range(len(rows)), [lens.row_labels[r] for r in rows], fontsize=7)
    ax.set_xlabel("position (the token read; each cell guesses the next one)")
    ax.set_ylabel("residual stream after layer")
    ax.set_title(title or "logit lens: top next-token guess by layer")
    ax.figure.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="probability of the top guess")
    return ax
