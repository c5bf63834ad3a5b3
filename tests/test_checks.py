"""lmkit.checks: every check refuses bool, NaN, inf, 2.7-for-an-integer, out-of-range values and wrong types with a
one-line error that names the argument and the value; and lmkit's public functions use it before any work."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmkit import checks
from lmkit.checks import CheckError

NAN, INF = float("nan"), float("inf")


def _refuses(call, name, value, error=CheckError):
    """``call()`` raises ``error`` with one line holding ``name`` and the value as the message shows values."""
    with pytest.raises(error) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    assert name in message and checks.show(value) in message, message
    return message


# ----------------------------------------------------------------------------------------------- each check
@pytest.mark.parametrize("value", [True, False, 2.7, 3.0, NAN, INF, -INF, "3", None, [3], 0, 11, -1,
                                   np.float64(2.0), torch.tensor(3)])
def test_integer_refuses(value):
    _refuses(lambda: checks.integer("n", value, low=1, high=10), "n=", value)


@pytest.mark.parametrize("value", [True, NAN, INF, -INF, "0.5", None, -0.1, 1.5, 0.0])
def test_real_refuses(value):
    _refuses(lambda: checks.real("lr", value, low=0, high=1, low_open=True), "lr=", value)


@pytest.mark.parametrize("value", [True, False, NAN, INF, 1.5, -0.1, "0.5", None, 1.0])
def test_probability_refuses(value):
    _refuses(lambda: checks.probability("top_p", value, open_high=True), "top_p=", value)


@pytest.mark.parametrize("value", [True, False, -1, 2**32, 2.7, 0.0, NAN, INF, "0", None])
def test_seed_refuses(value):
    _refuses(lambda: checks.seed("seed", value), "seed=", value)


@pytest.mark.parametrize("value", [True, False, 2.7, 1.0, NAN, INF, 3, -4, "0", None])
def test_layer_index_refuses(value):
    message = _refuses(lambda: checks.layer_index("layer", value, 3), "layer=", value)
    assert "pass 0..2 (or -3..-1)" in message


@pytest.mark.parametrize("value", [True, 2.7, NAN, INF, 4, -1, "1"])
def test_index_without_negatives_refuses(value):
    message = _refuses(lambda: checks.index("head", value, 4, what="layers have 4 heads", negative=False),
                       "head=", value)
    assert "layers have 4 heads, pass 0..3" in message


@pytest.mark.parametrize("value", [True, 2.7, NAN, INF, "pac", None, 3])
def test_one_of_refuses(value):
    message = _refuses(lambda: checks.one_of("method", value, ("pca", "tsne", 1)), "method=", value)
    assert "'pca', 'tsne', 1" in message


def test_one_of_suggests_the_closest_spelling_and_keeps_the_fix():
    message = _refuses(lambda: checks.one_of("method", "pac", ("pca", "tsne"), fix="use 'pca' or 'tsne'"),
                       "method=", "pac")
    assert "did you mean 'pca'?" in message and message.endswith("use 'pca' or 'tsne'")


@pytest.mark.parametrize("value", [1, 0, "True", None, NAN, INF, 2.7, np.float64(1.0)])
def test_boolean_refuses(value):
    _refuses(lambda: checks.boolean("chat", value), "chat=", value)


@pytest.mark.parametrize("value", ["", "   ", "\n", 42, 2.7, True, NAN, INF, None, ["a"]])
def test_text_refuses(value):
    _refuses(lambda: checks.text("prompt", value), "prompt=", value)


def test_text_blank_ok_keeps_whitespace_but_not_nothing():
    assert checks.text("text", "  ", blank_ok=True) == "  "
    _refuses(lambda: checks.text("text", "", blank_ok=True), "text=", "")


@pytest.mark.parametrize("value", [[], "", " ", [""], ["a", " "], [1], [True], [NAN], 42, NAN, INF, True, None,
                                   {"a": 1}])
def test_texts_refuses(value):
    _refuses(lambda: checks.texts("positive", value, what="prompts"), "positive", value)


def test_accepted_values_come_back_as_plain_python():
    assert checks.integer("n", np.int64(3), low=1) == 3 and type(checks.integer("n", np.int64(3))) is int
    assert checks.real("x", np.float32(0.5)) == 0.5 and type(checks.real("x", 1)) is float
    assert checks.real("x", INF, finite=False) == INF
    _refuses(lambda: checks.real("x", NAN, finite=False), "x=", NAN)
    assert checks.probability("p", 0) == 0.0 and checks.probability("p", 1) == 1.0
    assert checks.seed("seed", 2**32 - 1) == 2**32 - 1
    assert checks.layer_index("layer", -1, 3) == 2 and checks.layer_index("layer", np.int32(1), 3) == 1
    assert checks.one_of("x", 1, (1, 2)) == 1
    assert checks.boolean("b", False) is False
    assert checks.texts("t", "one") == ["one"] and checks.texts("t", ("a", "b")) == ["a", "b"]
    assert checks.integer("d", 8, low=2, multiple_of=2) == 8
    _refuses(lambda: checks.integer("d", 7, low=2, multiple_of=2), "d=", 7)


def test_messages_name_the_rule_and_the_fix():
    with pytest.raises(CheckError, match=r"^max_new_tokens=2\.7 must be an integer >= 1: ask for at least one$"):
        checks.integer("max_new_tokens", 2.7, low=1, fix="ask for at least one")
    with pytest.raises(CheckError, match=r"^window=0 must be an integer of at least 2 tokens: default 1024$"):
        checks.integer("window", 0, low=2, must="an integer of at least 2 tokens", fix="default 1024")
    with pytest.raises(CheckError, match=r"^top_p=0\.0 must be in \(0, 1\]$"):
        checks.real("top_p", 0.0, low=0, high=1, low_open=True)
    with pytest.raises(CheckError, match=r"^layer=2\.7 is not an integer index: "):
        checks.layer_index("layer", 2.7, 3)


def test_long_or_multiline_values_are_cut_to_one_line():
    value = "line one\nline two " * 40
    with pytest.raises(CheckError) as err:
        checks.integer("n", value)
    assert "\n" not in str(err.value) and len(str(err.value)) < 200
    assert len(checks.show(list(range(1000)))) <= 80


def test_a_module_keeps_its_own_error_class():
    class SettingsError(ValueError):
        pass

    for call in (lambda: checks.integer("n", True, error=SettingsError),
                 lambda: checks.real("x", NAN, error=SettingsError),
                 lambda: checks.probability("p", 2, error=SettingsError),
                 lambda: checks.one_of("m", "x", ("a",), error=SettingsError),
                 lambda: checks.boolean("b", 1, error=SettingsError),
                 lambda: checks.seed("s", -1, error=SettingsError),
                 lambda: checks.layer_index("l", 9, 3, error=SettingsError),
                 lambda: checks.text("t", "", error=SettingsError),
                 lambda: checks.texts("t", [], error=SettingsError),
                 lambda: checks.fail("bad", SettingsError)):
        with pytest.raises(SettingsError):
            call()
    assert issubclass(CheckError, ValueError)


def test_is_integer_and_is_real():
    assert checks.is_integer(3) and checks.is_integer(np.int8(3))
    assert not any(checks.is_integer(v) for v in (True, 3.0, "3", None, NAN))
    assert checks.is_real(2.5) and checks.is_real(3) and checks.is_real(INF, finite=False)
    assert not any(checks.is_real(v) for v in (True, NAN, INF, -INF, "1", None))
    assert not checks.is_real(math.nan, finite=False)


def test_one_check_layer_refuses_true_under_every_old_name():
    from lmkit import interp
    from lmkit.attention import capture
    from lmkit.interp import hooks

    assert interp.check_layer is hooks.check_layer is capture.check_layer


# ----------------------------------------------------------------------------------------------- public functions
TEXT = "the cat sat on the mat and the dog ran to the house"


def _tiny_gpt_and_tokenizer():
    from lmkit import tinygpt as tg

    tok = tg.CharTokenizer.from_text("abc \n")
    model = tg.TinyGPT(tg.GPTConfig(vocab_size=len(tok), block_size=8, n_layer=1, n_head=2, n_embd=8))
    return model, tok


def _calls():
    """(id, argument name, call(lm, value)): public functions of different modules, ``value`` in an integer slot."""
    from lmkit import apps, attention, bpe, data, env, evaluation, fastdecode, interp, layers, llama, metrics
    from lmkit import compress, embeddings, ngram, tinygpt

    return [
        ("metrics.perplexity", "window", lambda lm, v: metrics.perplexity(lm, TEXT, window=v, progress=False)),
        ("metrics.token_nll", "stride", lambda lm, v: metrics.token_nll(lm, TEXT, window=8, stride=v)),
        ("interp.steering_vector", "layer", lambda lm, v: interp.steering_vector(lm, ["the cat"], ["the dog"], v)),
        ("interp.patch layers", "layer", lambda lm, v: interp.patch(lm, "the cat sat", "the dog sat",
                                                                            " on", " ran", layers=[v])),
        ("interp.repeated_tokens", "seq_len", lambda lm, v: interp.repeated_tokens(lm, seq_len=v)),
        ("interp.random_heads", "k", lambda lm, v: interp.random_heads(lm, v)),
        ("interp.ablation_edits", "head", lambda lm, v: interp.ablation_edits(lm, [(0, v)])),
        ("attention.recompute", "layer", lambda lm, v: attention.recompute(lm, TEXT, v)),
        ("attention.attentions", "max_tokens", lambda lm, v: attention.attentions(lm, TEXT, max_tokens=v)),
        ("embeddings.neighbours", "k", lambda lm, v: embeddings.neighbours(lm, "cat", k=v)),
        ("embeddings.project_2d", "seed", lambda lm, v: embeddings.project_2d(torch.randn(5, 3), "tsne", seed=v)),
        ("layers.rope_frequencies", "head_dim", lambda lm, v: layers.rope_frequencies(v)),
        ("layers.sinusoidal_encoding", "n_positions", lambda lm, v: layers.sinusoidal_encoding(v, 8)),
        ("env.seed_everything", "seed", lambda lm, v: env.seed_everything(v)),
        ("ngram.NGramLM", "order", lambda lm, v: ngram.NGramLM(v, 10)),
        ("bpe.BPE.train", "vocab_size", lambda lm, v: bpe.BPE.train("abc abc", v)),
        ("tinygpt.GPTConfig", "n_layer", lambda lm, v: tinygpt.GPTConfig(n_layer=v)),
        ("tinygpt.sample", "length", lambda lm, v: tinygpt.sample(*_tiny_gpt_and_tokenizer(), "a", v)),
        ("llama.greedy", "max_new_tokens", lambda lm, v: llama.greedy(lm.model, lm.encode(TEXT), v)),
        ("evaluation.accuracy_interval", "k", lambda lm, v: evaluation.accuracy_interval(v, 10)),
        ("evaluation.paired_difference", "confidence",
         lambda lm, v: evaluation.paired_difference([1, 0, 1], [0, 0, 1], confidence=v)),
        ("evaluation.shuffle_choices", "seed", lambda lm, v: evaluation.shuffle_choices(
            [{"question": "q", "choices": ["a", "b"], "answer": 0}], seed=v)),
        ("apps.qa_run", "k", lambda lm, v: apps.qa_run(lm, apps.qa_data()[:1], k=v, progress=False)),
        ("data.heldout_text", "max_chars", lambda lm, v: data.heldout_text(max_chars=v)),
        ("fastdecode.FastDecoder", "context_length", lambda lm, v: fastdecode.FastDecoder(lm, weights=None, context_length=v)),
        ("compress.prune_magnitude", "sparsity", lambda lm, v: compress.prune_magnitude(lm.model, v)),
    ]


@pytest.fixture
def forward_count(tiny_lm):
    calls = []
    handle = tiny_lm.model.register_forward_pre_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


@pytest.mark.parametrize("value", [True, 2.7], ids=["True", "2.7"])
@pytest.mark.parametrize("index", range(len(_calls())), ids=[c[0] for c in _calls()])
def test_public_functions_refuse_true_and_fractions_before_any_work(tiny_lm, forward_count, index, value):
    _, name, call = _calls()[index]
    before = [p.detach().clone() for p in tiny_lm.model.parameters()]
    with pytest.raises(ValueError) as err:
        call(tiny_lm, value)
    message = str(err.value)
    assert "\n" not in message
    assert f"{name}={value!r}" in message, message
    assert not forward_count  # refused before the model ran
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_lm.model.parameters()))  # and before it changed
