"""The KV cache's keyword across transformers versions: ``past_key_values`` until 5.23, ``cache`` from 5.24.

transformers 5.24 renamed the forward argument and the output field that carry the KV cache from
``past_key_values`` to ``cache``; the old name still works there with a deprecation warning and is due to go in
5.40. lmkit passes and reads the cache through these two functions, so it runs without warnings on the pinned
release and on the newest one alike (notebook 06 writes the decode loop; notebooks 08 and 07 build on it).
"""
from __future__ import annotations

import inspect
from functools import lru_cache

__all__ = ["cache_arg", "with_cache", "returned_cache"]

NEW, OLD = "cache", "past_key_values"


@lru_cache(maxsize=1)
def _installed_default() -> str:
    """The name the installed transformers uses, read from its Llama model (the family lmkit teaches)."""
    from transformers import LlamaForCausalLM

    return NEW if NEW in inspect.signature(LlamaForCausalLM.forward).parameters else OLD


@lru_cache(maxsize=None)
def _arg_for(cls: type) -> str:
    params = inspect.signature(cls.forward).parameters
    if NEW in params:
        return NEW
    if OLD in params:
        return OLD
    return _installed_default()  # a wrapper that forwards **kwargs: what the wrapped transformers model takes


def cache_arg(model) -> str:
    """The keyword under which ``model.forward`` takes a KV cache: ``"cache"`` or ``"past_key_values"``.

    Read from the signature of the model's class (a PEFT wrapper is looked through); a module whose forward takes
    neither name (a wrapper with ``**kwargs``) gets the installed transformers' name.
    """
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return _arg_for(type(model))


def with_cache(model, cache) -> dict:
    """``{cache_arg(model): cache}``, to pass into a forward call: ``model(ids, **with_cache(model, cache))``."""
    return {cache_arg(model): cache}


def returned_cache(output):
    """The KV cache that a forward call with ``use_cache=True`` returned (``output.cache`` or
    ``output.past_key_values``, whichever this transformers fills); ``None`` when it returned none."""
    cache = output.get(NEW) if hasattr(output, "get") else getattr(output, NEW, None)
    if cache is None:
        cache = output.get(OLD) if hasattr(output, "get") else getattr(output, OLD, None)
    return cache
