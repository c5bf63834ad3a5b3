"""Tiny-GPT checkpoints: a safetensors file written atomically with the config and the vocabulary inside, and
:class:`CharLM`, the adapter that lets lmkit's perplexity read a character model (notebook 10)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from lmkit.tinygpt.model import GPT, GPTConfig
from lmkit.tinygpt.rnn import RNNConfig, RNNLM
from lmkit.tinygpt.sizes import n_params
from lmkit.tinygpt.tokenizer import CharTokenizer


@dataclass(repr=False)
class CharLM:
    """A trained char model shaped like ``lmkit.LM`` (``.model .tokenizer .device .name .encode``), so that
    ``lmkit.metrics.perplexity`` works on it unchanged (use ``window=model.config.block_size``) (notebook 10)."""

    model: nn.Module
    tokenizer: CharTokenizer
    name: str = "tiny-gpt"
    device: torch.device = torch.device("cpu")

    def encode(self, text: str) -> torch.Tensor:
        return self.tokenizer.encode(text)[None]

    def __repr__(self) -> str:
        return f"CharLM({self.name!r}, {n_params(self.model) / 1e6:.2f}M params, vocab {len(self.tokenizer)})"


# ----------------------------------------------------------------------------------------------- checkpoints
def save(model: nn.Module, tokenizer: CharTokenizer, path: str | os.PathLike) -> Path:
    """Write a safetensors checkpoint with the config and vocabulary in its metadata, atomically (notebook 10).

    ``model`` is an :class:`RNNLM` or a GPT with :class:`GPT`'s parameter names (notebook 10's cells write one);
    :func:`load` rebuilds it as a :class:`GPT`.

    The file is written to a temporary name in the same folder and renamed over ``path``: a crash never leaves a
    half-written checkpoint. Tied weights are stored once.
    """
    from safetensors.torch import save_model

    from lmkit.files import atomic_file

    path = Path(path)
    kind = "rnn" if isinstance(model, RNNLM) else "gpt"  # a GPT written in cells loads back as a GPT
    meta = {"kind": kind, "config": json.dumps(asdict(model.config)), "chars": json.dumps(tokenizer.chars)}
    with atomic_file(path) as tmp:
        save_model(model, str(tmp), metadata=meta)
    return path


def load(path: str | os.PathLike) -> CharLM:
    """Read a checkpoint written by :func:`save` back into a ready-to-use :class:`CharLM` (notebook 10)."""
    from safetensors import safe_open
    from safetensors.torch import load_model

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist: write one with lmkit.tinygpt.save(...)")
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    if meta.get("kind") not in ("gpt", "rnn"):
        raise ValueError(f"{str(path)!r} is not a lmkit.tinygpt checkpoint: write one with lmkit.tinygpt.save(...)")
    cfg = json.loads(meta["config"])
    model = GPT(GPTConfig(**cfg)) if meta["kind"] == "gpt" else RNNLM(RNNConfig(**cfg))
    load_model(model, path)
    return CharLM(model.eval(), CharTokenizer(json.loads(meta["chars"])), name=path.stem)
