"""SmolLM2's architecture written from the formulas: the GPT of notebook 10 grown into Llama (notebook 11).

RMSNorm instead of LayerNorm, RoPE instead of added positions, grouped-query attention, a SwiGLU feed-forward, no
biases, a tied head. Parameter names follow transformers' ``LlamaForCausalLM``, so its state dict loads as it is.
Notebook 11 writes the same classes in its cells, with the same names (``RMSNorm``, ``Attention``, ``MLP``, ``Block``,
``SmolLM2``), and asserts they agree; the tests use this copy
(tests/test_smollm2_scratch.py: logits equal to transformers' on a tiny random config and on the real model).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmkit import checks
from lmkit.layers import apply_rotary, head_dim, rms_norm, rope_base, rope_cos_sin

__all__ = ["llama_inv_freq", "RMSNorm", "Attention", "MLP", "Block", "SmolLM2", "greedy", "Llama",
           "GroupedQueryAttention", "SwiGLU", "LlamaBlock"]


def llama_inv_freq(cfg) -> torch.Tensor:
    """RoPE's ``ω_i = θ^(-2i/d)`` computed in float32 as transformers does (float64 then rounded differs by one
    ulp, which shows in the logits at 1e-5) (notebook 11)."""
    hd = head_dim(cfg)
    return 1.0 / rope_base(cfg) ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x²) + eps) · weight`` (Zhang & Sennrich 2019), via :func:`lmkit.layers.rms_norm` (notebook 11)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        dim = checks.integer("dim", dim, low=1, fix="the hidden size, e.g. 576")
        eps = checks.real("eps", eps, low=0, low_open=True, fix="the config's rms_norm_eps, e.g. 1e-5")
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class Attention(nn.Module):
    """Causal attention with RoPE on queries and keys; ``n_head / n_kv_head`` query heads share each key/value head
    (Ainslie et al. 2023, GQA) (notebook 11)."""

    def __init__(self, cfg):
        super().__init__()
        d, self.hd = cfg.hidden_size, head_dim(cfg)
        self.n_head, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.q_proj = nn.Linear(d, self.n_head * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.n_head * self.hd, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.hd).transpose(1, 2)  # [B, heads, T, hd]
        k = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)  # [B, kv_heads, T, hd]
        v = self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        group = self.n_head // self.n_kv  # query heads per key/value head
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        # times hd^-0.5, as transformers writes it: dividing by sqrt(hd) rounds differently unless sqrt(hd) is a
        # power of two (head size 64 is; 80 is not), and the logits would no longer be bitwise equal
        scores = q @ k.transpose(-2, -1) * self.hd ** -0.5
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        y = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    """Gated feed-forward ``W_down (SiLU(W_gate x) ⊙ W_up x)`` (Shazeer 2020) (notebook 11)."""

    def __init__(self, cfg):
        super().__init__()
        d, f = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """Pre-norm block: ``x + attn(RMSNorm(x))``, then ``x + SwiGLU(RMSNorm(x))`` (notebook 11)."""

    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class SmolLM2(nn.Module):
    """SmolLM2's architecture from scratch; ``SmolLM2(config)(ids [B, T]) -> logits [B, T, vocab]`` (notebook 11).

    ``config`` is a transformers ``LlamaConfig`` (default RoPE only: :func:`lmkit.layers.rope_base` refuses scaled
    types; no attention or MLP biases). The head is tied to the embedding when ``tie_word_embeddings`` is set.
    """

    def __init__(self, cfg):
        super().__init__()
        if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
            raise ValueError("this Llama has no bias terms and the config asks for them (attention_bias or "
                             "mlp_bias): use the transformers model for it")
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.tied = bool(getattr(cfg, "tie_word_embeddings", True))
        self.lm_head = None if self.tied else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.register_buffer("inv_freq", llama_inv_freq(cfg), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        cos, sin = rope_cos_sin(torch.arange(ids.shape[1], device=ids.device), frequencies=self.inv_freq)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        head = self.embed_tokens.weight if self.tied else self.lm_head.weight
        return self.norm(x) @ head.T

    def load_hf_state_dict(self, state_dict: dict) -> "SmolLM2":
        """Copy a transformers ``LlamaForCausalLM`` state dict in (names without ``model.``; a tied ``lm_head``
        dropped); a missing or unexpected tensor raises (notebook 11)."""
        ours = {k.removeprefix("model."): v for k, v in state_dict.items()
                if not (self.tied and k == "lm_head.weight")}
        self.load_state_dict(ours, strict=True)
        return self

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> "SmolLM2":
        """A Llama with the config and safetensors weights of a transformers model folder, e.g.
        :func:`lmkit.models.bundled_cache_dir` (notebook 11)."""
        from safetensors.torch import load_file
        from transformers import AutoConfig

        folder = Path(folder)
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise ValueError(f"no *.safetensors file in {str(folder)!r}: pass a transformers model folder "
                             "(lmkit.models.bundled_cache_dir() after lmkit.load())")
        cfg = AutoConfig.from_pretrained(folder)
        state = {k: v for f in files for k, v in load_file(f).items()}
        with torch.device("meta"):
            model = cls(cfg)
        model.to_empty(device="cpu")
        model.inv_freq = llama_inv_freq(cfg)  # a non-persistent buffer: to_empty left it uninitialised
        return model.load_hf_state_dict({k: v.float() for k, v in state.items()}).eval()


@torch.no_grad()
def greedy(model: nn.Module, ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Append ``max_new_tokens`` argmax tokens to ``ids`` [1, T], recomputing the whole sequence each step (no KV
    cache: the plain loop that notebook 08 makes fast) (notebook 11)."""
    max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=0, fix="the number of tokens to add")
    for _ in range(max_new_tokens):
        ids = torch.cat([ids, model(ids)[:, -1:].argmax(-1)], dim=1)
    return ids


# The names these classes had before they were named as notebook 11's cells name them.
Llama, GroupedQueryAttention, SwiGLU, LlamaBlock = SmolLM2, Attention, MLP, Block
