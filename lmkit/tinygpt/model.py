"""The tiny GPT, top to bottom like nanoGPT's ``model.py``: one class per block, plain torch (notebook 10).

    tokens -> token embedding + positional encoding -> [LayerNorm -> causal self-attention -> + residual
           -> LayerNorm -> feed-forward -> + residual] x n_layer -> LayerNorm -> tied output head -> logits

The attention is written by hand, ``softmax(Q Kᵀ / √d_k + causal mask) V``, because writing it IS the lesson
(``F.scaled_dot_product_attention`` computes the same thing faster; notebook 10 checks they agree). Notebook 10
writes these classes in its cells, with the same names, and asserts that :class:`GPT` here is the same code (same
weights from the same seed, same logits).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmkit import checks
from lmkit.layers import sinusoidal_encoding


@dataclass
class GPTConfig:
    """Sizes of a tiny GPT (notebook 10). ``pos`` is ``"sinusoidal"`` (fixed, as in the paper) or ``"learned"``."""

    vocab_size: int = 65
    block_size: int = 128  # longest context
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    pos: str = "sinusoidal"

    def __post_init__(self):
        _check_sizes(self, ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"))
        checks.integer("n_embd", self.n_embd, multiple_of=self.n_head, must=f"divisible by n_head={self.n_head}",
                       fix="pick sizes so it is")
        checks.one_of("pos", self.pos, ("sinusoidal", "learned"))


def _check_sizes(cfg, names) -> None:
    """A config's sizes are integers >= 1 and its ``dropout`` a probability below 1; a one-line error otherwise."""
    for name in names:
        checks.integer(name, getattr(cfg, name), low=1, fix=f"{type(cfg).__name__} sizes are counts")
    checks.probability("dropout", cfg.dropout, open_high=True, fix="the share of activations zeroed, e.g. 0.1")


class Output(NamedTuple):
    """What a forward pass returns: ``logits`` [B, T, vocab] and the mean cross-entropy ``loss`` (or None)."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


# ----------------------------------------------------------------------------------------------- the blocks
class CausalSelfAttention(nn.Module):
    """Multi-head ``softmax(Q Kᵀ / √d_k + M) V`` where M is -inf above the diagonal (notebook 10)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.d_k = cfg.n_head, cfg.n_embd // cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # W_Q, W_K, W_V side by side
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)  # W_O
        self.drop = nn.Dropout(cfg.dropout)
        mask = torch.tril(torch.ones(cfg.block_size, cfg.block_size, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)  # mask[i, j]: may position i look at j <= i

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, self.d_k).transpose(1, 2) for t in (q, k, v))  # [B, heads, T, d_k]
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # [B, heads, T, T]
        scores = scores.masked_fill(~self.mask[:T, :T], float("-inf"))
        weights = F.softmax(scores, dim=-1)
        y = self.drop(weights) @ v  # [B, heads, T, d_k]
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        y = self.drop(self.proj(y))
        return (y, weights) if return_weights else y


class FeedForward(nn.Module):
    """Position-wise ``W_2 GELU(W_1 x + b_1) + b_2``, 4x wider inside (notebook 10)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.down = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: ``x + attn(LN(x))``, then ``x + ffn(LN(x))`` (notebook 10)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.n_embd), CausalSelfAttention(cfg)
        self.ln2, self.ffn = nn.LayerNorm(cfg.n_embd), FeedForward(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class GPT(nn.Module):
    """Decoder-only Transformer: embeddings, ``n_layer`` blocks, final LayerNorm, tied head (notebook 10)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        if cfg.pos == "learned":
            self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        else:
            self.register_buffer("pos_enc", sinusoidal_encoding(cfg.block_size, cfg.n_embd), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # tied: the same matrix reads tokens in and writes logits out
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale the residual projections by 1/sqrt(2 n_layer)
            if name.endswith(("attn.proj.weight", "ffn.down.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> Output:
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size={self.config.block_size}: "
                             "crop it or use a sliding window")
        pos = self.pos_emb.weight[:T] if self.config.pos == "learned" else self.pos_enc[:T]
        x = self.drop(self.tok_emb(idx) * math.sqrt(self.config.n_embd) + pos)  # × √d as in Vaswani et al.
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        return Output(logits, _loss(logits, targets))


def _loss(logits, targets):
    if targets is None:
        return None
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


TinyGPT = GPT
"""The name :class:`GPT` had before it was named as notebook 10's cell names it."""
