"""Exercise checkers of notebook 08 (inference profiling)."""
from __future__ import annotations

from .registry import _close, exercise


def _kv_per_token_value(config) -> int:
    """Values the KV cache stores per token: layers x 2 (K and V) x kv_heads x head_dim."""
    from lmkit.layers import head_dim

    return config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim(config)


@exercise("08.1", hint="layers x 2 (keys and values) x kv_heads x head_dim x tokens x batch x bytes per value; read "
                       "the four sizes from `config` (num_key_value_heads, not num_attention_heads), and a bfloat16 "
                       "value takes 2 bytes.")
def _kv_bytes(answer, *, config, tokens: int = 2048, batch: int = 4):
    return int(answer) == _kv_per_token_value(config) * tokens * batch * 2


@exercise("08.2", hint="bandwidth / bytes read per token. The bytes: every parameter once in bfloat16 (2 bytes; the "
                       "tied embedding is the output head, count it once) plus the bf16 KV cache of the context.")
def _decode_bound(answer, *, model, bandwidth: float, context: int = 256):
    unique = {p.data_ptr(): p.numel() for p in model.parameters()}
    read = 2 * sum(unique.values()) + 2 * _kv_per_token_value(model.config) * context
    return _close(answer, bandwidth / read, rel=1e-2)


Q4_1_BITS = 4 + (16 + 16) / 32
"""Bits per weight of GGUF's Q4_1: a 4-bit value per weight, plus an fp16 scale and an fp16 minimum per 32 weights."""


@exercise("08.3", hint="answer with three numbers (fp32, bf16, Q4_1): the measured bandwidth divided by 7e9 "
                       "parameters times the bytes per weight: 4, 2, and for Q4_1 (4 + 16/32 + 16/32) / 8 = 0.625 "
                       "(each group of 32 weights also stores an fp16 scale and an fp16 minimum).")
def _seven_b(answer, *, bandwidth: float):
    fp32, bf16, q4 = answer
    return all(_close(a, bandwidth / (7e9 * b), rel=1e-2) for a, b in zip((fp32, bf16, q4), (4, 2, Q4_1_BITS / 8)))


@exercise("08.4", hint="in section 2's `sweep`, keep the fp32 rows, find the peak (the largest GFLOP/s), and answer "
                       "the smallest n whose GFLOP/s is at least 0.9 × that peak.")
def _plateau(answer, *, sweep, dtype: str = "float32", share: float = 0.9):
    rows = sweep[sweep["dtype"] == dtype]
    peak = rows["GFLOP/s"].max()
    return int(answer) == int(rows.loc[rows["GFLOP/s"] >= share * peak, "n"].min())
