"""The real bundled model, end to end: load, greedy generation, the cached reload (marked integration)."""
import subprocess
import sys

import pytest
import torch

import lmkit
from lmkit import models

pytestmark = pytest.mark.integration


def test_bundled_model_shape(real_lm):
    cfg = real_lm.model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (30, 9, 3)
    assert (cfg.hidden_size, cfg.vocab_size) == (576, 49152)
    assert abs(real_lm.n_params / 1e6 - 134.5) < 0.1
    assert real_lm.tokenizer.eos_token == "<|im_end|>" and real_lm.tokenizer.model_max_length == 8192


def test_greedy_generation_knows_paris(real_lm):
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    ids = real_lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
    out = real_lm.model.generate(ids, max_new_tokens=8, do_sample=False)
    text = real_lm.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in text


def test_second_process_reads_the_cache_without_converting(real_lm):
    assert models.cache_is_valid(models.bundled_cache_dir(), models.bundled_gguf())
    code = ("import lmkit, lmkit.models as m\n"
            "m.convert_bundled = lambda *a, **k: (_ for _ in ()).throw(SystemExit('converted again'))\n"
            "lm = lmkit.load(device='cpu'); print(lm.n_params)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) == real_lm.n_params


def test_cached_weights_equal_the_gguf_dequantized(real_lm):
    from transformers import AutoModelForCausalLM

    gguf = models.bundled_gguf()
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    ours = real_lm.model.state_dict()
    for name, tensor in direct.state_dict().items():
        torch.testing.assert_close(ours[name], tensor, rtol=0, atol=0, msg=name)
