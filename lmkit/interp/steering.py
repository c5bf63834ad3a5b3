"""Steering vectors: add a direction to the residual stream during generation and watch the text change (notebook 05).

A contrastive steering vector is the mean residual stream over prompts with a property minus the mean over prompts
without it, at one layer's output (Turner et al. 2023, "Activation Addition"; Rimsky et al. 2024, "Steering Llama 2
via Contrastive Activation Addition"). :func:`steer` adds ``coeff ·`` that vector to the same layer's output at every
position, through one forward hook, so that any generation run inside the block is steered.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from lmkit import checks
from lmkit.interp.hooks import check_layer, hooked, run_with_cache, token_ids

__all__ = ["residual_mean", "steering_vector", "steer", "steered_generate"]


def residual_mean(lm, texts, layer: int) -> torch.Tensor:
    """``[d]``: the residual stream at the output of ``layer``, averaged over each text's positions, then over
    the texts (float32, CPU) (notebook 05)."""
    layer = check_layer(lm, layer)
    means = [run_with_cache(lm, token_ids(lm, t), [("resid", layer)])[1][("resid", layer)][0].mean(0)
             for t in checks.texts("texts", texts, what="prompts")]
    return torch.stack(means).mean(0)


def steering_vector(lm, positive, negative, layer: int) -> torch.Tensor:
    """``[d]``: ``residual_mean(positive) - residual_mean(negative)`` at the output of ``layer`` (notebook 05).

    ``positive``/``negative``: lists of prompts (or one string each); ``layer`` out of range, or an empty list,
    is a one-line ValueError raised before any forward pass.
    """
    layer = check_layer(lm, layer)
    positive = checks.texts("positive", positive, what="prompts")
    negative = checks.texts("negative", negative, what="prompts")
    return residual_mean(lm, positive, layer) - residual_mean(lm, negative, layer)


@contextmanager
def steer(lm, vector: torch.Tensor, layer: int, coeff: float = 1.0):
    """Inside the block, ``coeff · vector`` is added to the output of ``layer`` at every position (notebook 05).

    With a KV cache the prompt's positions are steered once, at prefill, and each new token as it is made.
    ``layer`` out of range, a ``coeff`` that is not a finite number, and a ``vector`` that is not a finite ``[d]``
    float tensor are one-line ValueErrors raised before the hook is attached.
    """
    layer = check_layer(lm, layer)
    coeff = checks.real("coeff", coeff, fix="pass e.g. coeff=4.0 (negative steers away)")
    d = lm.model.config.hidden_size
    if not isinstance(vector, torch.Tensor) or not vector.is_floating_point():
        checks.fail(f"vector={checks.show(vector, 60)} is not a float tensor: pass a [{d}] tensor, as from "
                    "steering_vector")
    if vector.shape != (d,):
        raise ValueError(f"vector has shape {tuple(vector.shape)}: pass a [{d}] tensor, as from steering_vector")
    if not torch.isfinite(vector).all():
        checks.fail(f"vector holds NaN or infinite values: pass a finite [{d}] tensor, as from steering_vector")
    shift = (coeff * vector).to(device=lm.device, dtype=lm.dtype)
    with hooked(lm, {("resid", layer): lambda x: x + shift}):
        yield lm


def steered_generate(lm, prompt: str, vector: torch.Tensor, layer: int, coeff: float, **settings) -> str:
    """:func:`lmkit.generate.generate` with ``coeff · vector`` added at ``layer`` (settings as there) (notebook 05).

    ``vector``, ``layer`` and ``coeff`` are checked as in :func:`steer`, the prompt and settings by ``generate``, all
    before the first forward pass. The prompt is read as ``generate`` reads it: special-token text becomes the token.
    """
    from lmkit.generate import generate

    with steer(lm, vector, layer, coeff):
        return generate(lm, prompt, **settings)
