"""Forward hooks by hand: read or overwrite any activation of a Llama-style model during one forward pass (notebook 11).

A *hook point* is a ``(name, layer)`` pair naming one tensor of the forward pass, ``[batch, T, ...]``:

==========  =======================================================  =============================
name        the tensor                                               shape
==========  =======================================================  =============================
``embed``   the token embeddings (the residual stream before layer 0)  ``[B, T, d]``  (layer ignored)
``resid``   the residual stream at the **output** of layer ``l``       ``[B, T, d]``
``attn``    the attention block's output (after ``o_proj``)            ``[B, T, d]``
``z``       the heads' outputs before ``o_proj``, heads side by side    ``[B, T, H·d_k]``
``mlp``     the MLP block's output                                     ``[B, T, d]``
``final``   the residual stream entering the final RMSNorm              ``[B, T, d]``  (layer ignored)
==========  =======================================================  =============================

An *edit* is a function ``tensor -> tensor`` attached to a hook point; :func:`run` registers one torch forward
hook (or pre-hook, for inputs) per edit, runs the model, and removes every hook even when the pass fails. Reading
an activation is an edit that stores its argument and returns it unchanged (:func:`run_with_cache`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch

from lmkit import checks
from lmkit.attention.capture import check_layer

__all__ = ["POINTS", "hooked", "run", "run_with_cache", "layers", "check_layer", "token_ids", "answer_id"]

POINTS = ("embed", "resid", "attn", "z", "mlp", "final")
Edit = Callable[[torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------------------------- checks
def layers(lm):
    """The decoder layers (``model.model.layers``) of a Llama-style causal LM."""
    try:
        return lm.model.model.layers
    except AttributeError:
        raise ValueError(f"{type(lm.model).__name__} has no .model.layers: lmkit.interp reads Llama-style "
                         "decoders (LlamaForCausalLM and relatives)") from None


def token_ids(lm, text) -> torch.Tensor:
    """``[1, T]`` token ids of ``text`` (a string, or ids already) on the model's device; empty text is refused."""
    if isinstance(text, str):
        return lm.encode(checks.text("text", text, fix="pass a non-empty prompt"))
    ids = torch.as_tensor(text)
    return (ids[None] if ids.dim() == 1 else ids).to(lm.device)


def answer_id(lm, answer) -> int:
    """The id of ``answer``, which must be exactly one token (mind the leading space: ``" Paris"``)."""
    if checks.is_integer(answer):
        vocab = lm.model.config.vocab_size
        return checks.index("answer", answer, vocab, what=f"the vocabulary has {vocab} ids", negative=False)
    if not isinstance(answer, str) or not answer:
        checks.fail(f"answer={checks.show(answer)} is not a token: pass a one-token string such as ' Paris', or an id")
    ids = lm.tokenizer.encode(answer, add_special_tokens=False)
    if len(ids) != 1:
        pieces = lm.tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(f"answer={answer!r} is {len(ids)} tokens {pieces}: pass a word that is one token "
                         "(often with its leading space, e.g. ' Paris'), or its first token's id")
    return ids[0]


# ----------------------------------------------------------------------------------------------- hook points
def _module(lm, name: str, layer: int):
    """The module whose output (``"out"``) or input (``"in"``) holds hook point ``(name, layer)``."""
    if name == "embed":
        return lm.model.model.embed_tokens, "out"
    if name == "final":
        return lm.model.model.norm, "in"
    block = layers(lm)[check_layer(lm, layer)]
    return {"resid": (block, "out"), "attn": (block.self_attn, "out"), "mlp": (block.mlp, "out"),
            "z": (block.self_attn.o_proj, "in")}[name]


def _register(module, where: str, edit: Edit):
    """Attach ``edit`` to a module's output (forward hook) or first input (forward pre-hook); return the handle.

    Decoder layers return a tensor in transformers 5 and a tuple in 4.x; attention returns ``(output, weights)``:
    the edit always sees the main tensor, and the rest of a tuple passes through.
    """
    if where == "out":
        def hook(module, args, output):
            if isinstance(output, tuple):
                return (edit(output[0]), *output[1:])
            return edit(output)
        return module.register_forward_hook(hook)

    def pre_hook(module, args, kwargs):
        if args:
            return (edit(args[0]), *args[1:]), kwargs
        key = "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))
        return args, {**kwargs, key: edit(kwargs[key])}
    return module.register_forward_pre_hook(pre_hook, with_kwargs=True)


@contextmanager
def hooked(lm, edits: dict):
    """Inside the block, ``lm.model`` runs with ``edits`` (``{(name, layer): fn}``) applied; hooks removed after."""
    handles = []
    try:
        for (name, layer), fn in edits.items():
            checks.one_of("hook point", name, POINTS)
            handles.append(_register(*_module(lm, name, layer), fn))
        yield lm
    finally:
        for handle in handles:
            handle.remove()


def run(lm, ids: torch.Tensor, edits: dict | None = None) -> torch.Tensor:
    """Logits ``[B, T, V]`` (float32) of one forward pass of ``ids`` with ``edits`` applied (notebook 11)."""
    with hooked(lm, edits or {}), torch.inference_mode():
        out = lm.model(input_ids=ids, use_cache=False)
    return out.logits.float()


def run_with_cache(lm, ids: torch.Tensor, points=None) -> tuple[torch.Tensor, dict]:
    """``(logits, cache)``: one plain forward pass, recording the tensors at ``points`` (default: every point).

    ``cache[(name, layer)]`` is a detached float32 copy on the CPU, shaped as in the module docstring (with the
    batch axis); ``embed`` and ``final`` are stored under layer 0.
    """
    n = lm.model.config.num_hidden_layers
    if points is None:
        points = [("embed", 0), ("final", 0)] + [(p, l) for l in range(n) for p in ("resid", "attn", "z", "mlp")]
    cache: dict = {}

    def keep(key):
        def fn(x):
            cache[key] = x.detach().float().cpu()
            return x
        return fn

    logits = run(lm, ids, {key: keep(key) for key in points})
    return logits.cpu(), cache
