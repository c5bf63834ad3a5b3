"""The recurrent baseline of notebook 10: an LSTM or GRU language model with the GPT's data and budget."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from lmkit import checks
from lmkit.tinygpt.model import GPT, GPTConfig, Output, _check_sizes, _loss
from lmkit.tinygpt.sizes import n_params


@dataclass
class RNNConfig:
    """Sizes of an RNN language model (notebook 10). ``cell`` is ``"lstm"`` or ``"gru"``."""

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
    """Embedding -> LSTM/GRU stack -> tied head: the pre-Transformer language model (notebook 10)."""

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


def rnn_like(gpt_cfg: GPTConfig, cell: str = "lstm", n_layer: int = 2) -> RNNConfig:
    """The RNN config (hidden = embedding size) whose parameter count is closest to the GPT's (notebook 10)."""
    checks.one_of("cell", cell, ("lstm", "gru"))
    n_layer = checks.integer("n_layer", n_layer, low=1, fix="pass e.g. n_layer=2")
    target, gates = n_params(GPT(gpt_cfg)), 4 if cell == "lstm" else 3
    # vocab·h (tied table) + layers · gates · (2h² + 2h) (input and recurrent weights, two biases)
    count = lambda h: gpt_cfg.vocab_size * h + n_layer * gates * (2 * h * h + 2 * h)  # noqa: E731
    hidden = min(range(4, 4097), key=lambda h: abs(count(h) - target))
    return RNNConfig(gpt_cfg.vocab_size, hidden, n_layer, cell, gpt_cfg.dropout, gpt_cfg.block_size)
