"""Capturing the model's own attention: every layer's probabilities, and a recorded forward pass (notebook 04).

- :func:`attentions` gives ``A[layer, head, query, key]`` for a text, switching to eager attention for the call
  when the fast ``sdpa`` kernel would return none (:func:`eager_attention`);
- :func:`trace` records, with forward hooks, each layer's input, its attention and its outputs, which the
  recomputation (:mod:`lmkit.attention.formula`) and the logit lens start from;
- :func:`token_labels` gives readable token labels for plots.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from lmkit import checks

__all__ = ["MAX_TOKENS", "Trace", "attentions", "check_layer", "eager_attention", "token_labels", "trace"]

MAX_TOKENS = 256
"""Longest text :func:`attentions` accepts: 30 layers × 9 heads × T² floats is 71 MB at T=256, 1.1 GB at T=1024."""


# ----------------------------------------------------------------------------------------------- inputs
def _ids(lm, text: str, max_tokens: int | None) -> torch.Tensor:
    """``[1, T]`` ids of ``text``; empty or too long texts raise a one-line ValueError."""
    checks.text("text", text)
    if max_tokens is not None:
        checks.integer("max_tokens", max_tokens, low=1, fix=f"pass e.g. max_tokens={MAX_TOKENS}, or None for no limit")
    ids = lm.encode(text)
    n = ids.shape[1]
    if max_tokens is not None and n > max_tokens:
        raise ValueError(f"text has {n} tokens, more than max_tokens={max_tokens}: pass a shorter text "
                         f"(or raise max_tokens, at the cost of memory that grows as T²)")
    return ids


def token_labels(lm, ids) -> list[str]:
    """One readable label per token id: the decoded text, whitespace-only tokens made visible (notebook 04)."""
    ids = torch.as_tensor(ids).flatten().tolist()
    return [_visible(lm.tokenizer.decode([i])) for i in ids]


def _layers(model):
    """The decoder layers of a Llama-style causal LM."""
    try:
        return model.model.layers
    except AttributeError:
        raise ValueError(f"{type(model).__name__} has no .model.layers: lmkit.attention reads Llama-style decoders "
                         "(LlamaForCausalLM and relatives)") from None


def check_layer(lm, layer) -> int:
    """``layer`` as an index ``0..L-1`` of ``lm``'s decoder layers (negative counts from the end); ``bool``, floats
    and out-of-range values are a one-line :class:`lmkit.checks.CheckError` (a ``ValueError``).

    The one layer check of lmkit (:func:`lmkit.checks.layer_index` on the model's ``num_hidden_layers``);
    ``lmkit.interp.check_layer`` is this function."""
    return checks.layer_index("layer", layer, lm.model.config.num_hidden_layers)


@contextmanager
def eager_attention(model):
    """Run ``model`` with eager attention inside the block, restoring its implementation after (notebook 04).

    The ``sdpa`` and flash kernels never materialise the probabilities, so ``output_attentions`` comes back
    empty (or ``None``) under them; eager attention computes ``softmax(QKᵀ/√d_k)`` explicitly.
    """
    before = getattr(model.config, "_attn_implementation", "eager")
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if before != "eager":
            model.set_attn_implementation(before)


# ----------------------------------------------------------------------------------------------- the model's own
def attentions(lm, text: str, *, max_tokens: int = MAX_TOKENS) -> tuple[list[str], torch.Tensor]:
    """``(tokens, A)`` with ``A[layer, head, query, key]`` the model's attention probabilities, float32 on CPU.

    Never empty: the model is switched to eager attention for the call when it runs another kernel (notebook 04).
    """
    return _attentions_of_ids(lm, _ids(lm, text, max_tokens))


def _attentions_of_ids(lm, ids: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    with eager_attention(lm.model), torch.inference_mode():
        out = lm.model(ids, output_attentions=True, use_cache=False)
    att = out.attentions
    if not att or any(a is None or a.numel() == 0 for a in att):
        raise RuntimeError(f"{lm.name} returned no attention weights even with eager attention: this architecture "
                           "does not expose them")
    return token_labels(lm, ids[0]), torch.stack([a[0] for a in att]).float().cpu()



@dataclass
class Trace:
    """One forward pass, recorded: per layer its input, its attention probabilities and its attention output."""

    tokens: list[str]
    ids: torch.Tensor                  # [T]
    inputs: list[torch.Tensor]         # layer -> [T, d], the input hidden states of the layer
    attentions: torch.Tensor           # [L, H, T, T]
    block_outputs: list[torch.Tensor]  # layer -> [T, d], self_attn's output before the residual add
    layer_outputs: list[torch.Tensor]  # layer -> [T, d], the residual stream after the layer
    logits: torch.Tensor               # [T, V]


def trace(lm, text: str, *, max_tokens: int = MAX_TOKENS) -> Trace:
    """Run the model once in eager mode, recording every layer's input, attention and outputs with hooks (notebook 04)."""
    ids = _ids(lm, text, max_tokens)
    layers = _layers(lm.model)
    inputs, blocks, outs = {}, {}, {}
    handles = []

    def pre_hook(i):
        def fn(module, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            inputs[i] = h[0].detach().float().cpu()
        return fn

    def attn_hook(i):
        def fn(module, args, output):
            blocks[i] = output[0][0].detach().float().cpu()
        return fn

    def out_hook(i):
        def fn(module, args, output):
            h = output[0] if isinstance(output, tuple) else output
            outs[i] = h[0].detach().float().cpu()
        return fn

    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_pre_hook(pre_hook(i), with_kwargs=True))
        handles.append(layer.self_attn.register_forward_hook(attn_hook(i)))
        handles.append(layer.register_forward_hook(out_hook(i)))
    try:
        with eager_attention(lm.model), torch.inference_mode():
            out = lm.model(ids, output_attentions=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    att = torch.stack([a[0] for a in out.attentions]).float().cpu()
    n = len(layers)
    return Trace(token_labels(lm, ids[0]), ids[0].cpu(), [inputs[i] for i in range(n)], att,
                 [blocks[i] for i in range(n)], [outs[i] for i in range(n)], out.logits[0].float().cpu())


def _visible(token: str) -> str:
    """A token's text as a plot label: whitespace-only tokens shown by their escape (e.g. '\\n', '␣')."""
    if token.strip():
        return token.replace("\n", "\\n").replace("\t", "\\t")
    return token.replace(" ", "␣").replace("\n", "\\n").replace("\t", "\\t") or "∅"
