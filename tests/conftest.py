"""Shared fixtures: a tiny random Llama with a word-level tokenizer, saved as a normal model folder; the real model.

Integration tests are those marked ``@pytest.mark.integration`` (registered in pyproject.toml), and only those: a
test that asks for ``real_lm`` without the marker is refused at collection (see tests/README.md).
"""
from __future__ import annotations

import pytest
import torch

WORDS = ("the a cat dog sat on mat and ran to house big small red blue one two three four five is was "
         "it he she we they saw ate old new . , ! ?").split()
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def make_tokenizer():
    """A word-level fast tokenizer over WORDS plus the SmolLM2-style special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  unk_token="<unk>", pad_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_model(vocab_size: int, seed: int = 0, **overrides):
    """A tiny LlamaForCausalLM with the default model's shape ratios (GQA, tied embeddings)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
               tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    cfg.update(overrides)
    model = LlamaForCausalLM(LlamaConfig(**cfg))
    model.generation_config.pad_token_id = 0
    return model.eval()


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A folder holding a tiny random Llama and its tokenizer, loadable with ``lmkit.load(folder)``."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = make_tokenizer()
    make_model(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lm(tiny_folder):
    """The tiny model loaded through ``lmkit.load``, on the CPU in float32."""
    import lmkit

    return lmkit.load(tiny_folder, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def real_lm():
    """The bundled SmolLM2-135M-Instruct (integration tests only)."""
    import lmkit

    return lmkit.load(device="cpu")


REAL_MODEL_FIXTURES = {"real_lm"}


def pytest_collection_modifyitems(config, items):
    """Integration by marker only: a test that uses the real model must say so, so that ``-m "not integration"``
    leaves exactly the fast tests."""
    unmarked = [item.nodeid for item in items if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ()))
                and not item.get_closest_marker("integration")]
    if unmarked:
        raise pytest.UsageError("these tests use the real model but lack @pytest.mark.integration: "
                                + ", ".join(unmarked))
