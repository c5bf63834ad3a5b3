"""lmkit.fastdecode: the hand-written Llama decoder of notebook 08, on the tiny model (and the real one, once)."""
import copy

import pytest
import torch

from lmkit import fastdecode as FD


@pytest.fixture(scope="module")
def wide_lm(tiny_lm):
    """A tiny Llama whose matrices suit the int4 kernel (inputs a multiple of 32), vocabulary NOT a multiple of 16."""
    from conftest import make_model

    lm = copy.copy(tiny_lm)
    lm.model = make_model(tiny_lm.model.config.vocab_size, seed=1, hidden_size=64, intermediate_size=128,
                          num_attention_heads=4, num_key_value_heads=2)
    lm.model.eval()
    return lm


def test_fp32_logits_and_tokens_equal_the_models(tiny_lm):
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    dec = FD.FastDecoder(tiny_lm.model, weights=None, context_length=32)  # the torch model works as well as the LM
    with torch.inference_mode():
        ref_logits = tiny_lm.model(ids).logits
    assert torch.allclose(dec.logits(ids), ref_logits, atol=1e-5)
    ref = tiny_lm.model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False)[:, 5:].tolist()
    s = dec(ids, 8)
    assert s.tokens == ref and s.new_tokens == 8 and s.prompt_tokens == 5 and dec.compile_s == 0
    assert dec(torch.tensor([[3, 4]]), 3).tokens == tiny_lm.model.generate(
        torch.tensor([[3, 4]]), max_new_tokens=3, min_new_tokens=3, do_sample=False)[:, 2:].tolist()
    assert dec(ids, 8).tokens == ref  # a shorter call in between left stale cache slots: they stay masked


def test_quantized_weights_stay_close_and_read_fewer_bytes(wide_lm):
    vocab = wide_lm.model.config.vocab_size
    assert vocab % 16, "the fixture must exercise the int4 row padding"
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.inference_mode():
        ref = torch.log_softmax(wide_lm.model(ids).logits, -1)
    sizes = {}
    for weights in (None, "int8", "int4"):
        dec = FD.FastDecoder(wide_lm, weights=weights, context_length=32)
        got = torch.log_softmax(dec.logits(ids), -1)
        assert got.shape == ref.shape
        kl = torch.nn.functional.kl_div(got, ref, log_target=True, reduction="batchmean").item()
        assert kl < 0.02, (weights, kl)
        sizes[weights] = dec.weight_bytes()
        assert dec(ids, 4).new_tokens == 4
        # every weight, the lookup-only table as one row, and the whole 32-slot KV buffer that attention reads
        c = wide_lm.model.config
        embed = dec.net.embed  # looked up only, one row read, when the head is a quantized copy of it
        lookup = 0 if weights is None else (embed.shape[0] - 1) * embed.shape[1] * embed.element_size()
        kv = c.num_hidden_layers * 2 * c.num_key_value_heads * (c.hidden_size // c.num_attention_heads) * 32 * 4
        assert dec.decode_bytes(10) == dec.decode_bytes(0) == dec.decode_bytes(32) == dec.weight_bytes() - lookup + kv
        with pytest.raises(ValueError, match="context=33"):
            dec.decode_bytes(33)
    fp32 = sum(p.numel() * 4 for p in wide_lm.model.parameters())
    assert sizes[None] == fp32
    assert sizes["int4"] < sizes["int8"] < fp32 / 2


def test_int4_reproduces_a_weight_on_the_q4_1_grid():
    torch.manual_seed(0)
    n, k = 48, 64
    scale = torch.rand(n, k // 32, 1) * 0.01 + 0.001
    lo = torch.randn(n, k // 32, 1) * 0.05
    q = torch.randint(0, 16, (n, k // 32, 32)).float()
    q[..., 0], q[..., 1] = 0, 15  # every group spans the whole grid, as a Q4_1 block's min and max do
    w = (lo + q * scale).view(n, k)
    x = torch.randn(3, k)
    out = FD._Int4(w, torch.float32)(x)
    assert torch.allclose(out, x @ w.T, atol=1e-4)


def test_bad_input_is_refused_with_the_fix(tiny_lm, wide_lm):
    with pytest.raises(ValueError, match="weights='int2'"):
        FD.FastDecoder(tiny_lm, weights="int2")
    with pytest.raises(ValueError, match=r"\(32 here\) to be a multiple of group=64"):
        FD.FastDecoder(tiny_lm, weights="int4", group=64)  # hidden size 32
    dec = FD.FastDecoder(wide_lm, weights=None, context_length=8)
    with pytest.raises(ValueError, match="context_length=10"):
        dec(torch.tensor([[1, 2, 3, 4, 5, 6]]), 4)
    with pytest.raises(ValueError, match="a batch of 2"):
        dec(torch.tensor([[1, 2], [3, 4]]), 2)
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        dec(torch.tensor([[1, 2]]), 0)
    biased = torch.nn.Module()
    biased.config = copy.copy(tiny_lm.model.config)
    biased.config.attention_bias = True
    with pytest.raises(ValueError, match="attention_bias or mlp_bias"):
        FD.FastDecoder(biased)
    other = copy.copy(tiny_lm.model.config)
    other.model_type = "gpt2"
    fake = torch.nn.Module()
    fake.config = other
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        FD.FastDecoder(fake)


def test_compiled_step_gives_the_eager_tokens(wide_lm):
    ids = torch.tensor([[5, 6, 7]])
    eager = FD.FastDecoder(wide_lm, weights=None, context_length=16)(ids, 5)
    dec = FD.FastDecoder(wide_lm, weights=None, context_length=16, compile=True)
    assert dec(ids, 5).tokens == eager.tokens and dec.compile_s > 0
    assert dec(ids, 5).tokens == eager.tokens
