"""The code of notebooks 07 and 13 that tests, checkpoints and exercise checkers reuse.

Notebook 07 writes the tiny GPT and its training loop in cells and asserts that :class:`TinyGPT` here is the same
code (same weights from the same seed, same logits); notebook 13 does the same for :class:`Llama`, SmolLM2's
architecture with the real weights loaded. The training loop lives only in notebook 07's cells; this module keeps
its pieces: batches, the learning-rate schedule, evaluation, sampling, the history record, checkpoints.

The Llama of notebook 13 lives in :mod:`lmkit.llama` (re-exported here). Read the GPT top to bottom, like nanoGPT's ``model.py``: one class per block, plain torch, no framework.

    tokens -> token embedding + positional encoding -> [LayerNorm -> causal self-attention -> + residual
           -> LayerNorm -> feed-forward -> + residual] x n_layer -> LayerNorm -> tied output head -> logits

The attention is written by hand, ``softmax(Q Kᵀ / √d_k + causal mask) V``, because writing it IS the lesson
(``F.scaled_dot_product_attention`` computes the same thing faster; notebook 07 checks they agree).
Tokens are characters: a 49k-entry BPE vocabulary would put almost every parameter of a small model in its
embedding table. Checkpoints are safetensors files written atomically, with the config and the vocabulary inside.
"""
from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmkit import checks
from lmkit.layers import sinusoidal_encoding

__all__ = ["CharTokenizer", "GPTConfig", "Output", "CausalSelfAttention", "FeedForward", "Block", "TinyGPT",
           "RNNConfig", "RNNLM", "rnn_like", "n_params", "flops_per_token", "get_batch", "estimate_loss", "History",
           "num_threads", "lr_at", "generate", "sample", "CharLM", "save", "load", "plot_history", "llama_inv_freq",
           "RMSNorm", "GroupedQueryAttention", "SwiGLU", "LlamaBlock", "Llama", "greedy"]


# ----------------------------------------------------------------------------------------------- tokenizer
class CharTokenizer:
    """Characters <-> ids; the vocabulary is every character of the training text, sorted (notebook 07)."""

    def __init__(self, chars: str):
        checks.text("chars", chars, blank_ok=True, fix="pass the vocabulary's characters, e.g. from_text(text)")
        if len(set(chars)) != len(chars):
            checks.fail(f"chars must be a non-empty string of distinct characters, got {len(chars)} chars with "
                        f"{len(chars) - len(set(chars))} repeated: build it with CharTokenizer.from_text(text)")
        self.chars = chars
        self._codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self._order = np.argsort(self._codes)

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Ids of ``text`` as a 1-D int64 tensor; a character outside the vocabulary raises ValueError."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        pos = np.searchsorted(self._codes[self._order], codes).clip(0, len(self.chars) - 1)
        ids = self._order[pos]
        bad = self._codes[ids] != codes
        if bad.any():
            raise ValueError(f"character {text[int(bad.argmax())]!r} is not in the vocabulary: "
                             "build the tokenizer from a text that contains it")
        return torch.from_numpy(ids)

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in torch.as_tensor(ids).flatten().tolist())


# ----------------------------------------------------------------------------------------------- config
@dataclass
class GPTConfig:
    """Sizes of a tiny GPT (notebook 07). ``pos`` is ``"sinusoidal"`` (fixed, as in the paper) or ``"learned"``."""

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
    """Multi-head ``softmax(Q Kᵀ / √d_k + M) V`` where M is -inf above the diagonal (notebook 07)."""

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
    """Position-wise ``W_2 GELU(W_1 x + b_1) + b_2``, 4x wider inside (notebook 07)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.down = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: ``x + attn(LN(x))``, then ``x + ffn(LN(x))`` (notebook 07)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.n_embd), CausalSelfAttention(cfg)
        self.ln2, self.ffn = nn.LayerNorm(cfg.n_embd), FeedForward(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class TinyGPT(nn.Module):
    """Decoder-only Transformer: embeddings, ``n_layer`` blocks, final LayerNorm, tied head (notebook 07)."""

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


# ----------------------------------------------------------------------------------------------- the RNN baseline
@dataclass
class RNNConfig:
    """Sizes of an RNN language model (notebook 07). ``cell`` is ``"lstm"`` or ``"gru"``."""

    vocab_size: int = 65
    n_embd: int = 256  # embedding = hidden size, so the head can be tied
    n_layer: int = 2
    cell: str = "lstm"
    dropout: float = 0.0
    block_size: int = 128  # training context, kept for the same data pipeline as the GPT

    def __post_init__(self):
        _check_sizes(self, ("vocab_size", "n_embd", "n_layer", "block_size"))
        checks.one_of("cell", self.cell, ("lstm", "gru"))


class RNNLM(nn.Module):
    """Embedding -> LSTM/GRU stack -> tied head: the pre-Transformer language model (notebook 07)."""

    def __init__(self, cfg: RNNConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        rnn = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        self.rnn = rnn(cfg.n_embd, cfg.n_embd, cfg.n_layer, batch_first=True,
                       dropout=cfg.dropout if cfg.n_layer > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight
        nn.init.normal_(self.tok_emb.weight, 0.0, 0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> Output:
        h, _ = self.rnn(self.drop(self.tok_emb(idx)))
        logits = self.head(self.drop(h))
        return Output(logits, _loss(logits, targets))


def _loss(logits, targets):
    if targets is None:
        return None
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def rnn_like(gpt_cfg: GPTConfig, cell: str = "lstm", n_layer: int = 2) -> RNNConfig:
    """The RNN config (hidden = embedding size) whose parameter count is closest to the GPT's (notebook 07)."""
    checks.one_of("cell", cell, ("lstm", "gru"))
    n_layer = checks.integer("n_layer", n_layer, low=1, fix="pass e.g. n_layer=2")
    target, gates = n_params(TinyGPT(gpt_cfg)), 4 if cell == "lstm" else 3
    # vocab·h (tied table) + layers · gates · (2h² + 2h) (input and recurrent weights, two biases)
    count = lambda h: gpt_cfg.vocab_size * h + n_layer * gates * (2 * h * h + 2 * h)  # noqa: E731
    hidden = min(range(4, 4097), key=lambda h: abs(count(h) - target))
    return RNNConfig(gpt_cfg.vocab_size, hidden, n_layer, cell, gpt_cfg.dropout, gpt_cfg.block_size)


# ----------------------------------------------------------------------------------------------- sizes and FLOPs
def n_params(model: nn.Module, non_embedding: bool = False) -> int:
    """Parameters, tied weights counted once; ``non_embedding`` leaves out the token (and learned position) table."""
    checks.boolean("non_embedding", non_embedding)
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        total -= model.tok_emb.weight.numel()
        if getattr(model, "pos_emb", None) is not None:
            total -= model.pos_emb.weight.numel()
    return total


def flops_per_token(n_params_: int, n_layer: int, n_embd: int, context: int, training: bool = True, *,
                    vocab_size: int = 0) -> float:
    """nanoGPT/PaLM arithmetic: ``6N + 6·V·d + 12·L·d·T`` FLOPs per trained token (forward only: a third)
    (notebook 07).

    ``6N``: 2 FLOPs per multiply-add per weight of the blocks (``N`` = parameters outside the token embedding),
    forward (2N) plus backward (4N); ``6·V·d``: the output head, a ``d × V`` product per token (2·V·d forward) that a
    tied head performs although its matrix is the embedding, left out of ``N``; ``12·L·d·T``: the attention scores
    and the weighted sum, which grow with the context length ``T``. Kaplan et al. (2020), section 2.1.
    """
    for name, value in (("n_params_", n_params_), ("n_layer", n_layer), ("n_embd", n_embd), ("context", context),
                        ("vocab_size", vocab_size)):
        checks.integer(name, value, low=0, fix="a count (0 leaves its term out)")
    checks.boolean("training", training)
    total = 6 * n_params_ + 6 * vocab_size * n_embd + 12 * n_layer * n_embd * context
    return total if training else total / 3


# ----------------------------------------------------------------------------------------------- data and training
def get_batch(ids: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator):
    """``batch_size`` random windows of ``ids``: inputs x [B, T] and targets y = x shifted by one (notebook 07)."""
    block_size = checks.integer("block_size", block_size, low=1, fix="the window length, such as 64")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="windows per batch, such as 32")
    if ids.numel() <= block_size + 1:
        raise ValueError(f"text of {ids.numel()} tokens is too short for block_size={block_size}: use more text")
    start = torch.randint(ids.numel() - block_size - 1, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    win = ids[start[:, None] + offsets]
    return win[:, :-1], win[:, 1:]


@torch.no_grad()
def estimate_loss(model: nn.Module, ids: torch.Tensor, block_size: int, n_windows: int = 64,
                  batch_size: int = 32) -> float:
    """Mean next-token cross-entropy (nats) over ``n_windows`` evenly spaced windows of ``ids`` (notebook 07).

    The windows are fixed, so every evaluation of every model sees the same text.
    """
    block_size = checks.integer("block_size", block_size, low=1, fix="the window length, such as 64")
    n_windows = checks.integer("n_windows", n_windows, low=1, fix="pass e.g. n_windows=64")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="windows per forward pass, such as 32")
    was_training = model.training
    model.eval()
    starts = torch.linspace(0, ids.numel() - block_size - 1, n_windows).long()
    offsets = torch.arange(block_size + 1)
    total = 0.0
    for chunk in starts.split(batch_size):
        win = ids[chunk[:, None] + offsets]
        total += model(win[:, :-1], win[:, 1:]).loss.item() * len(chunk)
    model.train(was_training)
    return total / n_windows


@dataclass
class History:
    """What notebook 07's training loop records: losses at each evaluation, samples, time and throughput."""

    step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    tokens_per_s: float = 0.0


@contextmanager
def num_threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (None: leave as is), restored afterwards (notebook 07)."""
    if n is not None:
        n = checks.integer("n", n, low=1, fix="the number of CPU threads, or None to leave it as is")
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to lr/10 (notebook 07)."""
    step = checks.integer("step", step, low=0, fix="the 0-based step number")
    steps = checks.integer("steps", steps, low=1, fix="the run's length in steps")
    lr = checks.real("lr", lr, low=0, fix="the peak learning rate, such as 1e-3")
    warmup = checks.integer("warmup", warmup, low=0, fix="pass 0 for no warm-up")
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------------------------- generation
@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to ``idx`` [B, T]; temperature 0 means greedy (notebook 07)."""
    max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=0, fix="the number of tokens to add")
    temperature = checks.real("temperature", temperature, low=0, fix="0 is greedy; 0.8 is a usual sampling value")
    if top_k is not None:
        top_k = checks.integer("top_k", top_k, low=1, fix="keep the k most likely tokens, or None for all")
    for _ in range(max_new_tokens):
        logits = model(idx[:, -model.config.block_size:]).logits[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
        idx = torch.cat([idx, nxt], dim=1)
    return idx


def sample(model: nn.Module, tokenizer: CharTokenizer, prompt: str = "\n", length: int = 200,
           temperature: float = 0.8, seed: int = 0) -> str:
    """``prompt`` continued by ``length`` sampled characters, reproducible with ``seed`` (notebook 07)."""
    checks.text("prompt", prompt, blank_ok=True, fix="pass at least one character to continue, e.g. '\\n'")
    length = checks.integer("length", length, low=0, fix="the number of characters to sample")
    seed = checks.seed("seed", seed)
    was_training = model.training
    model.eval()
    idx = tokenizer.encode(prompt)[None]
    out = generate(model, idx, length, temperature, generator=torch.Generator().manual_seed(seed))
    model.train(was_training)
    return tokenizer.decode(out[0])


# ----------------------------------------------------------------------------------------------- lmkit adapter
@dataclass(repr=False)
class CharLM:
    """A trained char model shaped like ``lmkit.LM`` (``.model .tokenizer .device .name .encode``), so that
    ``lmkit.metrics.perplexity`` works on it unchanged (use ``window=model.config.block_size``) (notebook 07)."""

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
    """Write a safetensors checkpoint with the config and vocabulary in its metadata, atomically (notebook 07).

    ``model`` is an :class:`RNNLM` or a GPT with :class:`TinyGPT`'s parameter names (notebook 07's cells write one);
    :func:`load` rebuilds it as a :class:`TinyGPT`.

    The file is written to a temporary name in the same folder and renamed over ``path``: a crash never leaves a
    half-written checkpoint. Tied weights are stored once.
    """
    from safetensors.torch import save_model

    from lmkit.files import atomic_file

    path = Path(path)
    kind = "rnn" if isinstance(model, RNNLM) else "gpt"  # a GPT written in cells loads back as a TinyGPT
    meta = {"kind": kind, "config": json.dumps(asdict(model.config)), "chars": json.dumps(tokenizer.chars)}
    with atomic_file(path) as tmp:
        save_model(model, str(tmp), metadata=meta)
    return path


def load(path: str | os.PathLike) -> CharLM:
    """Read a checkpoint written by :func:`save` back into a ready-to-use :class:`CharLM` (notebook 07)."""
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
    model = TinyGPT(GPTConfig(**cfg)) if meta["kind"] == "gpt" else RNNLM(RNNConfig(**cfg))
    load_model(model, path)
    return CharLM(model.eval(), CharTokenizer(json.loads(meta["chars"])), name=path.stem)


# ----------------------------------------------------------------------------------------------- plots
def plot_history(histories: dict[str, History], x: str = "step", ax=None):
    """Validation (solid) and training (dashed) loss of each run against ``x`` = "step" or "seconds" (notebook 07)."""
    import matplotlib.pyplot as plt

    checks.one_of("x", x, ("step", "seconds"))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, (name, h) in enumerate(histories.items()):
        xs = getattr(h, x)
        line, = ax.plot(xs, h.val_loss, marker=".", label=f"{name} validation", color=f"C{i}")
        ax.plot(xs, h.train_loss, ls="--", color=line.get_color(), alpha=0.7, label=f"{name} train")
    ax.set_xlabel("training step" if x == "step" else "training seconds (evaluation excluded)")
    ax.set_ylabel("cross-entropy (nats per character)")
    ax.set_title(f"Loss against {'steps' if x == 'step' else 'wall time'}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


# The GPT grown into Llama (notebook 13) lives in lmkit.llama; its names stay importable from here.
from lmkit.llama import (GroupedQueryAttention, Llama, LlamaBlock, RMSNorm, SwiGLU, greedy,  # noqa: E402,F401
                         llama_inv_freq)
