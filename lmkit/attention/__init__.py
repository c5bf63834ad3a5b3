"""Self-attention made visible: captured, recomputed from the weights, measured, mapped and explored (notebook 04).

One module per idea; every name is importable from ``lmkit.attention`` itself:

- :mod:`~lmkit.attention.capture`: :func:`attentions` (``A[layer, head, query, key]``, never empty under
  ``sdpa``), :func:`trace` (one recorded forward pass), :func:`eager_attention`, :func:`token_labels`;
- :mod:`~lmkit.attention.formula`: :func:`attention_steps`, :func:`recompute` and :func:`verify`, the
  probabilities rebuilt by ``softmax(QKᵀ/√d_k + mask)`` from a layer's input and weights alone;
- :mod:`~lmkit.attention.heads`: :func:`entropy_bits` and :func:`head_stats` (a pattern class for each head);
- :mod:`~lmkit.attention.across_layers`: :func:`rollout` (Abnar & Zuidema, 2020) and :func:`logit_lens`;
- :mod:`~lmkit.attention.plots`: :func:`plot_head`, :func:`plot_grid`, :func:`plot_head_view`,
  :func:`plot_head_stats`, :func:`plot_rollout`, :func:`plot_logit_lens`;
- :mod:`~lmkit.attention.explorer_widget`: :class:`Explorer`, the interactive widget (:func:`explorer`).

RMSNorm, RoPE and ``head_dim`` come from :mod:`lmkit.layers`.
"""
from lmkit.attention.across_layers import LogitLens, logit_lens, rollout
from lmkit.attention.capture import MAX_TOKENS, Trace, attentions, eager_attention, token_labels, trace
from lmkit.attention.explorer_widget import EXPLORER_MAX_TOKENS, GAMMA, HEAD_VIEW_MIN, Explorer, explorer
from lmkit.attention.formula import Steps, attention_steps, recompute, rms_norm, rope, verify
from lmkit.attention.heads import HEAD_CLASSES, entropy_bits, head_stats
from lmkit.attention.plots import (plot_grid, plot_head, plot_head_stats, plot_head_view, plot_logit_lens,
                                   plot_rollout)

__all__ = ["EXPLORER_MAX_TOKENS", "Explorer", "GAMMA", "HEAD_CLASSES", "HEAD_VIEW_MIN", "LogitLens", "MAX_TOKENS",
           "Steps", "Trace", "attention_steps", "attentions", "eager_attention", "entropy_bits", "explorer",
           "head_stats", "logit_lens", "plot_grid", "plot_head", "plot_head_stats", "plot_head_view",
           "plot_logit_lens", "plot_rollout", "recompute", "rms_norm", "rollout", "rope", "token_labels", "trace",
           "verify"]
