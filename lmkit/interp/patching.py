"""Activation patching: run the corrupted prompt, paste in one activation from the clean run, measure (notebook 11).

Meng et al. (2022), "Locating and Editing Factual Associations in GPT" (causal tracing), and Wang et al. (2023),
"Interpretability in the Wild" (the logit difference as metric, and patching single heads). The metric is the logit
difference ``logit[answer] - logit[foil]`` at the last position, normalised so that 0 is the corrupted run and 1 the
clean one: a component whose clean value alone restores the answer scores near 1.
"""
from __future__ import annotations

import torch

from lmkit import checks
from lmkit.interp.hooks import answer_id, check_layer, run, run_with_cache, token_ids
from lmkit.layers import head_dim

__all__ = ["WHERE", "layer_list", "check_pair", "logit_diff", "normalise", "replace_positions", "replace_heads", "patch",
           "plot_patching"]

WHERE = ("resid", "attn", "mlp", "head")


def layer_list(lm, layers=None) -> list[int]:
    """``layers`` (an iterable of layer indices, default all) checked and made non-negative."""
    n = lm.model.config.num_hidden_layers
    return list(range(n)) if layers is None else [check_layer(lm, l) for l in layers]


def check_pair(lm, clean, corrupt) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``[1, T]`` ids of both prompts, which must have the same number of tokens (a one-line ValueError if not)."""
    a, b = token_ids(lm, clean), token_ids(lm, corrupt)
    if a.shape != b.shape:
        raise ValueError(f"clean prompt has {a.shape[1]} tokens and corrupt prompt {b.shape[1]}: patching pairs "
                         f"positions, so reword one (e.g. swap in a subject of the same token length) until both "
                         f"have the same count")
    return a, b


def logit_diff(lm, text, answer, foil=None, *, edits: dict | None = None) -> float:
    """``logit[answer] - logit[foil]`` at the last position (``foil=None``: the answer's logit alone), with ``edits``
    (``{(point, layer): fn}``, see :mod:`lmkit.interp.hooks`) applied during the pass (notebook 11)."""
    ids = token_ids(lm, text)
    a = answer_id(lm, answer)
    f = None if foil is None else answer_id(lm, foil)
    last = run(lm, ids, edits)[0, -1]
    return (last[a] - (0 if f is None else last[f])).item()


def normalise(metric, corrupted: float, clean: float):
    """``(metric - corrupted) / (clean - corrupted)``: 0 at the corrupted run, 1 at the clean one."""
    return (metric - corrupted) / (clean - corrupted)


def replace_positions(source: torch.Tensor, rows_positions) -> callable:
    """An edit that writes ``source[p]`` (``[T, ...]``, from the clean run) into row ``r`` at each position ``p``
    for every ``(r, positions)`` in ``rows_positions``; everything else is left as computed."""
    def edit(x):
        x = x.clone()
        src = source.to(x)
        for r, positions in rows_positions:
            x[r, positions] = src[positions]
        return x
    return edit


def replace_heads(source: torch.Tensor, rows_heads, d_k: int) -> callable:
    """An edit of the heads' outputs before ``o_proj`` (``[B, T, H·d_k]``) that writes head ``h``'s slice of
    ``source`` (``[T, H·d_k]``) into row ``r`` at every position, for each ``(r, h)`` in ``rows_heads``."""
    d_k = checks.integer("d_k", d_k, low=1, fix="the width of one head, lmkit.layers.head_dim(config)")
    def edit(x):
        x = x.clone()
        src = source.to(x)
        for r, h in rows_heads:
            x[r, :, h * d_k:(h + 1) * d_k] = src[:, h * d_k:(h + 1) * d_k]
        return x
    return edit


def patch(lm, clean, corrupt, answer, foil, where: str = "resid", *, per_position: bool = True,
          layers=None) -> torch.Tensor:
    """The normalised logit difference after patching each component from the clean run into the corrupted one.

    - ``where="resid"``: the residual stream at the **output** of each layer (what the next layer reads), one
      position at a time: ``[layers, positions]``. Row ``L-1`` at the last position is everything the unembedding
      reads, so it is exactly 1.
    - ``where="attn"`` / ``"mlp"``: that block's output (before it is added to the stream), per layer and
      position: ``[layers, positions]``; with ``per_position=False``, all positions at once: ``[layers]``.
    - ``where="head"``: one attention head's output (its slice of the input of ``o_proj``, so the per-head split
      of ``o_proj``) at every position: ``[layers, heads]``.

    ``layers`` (default all) picks the rows to compute, in that order (a quick look at a few layers).
    0 means the patch changed nothing, 1 that it restored the clean logit difference. Each layer is one batched
    forward pass (one row per position or head). Errors (prompts of different lengths, an answer that is not one
    token, an unknown ``where``, clean and corrupted runs that agree) are one-line ValueErrors raised before the
    patched runs (notebook 11).
    """
    checks.one_of("where", where, WHERE)
    checks.boolean("per_position", per_position)
    ids_clean, ids_corrupt = check_pair(lm, clean, corrupt)
    a, f = answer_id(lm, answer), answer_id(lm, foil)
    if a == f:
        raise ValueError(f"answer={answer!r} and foil={foil!r} are the same token: pass two different answers")
    point = {"resid": "resid", "attn": "attn", "mlp": "mlp", "head": "z"}[where]
    cfg = lm.model.config
    layers = layer_list(lm, layers)
    t = ids_clean.shape[1]
    clean_logits, cache = run_with_cache(lm, ids_clean, [(point, l) for l in layers])
    m_clean = (clean_logits[0, -1, a] - clean_logits[0, -1, f]).item()
    m_corrupt = logit_diff(lm, ids_corrupt, a, f)
    if abs(m_clean - m_corrupt) < 1e-6:
        raise ValueError(f"clean and corrupt prompts give the same logit difference ({m_clean:.4g}): pick prompts "
                         "that the model answers differently")
    rows = []
    for layer in layers:
        source = cache[(point, layer)][0]
        if where == "head":
            n_rows = cfg.num_attention_heads
            edit = replace_heads(source, [(h, h) for h in range(n_rows)], head_dim(cfg))
        elif per_position:
            n_rows = t
            edit = replace_positions(source, [(p, [p]) for p in range(t)])
        else:
            n_rows = 1
            edit = replace_positions(source, [(0, list(range(t)))])
        logits = run(lm, ids_corrupt.expand(n_rows, -1), {(point, layer): edit})[:, -1]
        rows.append(normalise((logits[:, a] - logits[:, f]).cpu(), m_corrupt, m_clean))
    out = torch.stack(rows)
    return out[:, 0] if (where != "head" and not per_position) else out


def plot_patching(result: torch.Tensor, rows, columns, ax=None, *, title: str = "activation patching",
                  xlabel: str = "position", ylabel: str = "layer"):
    """A patching result as a heatmap, 0 (white) to 1 (the clean run), with its row and column labels (notebook 11)."""
    import matplotlib.pyplot as plt

    r = result.detach().float().cpu().numpy()
    if ax is None:
        _, ax = plt.subplots(figsize=(min(12, 0.7 * r.shape[1] + 3), min(9, 0.22 * r.shape[0] + 1.8)))
    lim = max(1.0, float(abs(r).max()))
    im = ax.imshow(r, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(r.shape[1]), list(columns), rotation=60 if r.shape[1] > 4 else 0, fontsize=8)
    step = 1 if r.shape[0] <= 12 else 2
    ax.set_yticks(range(0, r.shape[0], step), list(rows)[::step], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label="normalised logit difference (0 corrupted, 1 clean)")
    return ax
