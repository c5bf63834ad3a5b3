"""Activation patching: run the corrupted prompt, paste in one activation from the clean run, measure (notebook 05).

Meng et al. (2022), "Locating and Editing Factual Associations in GPT" (causal tracing), and Wang et al. (2023),
"Interpretability in the Wild" (the logit difference as metric, and patching single heads). The metric is the logit
difference ``logit[answer] - logit[foil]`` at the last position, normalised so that 0 is the corrupted run and 1 the
clean one: a component whose clean value alone restores the answer scores near 1.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from lmkit import checks
from lmkit.interp.hooks import answer_id, check_layer, run, run_with_cache, token_ids
from lmkit.layers import head_dim

__all__ = ["WHERE", "layer_list", "check_pair", "check_answers", "check_patch", "check_effect", "PatchSetup",
           "logit_diff", "normalise", "replace_positions", "replace_heads", "patch", "plot_patching"]

WHERE = ("resid", "attn", "mlp", "head")


def layer_list(lm, layers=None) -> list[int]:
    """``layers`` (a list of layer indices, default all) checked and made non-negative; an empty list, a single
    number or a string is a one-line ValueError."""
    n = lm.model.config.num_hidden_layers
    if layers is None:
        return list(range(n))
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        checks.fail(f"layers={checks.show(layers)} is not a list of layer indices: pass e.g. layers=[0, 1], or "
                    f"layers=None for all {n}")
    layers = [check_layer(lm, l) for l in layers]
    if not layers:
        checks.fail(f"layers={checks.show(layers)} is empty: pass at least one layer index, or layers=None for all {n}")
    return layers


def check_pair(lm, clean, corrupt) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``[1, T]`` ids of both prompts, which must have the same number of tokens and differ somewhere (a
    one-line ValueError if not)."""
    a, b = token_ids(lm, clean, "clean"), token_ids(lm, corrupt, "corrupt")
    if a.shape != b.shape:
        raise ValueError(f"clean prompt has {a.shape[1]} tokens and corrupt prompt {b.shape[1]}: patching pairs "
                         f"positions, so reword one (e.g. swap in a subject of the same token length) until both "
                         f"have the same count")
    if torch.equal(a, b):
        checks.fail(f"clean and corrupt prompts are the same {a.shape[1]} tokens: patching compares two runs, so "
                    "change the corrupt prompt (e.g. swap the subject)")
    return a, b


def check_answers(lm, answer, foil) -> tuple[int, int | None]:
    """The ids of ``answer`` and ``foil`` (``foil=None`` stays None), each one token and not the same token (a
    logit difference of a token with itself is 0 whatever the model does)."""
    a = answer_id(lm, answer)
    f = None if foil is None else answer_id(lm, foil, "foil")
    if a == f:
        checks.fail(f"answer={answer!r} and foil={foil!r} are the same token ({a}): pass two different answers")
    return a, f


class PatchSetup(NamedTuple):
    """What :func:`check_patch` returns: both prompts' ids, the two answer ids and the layers to patch."""
    ids_clean: torch.Tensor
    ids_corrupt: torch.Tensor
    answer: int
    foil: int
    layers: list


def check_patch(lm, clean, corrupt, answer, foil, where: str, layers=None) -> PatchSetup:
    """Every check of a patching run, before any forward pass; shared by :func:`patch` and
    :func:`lmkit.interp.crosscheck.nnsight_patch`, so that the two refuse the same inputs: ``where`` one of
    :data:`WHERE`; prompts of the same token count that differ; ``answer`` and ``foil`` one token each and not the
    same; ``layers`` a non-empty list of valid layers."""
    checks.one_of("where", where, WHERE)
    ids_clean, ids_corrupt = check_pair(lm, clean, corrupt)
    if foil is None:
        checks.fail("foil=None: patching measures logit[answer] - logit[foil], so pass the corrupt prompt's answer")
    a, f = check_answers(lm, answer, foil)
    return PatchSetup(ids_clean, ids_corrupt, a, f, layer_list(lm, layers))


def check_effect(m_clean: float, m_corrupt: float) -> None:
    """Refuse a clean and corrupted logit difference that agree (normalising would divide by zero); raised after the
    two plain runs, before any patched one."""
    if not (abs(m_clean - m_corrupt) >= 1e-6):  # also NaN
        checks.fail(f"clean and corrupt prompts give the same logit difference ({m_clean:.4g} and {m_corrupt:.4g}): "
                    "pick prompts that the model answers differently")


def logit_diff(lm, text, answer, foil=None, *, edits: dict | None = None) -> float:
    """``logit[answer] - logit[foil]`` at the last position (``foil=None``: the answer's logit alone), with ``edits``
    (``{(point, layer): fn}``, see :mod:`lmkit.interp.hooks`) applied during the pass (notebook 05).
    ``answer == foil`` (one token) is refused: the difference would be 0 whatever the model does."""
    ids = token_ids(lm, text)
    a, f = check_answers(lm, answer, foil)
    last = run(lm, ids, edits)[0, -1]
    return (last[a] - (0 if f is None else last[f])).item()


def normalise(metric, corrupted: float, clean: float):
    """``(metric - corrupted) / (clean - corrupted)``: 0 at the corrupted run, 1 at the clean one.

    ``corrupted`` and ``clean`` must be finite numbers that differ (else every result would be inf or NaN)."""
    corrupted = checks.real("corrupted", corrupted, fix="pass the corrupted run's logit difference")
    clean = checks.real("clean", clean, fix="pass the clean run's logit difference")
    if clean == corrupted:
        checks.fail(f"clean={clean!r} equals corrupted={corrupted!r}: normalising divides by their difference, so "
                    "pick prompts that the model answers differently")
    if not isinstance(metric, torch.Tensor):
        metric = checks.real("metric", metric, fix="pass the patched run's logit difference")
    return (metric - corrupted) / (clean - corrupted)


def _source(source) -> torch.Tensor:
    if not isinstance(source, torch.Tensor) or source.dim() < 2 or not source.is_floating_point():
        checks.fail(f"source={checks.show(source)} is not a [T, ...] float tensor: pass one row of a cached "
                    "activation, e.g. cache[('resid', 3)][0]")
    return source


def _pairs(name: str, value, what: str, example: str) -> list:
    pairs = list(value) if hasattr(value, "__iter__") and not isinstance(value, (str, dict)) else None
    if not pairs or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
        checks.fail(f"{name}={checks.show(value)} must be a non-empty list of {what} pairs: pass e.g. {example}")
    return pairs


def replace_positions(source: torch.Tensor, rows_positions) -> callable:
    """An edit that writes ``source[p]`` (``[T, ...]``, from the clean run) into row ``r`` at each position ``p``
    for every ``(r, positions)`` in ``rows_positions``; everything else is left as computed."""
    source = _source(source)
    rows_positions = _pairs("rows_positions", rows_positions, "(row, positions)", "[(0, [5])]")
    t = source.shape[0]
    for _, positions in rows_positions:
        if isinstance(positions, slice):
            continue
        ps = positions.tolist() if hasattr(positions, "tolist") else positions
        for p in [ps] if checks.is_integer(ps) or not hasattr(ps, "__iter__") else ps:
            checks.index("position", p, t, what=f"source has {t} positions")

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
    source = _source(source)
    if source.shape[-1] % d_k:
        checks.fail(f"source has width {source.shape[-1]}, not a multiple of d_k={d_k}: pass the ('z', layer) "
                    "activation and the model's head_dim")
    n_heads = source.shape[-1] // d_k
    rows_heads = _pairs("rows_heads", rows_heads, "(row, head)", "[(0, 3)]")
    for _, h in rows_heads:
        checks.index("head", h, n_heads, what=f"source holds {n_heads} heads", negative=False)

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
    forward pass (one row per position or head). Errors (prompts of different lengths or identical prompts, an
    answer that is not one token or the same as the foil, an unknown ``where``, ``layers=[]``) are one-line
    ValueErrors raised by :func:`check_patch` before any forward pass; clean and corrupted runs that agree are
    refused after the two plain runs, before the patched ones (notebook 05).
    """
    checks.boolean("per_position", per_position)
    ids_clean, ids_corrupt, a, f, layers = check_patch(lm, clean, corrupt, answer, foil, where, layers)
    point = {"resid": "resid", "attn": "attn", "mlp": "mlp", "head": "z"}[where]
    cfg = lm.model.config
    t = ids_clean.shape[1]
    clean_logits, cache = run_with_cache(lm, ids_clean, [(point, l) for l in layers])
    m_clean = (clean_logits[0, -1, a] - clean_logits[0, -1, f]).item()
    m_corrupt = logit_diff(lm, ids_corrupt, a, f)
    check_effect(m_clean, m_corrupt)
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
    """A patching result as a heatmap, 0 (white) to 1 (the clean run), with its row and column labels (notebook 05)."""
    import matplotlib.pyplot as plt

    if not isinstance(result, torch.Tensor) or result.dim() != 2:
        checks.fail(f"result has shape {tuple(getattr(result, 'shape', ()))}: pass a [rows, columns] tensor (for "
                    "patch(..., per_position=False), result[:, None])")
    rows, columns = list(rows), list(columns)
    if (len(rows), len(columns)) != tuple(result.shape):
        checks.fail(f"result is {tuple(result.shape)} but there are {len(rows)} row labels and {len(columns)} column "
                    "labels: pass one label per row (the layers) and per column (positions or heads)")
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
