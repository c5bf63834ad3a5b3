"""Sampling from the tiny GPT: temperature and top-k over its characters (notebook 10)."""
from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F

from lmkit import checks
from lmkit.tinygpt.tokenizer import CharTokenizer


@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to ``idx`` [B, T]; temperature 0 means greedy (notebook 10)."""
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
    """``prompt`` continued by ``length`` sampled characters, reproducible with ``seed`` (notebook 10)."""
    checks.text("prompt", prompt, blank_ok=True, fix="pass at least one character to continue, e.g. '\\n'")
    length = checks.integer("length", length, low=0, fix="the number of characters to sample")
    seed = checks.seed("seed", seed)
    was_training = model.training
    model.eval()
    idx = tokenizer.encode(prompt)[None]
    out = generate(model, idx, length, temperature, generator=torch.Generator().manual_seed(seed))
    model.train(was_training)
    return tokenizer.decode(out[0])
