"""Head statistics: the entropy of each attention row, and a pattern class for each head (notebook 04)."""
from __future__ import annotations

import torch

from lmkit import checks

__all__ = ["HEAD_CLASSES", "entropy_bits", "head_stats"]

HEAD_CLASSES = ("previous-token", "first-token", "diagonal", "broad", "mixed")


def entropy_bits(att: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of each attention row, ``att[..., T, T] -> [..., T]`` (notebook 04)."""
    p = att.float().clamp_min(0)
    return -(p * torch.log2(p.clamp_min(1e-12))).sum(-1)


def head_stats(att: torch.Tensor, *, threshold: float = 0.5, broad: float = 0.7):
    """Per-head entropy and pattern scores, with a class for each head: a DataFrame of ``layers × heads`` rows.

    Scores are means over query positions ``i ≥ 2`` (where "previous" and "first" differ): ``prev = A[i, i-1]``,
    ``first = A[i, 0]``, ``diag = A[i, i]``, and ``norm_entropy`` = entropy / log2(i+1) (1 = uniform over the
    visible tokens). A head is ``previous-token``, ``first-token`` (an attention sink) or ``diagonal`` when that
    score is the largest and at least ``threshold``; else ``broad`` when ``norm_entropy ≥ broad``; else ``mixed``
    (notebook 04).
    """
    import pandas as pd

    threshold = checks.probability("threshold", threshold, fix="the least score that names a pattern, e.g. 0.5")
    broad = checks.probability("broad", broad, fix="the least normalised entropy of a broad head, e.g. 0.7")
    if att.dim() != 4 or att.shape[-1] != att.shape[-2]:
        raise ValueError(f"att has shape {tuple(att.shape)}: pass [layers, heads, T, T] as from attentions()")
    n_layers, n_heads, t, _ = att.shape
    if t < 3:
        raise ValueError(f"the text has {t} tokens: head classification needs at least 3")
    a = att.float()
    rows = torch.arange(2, t)
    prev = a[..., rows, rows - 1].mean(-1)
    first = a[..., rows, 0].mean(-1)
    diag = a[..., rows, rows].mean(-1)
    ent = entropy_bits(a)[..., rows]
    norm_ent = (ent / torch.log2(rows.float() + 1)).mean(-1)
    records = []
    for layer in range(n_layers):
        for head in range(n_heads):
            scores = {"previous-token": prev[layer, head].item(), "first-token": first[layer, head].item(),
                      "diagonal": diag[layer, head].item()}
            best = max(scores, key=scores.get)
            ne = norm_ent[layer, head].item()
            kind = best if scores[best] >= threshold else ("broad" if ne >= broad else "mixed")
            records.append({"layer": layer, "head": head, "entropy_bits": ent[layer, head].mean().item(),
                            "norm_entropy": ne, "prev": scores["previous-token"], "first": scores["first-token"],
                            "diag": scores["diagonal"], "kind": kind})
    return pd.DataFrame(records)
