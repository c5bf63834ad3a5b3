"""The Llama written from scratch (notebook 11) against transformers' LlamaForCausalLM."""
from __future__ import annotations

import pytest
import torch

from lmkit import tinygpt as tg
from tests.conftest import make_model


@pytest.mark.parametrize("tied", [True, False])
def test_scratch_llama_matches_transformers_on_a_tiny_config(tied):
    hf = make_model(50, num_attention_heads=6, num_key_value_heads=2, hidden_size=48, rope_theta=5000.0,
                    tie_word_embeddings=tied)
    ours = tg.Llama(hf.config).load_hf_state_dict(hf.state_dict()).eval()
    ids = torch.randint(50, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = hf(ids).logits, ours(ids)
    assert got.shape == (2, 17, 50)
    assert (got - want).abs().max().item() < 1e-5
    assert (ours.lm_head is None) == tied  # a tied head is the embedding itself, with no weight of its own
    greedy = tg.greedy(ours, ids[:1, :5], 6)
    assert torch.equal(greedy, hf.generate(ids[:1, :5], max_new_tokens=6, do_sample=False))


def test_a_missing_weight_is_refused_and_bias_configs_too():
    hf = make_model(50)
    state = hf.state_dict()
    state.pop("model.layers.1.mlp.up_proj.weight")
    with pytest.raises(RuntimeError, match="up_proj"):
        tg.Llama(hf.config).load_hf_state_dict(state)
    with pytest.raises(ValueError, match="attention_bias"):
        tg.Llama(make_model(50, attention_bias=True).config)


def test_from_folder_needs_safetensors(tmp_path):
    with pytest.raises(ValueError, match="no \\*.safetensors"):
        tg.Llama.from_folder(tmp_path)


@pytest.mark.integration
def test_scratch_smollm2_matches_the_real_model(real_lm):
    from lmkit.data import corpus
    from lmkit.models import bundled_cache_dir

    ours = tg.Llama.from_folder(bundled_cache_dir())
    ids = real_lm.encode(corpus("validation")[4000:6000])[:, :200]
    with torch.no_grad():
        diff = (ours(ids) - real_lm.model(ids).logits.float()).abs().max().item()
    assert diff < 1e-4, diff


def test_cached_greedy_checker_accepts_the_greedy_tokens_and_refuses_others(tiny_lm, monkeypatch):
    from lmkit.exercises import check

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)  # a wrong answer returns False, not raises

    prompt = torch.tensor([[5, 9, 13, 7]])
    ids = prompt
    with torch.no_grad():
        for _ in range(4):
            ids = torch.cat([ids, tiny_lm.model(ids).logits[:, -1:].argmax(-1)], dim=1)
    assert check("11.3", ids, lm=tiny_lm, prompt=prompt)
    wrong = ids.clone()
    wrong[0, -1] = (wrong[0, -1] + 1) % tiny_lm.model.config.vocab_size
    assert not check("11.3", wrong, lm=tiny_lm, prompt=prompt)
    assert not check("11.3", prompt, lm=tiny_lm, prompt=prompt)  # no new token
    assert not check("11.3", torch.cat([prompt[:, 1:], ids[:, 4:]], 1), lm=tiny_lm, prompt=prompt)  # not the prompt
    assert check("11.3", ids, lm=tiny_lm, prompt=prompt, n_new=4)
    assert not check("11.3", ids[:, :-1], lm=tiny_lm, prompt=prompt, n_new=4)  # right tokens, one too few
    assert not check("11.3", ids, lm=tiny_lm, prompt=prompt, n_new=5)  # one too many for the length asked



def test_scratch_llama_is_bitwise_equal_to_eager_transformers_even_at_head_size_80(monkeypatch):
    """The scale is applied as transformers applies it (times hd^-0.5). The control divides by sqrt(hd) instead,
    which rounds differently when sqrt(hd) is not a power of two, so the check can fail (notebook 11, section 7)."""
    import math

    from lmkit import llama

    hf = make_model(50, hidden_size=160, num_attention_heads=2, num_key_value_heads=1)  # head size 80
    hf.set_attn_implementation("eager")
    ours = llama.SmolLM2(hf.config).load_hf_state_dict(hf.state_dict()).eval()
    ids = torch.randint(50, (2, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), tg.num_threads(1):
        want = hf(ids).logits
        assert torch.equal(ours(ids), want)

        def divided(self, x, cos, sin):  # the same attention with q·k / sqrt(hd)
            B, T, _ = x.shape
            q = self.q_proj(x).view(B, T, self.n_head, self.hd).transpose(1, 2)
            k = self.k_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
            v = self.v_proj(x).view(B, T, self.n_kv, self.hd).transpose(1, 2)
            q, k = llama.apply_rotary(q, cos, sin), llama.apply_rotary(k, cos, sin)
            g = self.n_head // self.n_kv
            k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.hd)
            causal = torch.ones(T, T, dtype=torch.bool).tril()
            y = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v
            return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))

        monkeypatch.setattr(llama.Attention, "forward", divided)
        got = ours(ids)
    assert not torch.equal(got, want)  # another rounding: the bitwise check sees it
    assert (got - want).abs().max().item() < 1e-5  # and it is only rounding
