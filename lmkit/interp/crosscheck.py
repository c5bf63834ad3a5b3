"""The same activation patching through nnsight, an established interpretability library, to compare (notebook 05).

nnsight (Fiotto-Kaufman et al. 2024, "NNsight and NDIF") wraps a loaded transformers model; inside
``with model.trace(ids):`` every module's ``.output`` / ``.input`` can be read (``.save()``) or assigned, and the
library installs and removes the hooks. Nothing here uses :mod:`lmkit.interp.hooks`: the result is an independent
computation of :func:`lmkit.interp.patch`'s tensor. nnsight wraps the model in memory, so it needs no download.
"""
from __future__ import annotations

import torch

from lmkit import checks
from lmkit.interp.patching import check_effect, check_patch, normalise
from lmkit.layers import head_dim

__all__ = ["nnsight_model", "nnsight_patch"]


def nnsight_model(lm):
    """``lm.model`` wrapped by nnsight's ``TransformersModel`` (no copy, no download) (notebook 05)."""
    try:
        from nnsight.modeling.transformers import TransformersModel
    except ImportError:
        raise ImportError("nnsight is not installed: pip install nnsight==0.8.1 (it resolves with torch as pinned "
                          "in requirements.txt)") from None
    return TransformersModel(lm.model, task="text-generation", tokenizer=lm.tokenizer)


def _site(model, where: str, layer: int):
    """The nnsight envoy and attribute holding ``where`` at ``layer``: ``(envoy, "output"|"input")``."""
    block = model.model.layers[layer]
    return {"resid": (block, "output"), "attn": (block.self_attn, "output"), "mlp": (block.mlp, "output"),
            "head": (block.self_attn.o_proj, "input")}[where]


def _value(envoy, attr: str):
    value = getattr(envoy, attr)
    return value[0] if isinstance(value, tuple) else value


def nnsight_patch(lm, clean, corrupt, answer, foil, where: str = "resid", *, layers=None, model=None) -> torch.Tensor:
    """:func:`lmkit.interp.patch`'s tensor (``[layers, positions]``, or ``[layers, heads]`` for ``"head"``), computed
    with nnsight's tracing instead of hand-written hooks; ``layers`` as there; ``model`` reuses a
    :func:`nnsight_model` (notebook 05). Its inputs go through the same checks as ``patch``
    (:func:`lmkit.interp.patching.check_patch`, then :func:`~lmkit.interp.patching.check_effect`), so the two refuse
    the same inputs with the same one-line errors."""
    ids_clean, ids_corrupt, a, f, layers = check_patch(lm, clean, corrupt, answer, foil, where, layers)
    if model is None:
        model = nnsight_model(lm)
    elif getattr(model, "_module", None) is not lm.model:
        checks.fail(f"model={type(model).__name__} does not wrap lm.model: pass model=nnsight_model(lm) for this "
                    "lm, or leave model=None")
    cfg = lm.model.config
    t, n_heads, d_k = ids_clean.shape[1], cfg.num_attention_heads, head_dim(cfg)
    with torch.inference_mode():
        saved = []  # filled inside the trace: nnsight runs its body itself (no comprehensions there)
        with model.trace(ids_clean):
            for layer in layers:
                saved.append(_value(*_site(model, where, layer)).save())
            clean_last = model.lm_head.output[0, -1].save()
        with model.trace(ids_corrupt):
            corrupt_last = model.lm_head.output[0, -1].save()
        m_clean = (clean_last[a] - clean_last[f]).item()
        m_corrupt = (corrupt_last[a] - corrupt_last[f]).item()
        check_effect(m_clean, m_corrupt)
        rows = []
        for i, layer in enumerate(layers):
            source = saved[i][0]
            n_rows = n_heads if where == "head" else t
            with model.trace(ids_corrupt.expand(n_rows, -1).clone()):
                target = _value(*_site(model, where, layer))
                for r in range(n_rows):
                    if where == "head":
                        cols = slice(r * d_k, (r + 1) * d_k)
                        target[r, :, cols] = source[:, cols]
                    else:
                        target[r, r] = source[r]
                last = model.lm_head.output[:, -1].save()
            rows.append(normalise((last[:, a] - last[:, f]).float().cpu(), m_corrupt, m_clean))
    return torch.stack(rows)
