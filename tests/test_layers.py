"""lmkit.layers: each building block against transformers' own module, on tiny random models."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from lmkit import layers as L


def test_head_dim_reads_the_config_or_splits_the_hidden_size():
    assert L.head_dim(SimpleNamespace(head_dim=64, hidden_size=576, num_attention_heads=9)) == 64
    assert L.head_dim(SimpleNamespace(head_dim=None, hidden_size=48, num_attention_heads=6)) == 8
    assert L.head_dim(SimpleNamespace(hidden_size=32, num_attention_heads=4)) == 8
    with pytest.raises(ValueError, match="no head_dim"):
        L.head_dim(SimpleNamespace())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_equals_llama_rmsnorm(dtype):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    norm = LlamaRMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(16, generator=torch.Generator().manual_seed(0)))
    norm = norm.to(dtype)
    x = (torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(1)) * 7).to(dtype)
    with torch.no_grad():
        assert torch.equal(L.rms_norm(x, norm.weight, 1e-5), norm(x))
    manual = x.float() / torch.sqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5) * norm.weight.float()
    torch.testing.assert_close(L.rms_norm(x, norm.weight, 1e-5).float(), manual, atol=0.05, rtol=0.02)


def test_rope_tables_and_rotation_equal_transformers():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    cfg = LlamaConfig(hidden_size=48, num_attention_heads=6, num_key_value_heads=2,
                      rope_parameters={"rope_type": "default", "rope_theta": 500.0})
    rot = LlamaRotaryEmbedding(cfg)
    T, d = 40, L.head_dim(cfg)
    cos_m, sin_m = rot(torch.zeros(1), torch.arange(T)[None])
    assert L.rope_base(cfg) == 500.0
    cos, sin = L.rope_cos_sin(range(T), d, L.rope_base(cfg))
    torch.testing.assert_close(cos, cos_m[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(sin, sin_m[0], atol=1e-6, rtol=0)
    own = L.rope_cos_sin(range(T), frequencies=rot.inv_freq)  # the model's own frequencies, its own arithmetic
    assert torch.equal(own[0], cos_m[0]) and torch.equal(own[1], sin_m[0])
    q = torch.randn(1, 6, T, d, generator=torch.Generator().manual_seed(2))
    k = torch.randn(1, 2, T, d, generator=torch.Generator().manual_seed(3))
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos_m, sin_m)
    torch.testing.assert_close(L.apply_rope(q, range(T), 500.0), q_hf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(L.apply_rope(k, None, 500.0), k_hf, atol=1e-5, rtol=1e-5)
    assert torch.equal(L.apply_rotary(q, cos_m[0], sin_m[0]), q_hf)


def test_rope_is_the_pairwise_2x2_rotation():
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    pos, base = torch.tensor([0, 1, 7, 100, -3]), 100.0
    y = L.apply_rope(x, pos, base)
    for p in range(5):
        for i in range(4):
            angle = pos[p].item() * base ** (-2 * i / 8)
            a, b = x[p, i].item(), x[p, i + 4].item()
            assert y[p, i].item() == pytest.approx(a * math.cos(angle) - b * math.sin(angle), abs=1e-5)
            assert y[p, i + 4].item() == pytest.approx(a * math.sin(angle) + b * math.cos(angle), abs=1e-5)


def test_rope_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="even head dimension"):
        L.rope_frequencies(7)
    with pytest.raises(ValueError, match="needs head_dim"):
        L.rope_cos_sin(range(3))
    with pytest.raises(ValueError, match="rope_type 'yarn'"):
        L.rope_base(SimpleNamespace(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4}))
    with pytest.raises(ValueError, match="rope_type 'linear'"):
        L.rope_base(SimpleNamespace(rope_parameters=None, rope_scaling={"type": "linear", "factor": 2.0}))
    assert L.rope_base(SimpleNamespace(rope_theta=123.0)) == 123.0


def test_sinusoidal_encoding_formula():
    pe = L.sinusoidal_encoding(30, 6, base=100.0)
    for p, i in [(0, 0), (5, 1), (29, 2)]:
        assert pe[p, 2 * i].item() == pytest.approx(math.sin(p / 100.0 ** (2 * i / 6)), abs=1e-6)
        assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(p / 100.0 ** (2 * i / 6)), abs=1e-6)
    for bad in [(10, 7), (0, 4), (10, 0), (2.5, 4), (True, 4)]:
        with pytest.raises(ValueError):
            L.sinusoidal_encoding(*bad)
