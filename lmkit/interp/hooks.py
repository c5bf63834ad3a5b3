"""Forward hooks by hand: read or overwrite any activation of a Llama-style model during one forward pass (notebook 05).

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

__all__ = ["POINTS", "hooked", "run", "run_with_cache", "layers", "check_layer", "check_ids", "token_ids", "answer_id",
           "special_text"]

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


def check_ids(lm, ids, name: str = "ids") -> torch.Tensor:
    """``ids`` as a ``[B, T]`` integer tensor on the model's device (a ``[T]`` row becomes ``[1, T]``), refused in one
    line when it is not integer token ids, is empty, holds an id outside the vocabulary, or is longer than the model's
    context (positions past it would be computed silently, with rotary angles the model never saw)."""
    from lmkit.decoding.settings import context_length

    fix = "pass a [batch, T] tensor of token ids, e.g. lm.encode(text)"
    try:
        t = torch.as_tensor(ids)
    except (TypeError, ValueError, RuntimeError):
        checks.fail(f"{name}={checks.show(ids)} is not token ids: {fix}")
    t = t[None] if t.dim() == 1 else t
    if t.dim() != 2 or t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        checks.fail(f"{name} is a {t.dim()}-d {str(t.dtype).removeprefix('torch.')} tensor of shape "
                    f"{tuple(t.shape)}, not integer token ids: {fix}")
    if t.numel() == 0:
        checks.fail(f"{name} has shape {tuple(t.shape)}, no tokens: pass at least one token per row")
    vocab = lm.model.config.vocab_size
    low, high = int(t.min()), int(t.max())
    if low < 0 or high >= vocab:
        checks.fail(f"{name} holds the id {low if low < 0 else high}, outside the vocabulary 0..{vocab - 1}: pass "
                    "ids from this model's tokenizer")
    if t.shape[1] > context_length(lm):
        checks.fail(f"{name} is {t.shape[1]} tokens but the model's context holds {context_length(lm)}: shorten "
                    "the text (positions past the context give silently wrong activations)")
    return t.to(lm.device)


def token_ids(lm, text, name: str = "text") -> torch.Tensor:
    """``[1, T]`` token ids of ``text`` (a string, or ids already, see :func:`check_ids`) on the model's device;
    empty text, ids outside the vocabulary and a prompt longer than the model's context are refused.

    A prompt is read as the model's tokenizer reads it, as :func:`lmkit.generate.generate` does: the text of a
    special token (``"<|im_end|>"``) becomes that token, so that a chat template can be written out by hand.
    """
    if isinstance(text, str):
        ids = lm.encode(checks.text(name, text, fix="pass a non-empty prompt"))
        if ids.shape[1] == 0:
            checks.fail(f"{name}={checks.show(text)} gives no tokens: pass a prompt with at least one word")
        return check_ids(lm, ids, name)
    return check_ids(lm, text, name)


def special_text(lm, text: str) -> str | None:
    """The first special token of ``lm``'s tokenizer whose text occurs in ``text`` (``"<|im_end|>"``), else None."""
    tok = lm.tokenizer
    specials = set(getattr(tok, "all_special_tokens", ()))
    specials |= {t.content for t in getattr(tok, "added_tokens_decoder", {}).values() if getattr(t, "special", False)}
    found = [(text.find(s), s) for s in specials if s and s in text]
    return min(found)[1] if found else None


def answer_id(lm, answer, name: str = "answer") -> int:
    """The id of ``answer``, which must be exactly one token (mind the leading space: ``" Paris"``).

    An answer is text: the text of a special token (``"<|im_end|>"``) is refused, with its id, which is how to ask
    for that token (``answer=lm.tokenizer.eos_token_id``).
    """
    if checks.is_integer(answer):
        vocab = lm.model.config.vocab_size
        return checks.index(name, answer, vocab, what=f"the vocabulary has {vocab} ids", negative=False)
    if not isinstance(answer, str) or not answer:
        checks.fail(f"{name}={checks.show(answer)} is not a token: pass a one-token string such as ' Paris', or an id")
    special = special_text(lm, answer)
    if special is not None:
        sid = lm.tokenizer.convert_tokens_to_ids(special)
        checks.fail(f"{name}={answer!r} contains the special token {special!r}: an answer is text; to score that "
                    f"token, pass its id ({name}={sid})")
    ids = lm.tokenizer.encode(answer, add_special_tokens=False)
    if len(ids) != 1:
        pieces = lm.tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(f"{name}={answer!r} is {len(ids)} tokens {pieces}: pass a word that is one token "
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
    if not isinstance(edits, dict):
        checks.fail(f"edits={checks.show(edits)} is not a dict: pass {{(point, layer): fn}}, e.g. "
                    "{('resid', 3): lambda x: x}")
    for key, fn in edits.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            checks.fail(f"edit key {checks.show(key)} is not a (point, layer) pair: write e.g. ('resid', 3)")
        if not callable(fn):
            checks.fail(f"the edit at {key} is {checks.show(fn)}, not a function: pass a function tensor -> tensor")
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
    """Logits ``[B, T, V]`` (float32) of one forward pass of ``ids`` with ``edits`` applied (notebook 05)."""
    ids = check_ids(lm, ids)
    with hooked(lm, {} if edits is None else edits), torch.inference_mode():
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
    elif isinstance(points, (str, tuple)) or not hasattr(points, "__iter__"):
        checks.fail(f"points={checks.show(points)} is not a list of (point, layer) pairs: pass e.g. [('resid', 3)]")
    points = list(points)
    if not points:
        checks.fail("points=[] records nothing: pass at least one (point, layer) pair, or points=None for all")
    cache: dict = {}

    def keep(key):
        def fn(x):
            cache[key] = x.detach().float().cpu()
            return x
        return fn

    logits = run(lm, ids, {key: keep(key) for key in points})
    return logits.cpu(), cache
