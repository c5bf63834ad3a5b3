"""lmkit.embeddings (notebook 02): unit tests on tiny random models, integration tests on the real ones."""
import numpy as np
import pytest
import torch

from lmkit import embeddings as E
from conftest import make_tokenizer


# ----------------------------------------------------------------------------------------------- sentence encoder
@pytest.fixture(scope="module")
def tiny_encoder():
    from transformers import BertConfig, BertModel

    tok = make_tokenizer()
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    return E.Encoder(model=BertModel(cfg).eval(), tokenizer=tok, max_length=32, name="tiny-bert")


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(E.mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_sentence_embeddings_are_unit_mean_pooled_and_batch_independent(tiny_encoder):
    texts = ["the cat sat on the mat .", "a dog ran", "she saw the big red house and the small blue house"]
    batched = E.sentence_embeddings(texts, tiny_encoder)
    assert batched.shape == (3, 16)
    assert torch.allclose(batched.norm(dim=-1), torch.ones(3), atol=1e-5)
    # padding the short rows must not change them: each row equals the row computed alone
    alone = torch.cat([E.sentence_embeddings(t, tiny_encoder) for t in texts])
    assert torch.allclose(batched, alone, atol=1e-5)
    # and the row is the normalised mean of the encoder's token vectors
    batch = tiny_encoder.tokenizer(texts[1], return_tensors="pt")
    with torch.no_grad():
        mean = tiny_encoder.model(**batch).last_hidden_state[0].mean(0)
    assert torch.allclose(batched[1], mean / mean.norm(), atol=1e-5)
    # batching in chunks gives the same rows
    assert torch.allclose(E.sentence_embeddings(texts, tiny_encoder, batch_size=2), batched, atol=1e-5)


@pytest.mark.parametrize("bad", [[], [1, 2], None])
def test_sentence_embeddings_rejects_bad_input(tiny_encoder, bad):
    with pytest.raises(ValueError, match="list of strings"):
        E.sentence_embeddings(bad, tiny_encoder)


@pytest.mark.integration
def test_minilm_encoder_is_cached_and_meaningful():
    enc = E.load_encoder()
    assert E.load_encoder() is enc
    assert enc.dim == 384 and enc.max_length == 256
    assert abs(sum(p.numel() for p in enc.model.parameters()) / 1e6 - 22.7) < 0.1
    v = E.sentence_embeddings(["A man is playing a guitar.", "Someone plays an instrument.",
                               "The stock market fell sharply today."])
    assert v.shape == (3, 384)
    sim = v @ v.T
    assert torch.allclose(sim.diagonal(), torch.ones(3), atol=1e-5)
    assert sim[0, 1] > sim[0, 2] + 0.2, sim


# ----------------------------------------------------------------------------------------------- tokens
def test_piece_bytes_maps_byte_level_pieces_back_to_bytes():
    assert E.piece_bytes("Ġcat") == b" cat"
    assert E.piece_bytes("è¯") + E.piece_bytes("Ń") == "语".encode("utf-8")
    assert E.piece_bytes("<unk>") == b"<unk>"


def test_tokens_table_covers_the_text(tiny_lm):
    table = E.tokens(tiny_lm, "the cat sat on a zebra")
    assert list(table["piece"]) == ["the", "cat", "sat", "on", "a", "<unk>"]
    assert list(table["covers"]) == ["the", "cat", "sat", "on", "a", "zebra"]
    assert list(table["id"]) == tiny_lm.tokenizer("the cat sat on a zebra", add_special_tokens=False).input_ids
    with pytest.raises(ValueError, match="non-empty string"):
        E.tokens(tiny_lm, "")


def test_token_counts_detects_a_failed_round_trip(tiny_lm):
    counts = E.token_counts(tiny_lm, {"known": "the cat sat", "unknown": "the zebra sat"})
    assert counts.loc["known", "tokens"] == 3 and counts.loc["known", "characters"] == 11
    assert bool(counts.loc["known", "round trip"]) and not bool(counts.loc["unknown", "round trip"])


# ----------------------------------------------------------------------------------------------- embedding matrix
def test_one_hot_times_w_equals_lookup_and_head_is_tied(tiny_lm):
    W = E.embedding_matrix(tiny_lm)
    assert W.shape == (tiny_lm.model.config.vocab_size, 32)
    ids = tiny_lm.encode("the big red dog ran")[0]
    with torch.no_grad():
        assert torch.equal(E.one_hot_embed(tiny_lm, ids), W[ids])
        out = tiny_lm.model(ids[None], output_hidden_states=True)
    assert torch.equal(out.hidden_states[0][0], W[ids].detach())
    assert tiny_lm.model.get_output_embeddings().weight.data_ptr() == W.data_ptr()
    torch.testing.assert_close(out.hidden_states[-1][0] @ W.detach().T, out.logits[0], rtol=1e-4, atol=1e-5)


def test_word_vectors_and_leading_space(tiny_lm):
    tok = tiny_lm.tokenizer
    assert E.word_ids(tiny_lm, "cat") == tok(" cat", add_special_tokens=False).input_ids
    assert E.word_ids(tiny_lm, "猫", leading_space=True)[0] == tok.unk_token_id  # no space added to CJK
    vecs, counts = E.word_vectors(tiny_lm, ["cat", "big dog"])
    W = E.embedding_matrix(tiny_lm).detach()
    assert counts == [1, 2]
    assert torch.allclose(vecs[1], W[tok.convert_tokens_to_ids(["big", "dog"])].mean(0))
    with pytest.raises(ValueError, match="empty word"):
        E.word_vectors(tiny_lm, ["cat", " "])


def test_neighbours_rank_by_cosine(tiny_lm):
    W = E.embedding_matrix(tiny_lm).detach()
    cat = tiny_lm.tokenizer.convert_tokens_to_ids("cat")
    table = E.neighbours(tiny_lm, W[cat], k=5)  # a vector: the token itself comes first, at cosine 1
    assert table["id"].iloc[0] == cat and abs(table["cosine"].iloc[0] - 1) < 1e-4
    assert table["cosine"].is_monotonic_decreasing and len(table) == 5
    cos = torch.nn.functional.cosine_similarity(W, W[cat][None], dim=-1)
    assert list(table["id"]) == cos.argsort(descending=True)[:5].tolist()
    by_word = E.neighbours(tiny_lm, "cat", k=3)  # a word: its own variants are skipped
    assert "cat" not in set(by_word["token"].str.strip().str.lower())
    with pytest.raises(ValueError, match="positive integer"):
        E.neighbours(tiny_lm, "cat", k=0)
    with pytest.raises(ValueError, match="vector of size 32"):
        E.neighbours(tiny_lm, torch.zeros(5))


# ----------------------------------------------------------------------------------------------- maps and widget
def test_project_2d_pca_matches_sklearn_and_checks_input():
    from sklearn.decomposition import PCA

    X = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    xy = E.project_2d(X, "pca")
    assert xy.shape == (10, 2)
    ref = PCA(n_components=2).fit_transform(X.numpy())
    assert abs(abs((xy * ref).sum()) - (ref * ref).sum()) < 1e-3  # same axes up to sign
    assert E.project_2d(X, "t-SNE").shape == (10, 2)
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        E.project_2d(X, "umap")
    with pytest.raises(ValueError, match="at least 3"):
        E.project_2d(X[:2])


DEGENERATE = {  # input -> the start of the one-line message (None: a well-defined map)
    "identical rows": ("np.ones((3, 16))", "the 3 vectors hold only 1 different"),
    "all zeros": ("np.zeros((4, 8))", None),
    "two distinct rows": ("np.array([[1., 0.], [0., 1.], [1., 0.], [0., 1.]])", "the 4 vectors hold only 2 different"),
    "same direction": ("np.outer([1., 2., 3.], np.arange(1., 9.))", None),
    "a NaN": ("np.where(np.eye(4, 6) > 0, np.nan, 1.0) + np.arange(4)[:, None]", "rows [0, 1, 2, 3] hold NaN"),
    "infinity": ("np.vstack([np.eye(3, 5), [np.inf] * 5])", "rows [3] hold NaN or infinite"),
    "two rows": ("np.eye(2, 5)", "need at least 3 vectors"),
    "one column": ("np.arange(5.)[:, None]", "the vectors have 1 dimension"),
    "a vector": ("np.arange(5.)", "need at least 3 vectors"),
    "text": ("[['a', 'b'], ['c', 'd'], ['e', 'f']]", "cannot read list"),
}


def test_project_2d_degenerate_input_gives_a_message_never_a_crash():
    """Every case in one child process: scikit-learn's t-SNE ends the process (SIGSEGV) on identical rows if not
    guarded, which would show here as a non-zero exit code and missing lines."""
    import json
    import subprocess
    import sys

    code = ("import json, sys\nimport numpy as np\nfrom lmkit.embeddings import project_2d\n"
            "for case, method, expr in json.loads(sys.argv[1]):\n"
            "    try:\n        xy = project_2d(eval(expr), method)\n"
            "        out = f'OK {xy.shape} {bool(np.isfinite(xy).all())}'\n"
            "    except ValueError as e:\n        out = f'ValueError {e}'\n"
            "    print(json.dumps([case, method, out]), flush=True)\n")
    jobs = [(case, method, expr) for case, (expr, _) in sorted(DEGENERATE.items()) for method in ("pca", "tsne")]
    run = subprocess.run([sys.executable, "-c", code, json.dumps(jobs)], capture_output=True, text=True,
                         timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert run.returncode == 0, (run.returncode, run.stdout[-500:], run.stderr[-500:])
    results = {(case, method): out for case, method, out in map(json.loads, run.stdout.splitlines())}
    assert len(results) == len(jobs)
    for (case, method), out in results.items():
        message = DEGENERATE[case][1]
        if case == "all zeros":
            message = "rows [0, 1, 2, 3] are all zeros" if method == "tsne" else "the 4 vectors hold only 1 different"
        if message is not None:
            assert out.startswith("ValueError " + message), (case, method, out)
        else:  # 3 directions that may differ only by rounding: a map, or refused; never a crash
            assert out.startswith(("OK (3, 2) True", "ValueError the vectors point the same way",
                                   "ValueError the 3 vectors hold only")), (case, method, out)
        assert "\n" not in out


def test_project_2d_repeated_rows_share_their_point():
    X = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    rows = [0, 1, 0, 2, 3, 3, 4, 0]
    for method in ("pca", "tsne"):
        xy = E.project_2d(X[rows], method)
        assert xy.shape == (8, 2) and np.isfinite(xy).all()
        for i, a in enumerate(rows):
            for j, b in enumerate(rows):
                assert np.allclose(xy[i], xy[j]) == (a == b), (method, i, j)
    # without repeats t-SNE sees exactly the rows given, in their order
    torch.testing.assert_close(torch.as_tensor(E.project_2d(X, "tsne", seed=3)),
                               torch.as_tensor(E.project_2d(X[[0, 1, 2, 3, 4, 4]], "tsne", seed=3)[:5]))
    with pytest.raises(ValueError, match="seed="):
        E.project_2d(X, "pca", seed="1")


@pytest.mark.parametrize("words,message", [
    ("cat, cat, cat", "the 3 vectors hold only 1 different"),      # one word typed several times
    ("cat, cat, dog, dog", "the 4 vectors hold only 2 different"),
    ("zebra, lion, tiger", "the 3 vectors hold only 1 different"),  # unknown words: the same <unk> row
    ("a: cat", "need at least 3 words"),
    ("", "need at least 3 words"),
    (",,, : ,", "need at least 3 words"),
])
@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_explorer_degenerate_words_show_a_message(tiny_lm, words, message, method):
    ex = E.explorer(tiny_lm, groups={"g": ["cat", "dog", "mat"]}, query="")
    ex.method.value = method
    assert ex.output_image is not None
    ex.words.value = words
    assert ex.status_text.startswith(message), ex.status_text
    assert "#b00020" in ex.status.value and "Traceback" not in ex.status.value
    assert ex.output_image is None and "error" not in ex.summary().splitlines()[0]
    ex.words.value = "cat, dog, mat, cat"  # repeats among enough different words: a map, repeats noted
    ex.button.click()
    assert ex.output_image.startswith(b"\x89PNG") and "1 repeated word" in ex.status_text


@pytest.mark.parametrize("query,message", [(" ", None), ("x" * 5, None), ("   zebra  ", None)])
def test_explorer_any_query_gives_a_table_or_nothing(tiny_lm, query, message):
    ex = E.explorer(tiny_lm, groups={"g": ["cat", "dog", "mat"]}, query=query)
    assert ex.output_image is not None and "#b00020" not in ex.status.value
    assert ("nearest tokens" in ex.output_text) == bool(query.strip())


def test_explorer_plain_text_fallback_shows_the_map(tiny_lm):
    ex = E.explorer(tiny_lm, groups={"pets": ["cat", "dog"], "things": ["mat", "house"]}, query="cat")
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    text = bundle["text/plain"]
    assert "VBox" not in text and text == repr(ex)
    lines = text.splitlines()
    assert lines[:3] == ["word map explorer", "4 words in 2 groups, PCA", "map (PCA 1, PCA 2):"]
    c = ex.coordinates
    assert lines[3] == f"  pets: cat ({c.x[0]:.2f}, {c.y[0]:.2f}), dog ({c.x[1]:.2f}, {c.y[1]:.2f})"
    assert lines[5] == "nearest tokens to 'cat' by cosine similarity:"
    assert lines[6:] == ex.neighbours.to_string().splitlines() and len(ex.neighbours) == 8
    ex.words.value = "cat"
    assert ex.summary().splitlines() == ["word map explorer", ex.status_text]


def test_plot_map_labels_every_word(tiny_lm):
    import matplotlib.pyplot as plt

    ax = E.plot_map(tiny_lm, {"numbers": ["one", "two", "three"], "colours": ["red", "blue"]})
    assert {t.get_text() for t in ax.texts} == {"one", "two", "three", "red", "blue"}
    assert ax.get_xlabel() == "PCA 1" and ax.get_title()
    plt.close(ax.figure)


def test_parse_groups():
    assert E.parse_groups("colours: red, blue\nnumbers: one ,two\n\ncat, dog") == {
        "colours": ["red", "blue"], "numbers": ["one", "two"], "cat": ["cat", "dog"]}
    with pytest.raises(ValueError, match="at least 3 words"):
        E.parse_groups("a: red")


def test_explorer_widget_updates_and_reports_errors(tiny_lm):
    import matplotlib.pyplot as plt

    plt.close("all")  # figures another test left open in this worker are not the widget's
    ex = E.explorer(tiny_lm, groups={"g": ["cat", "dog", "mat"]}, query="cat")
    assert ex.output_image.startswith(b"\x89PNG") and list(ex.coordinates["word"]) == ["cat", "dog", "mat"]
    ex.query.value = "dog"
    ex.k.value = 3
    ex.button.click()
    text = ex.output_text
    assert "nearest tokens to 'dog'" in text
    assert [line.split()[0] for line in text.splitlines() if line[:1].isdigit()] == ["1", "2", "3"]
    ex.words.value = "only: two"
    ex.button.click()
    assert ex.status_text.startswith("need at least 3 words") and "Traceback" not in ex.status.value
    assert ex.output_image is None and ex.output_text == "" and ex.coordinates is None
    assert not plt.get_fignums()  # nothing drawn outside the widget
    plt.close("all")


# ----------------------------------------------------------------------------------------------- contextual
def test_hidden_states_many_matches_one_at_a_time(tiny_lm):
    texts = ["the cat sat on the mat", "a dog", "the big cat ran"]  # different lengths: the short ones are padded
    many = E.hidden_states_many(tiny_lm, texts, batch_size=2)
    assert [h.shape[1] for h in many] == [6, 2, 4]
    for text, h in zip(texts, many):
        torch.testing.assert_close(h, E.hidden_states_of(tiny_lm, text)[1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="one string"):
        E.hidden_states_many(tiny_lm, "the cat")
    with pytest.raises(ValueError, match="empty"):
        E.hidden_states_many(tiny_lm, [])


def test_hidden_states_and_contextual_similarity(tiny_lm):
    toks, hs = E.hidden_states_of(tiny_lm, "the cat sat on the mat")
    assert toks == ["the", "cat", "sat", "on", "the", "mat"] and hs.shape == (3, 6, 32)
    assert E.word_span(tiny_lm, "the big cat sat", "big cat") == [1, 2]
    with pytest.raises(ValueError, match="does not occur"):
        E.word_span(tiny_lm, "the cat", "dog")
    cat_a = E.contextual_vectors(tiny_lm, "the cat sat", "cat")
    cat_b = E.contextual_vectors(tiny_lm, "a big cat ran", "cat")
    sim = E.layer_cosine(cat_a, cat_b)
    assert sim.shape == (3,) and abs(sim[0] - 1) < 1e-5  # layer 0: the same embedding row
    assert sim[1:].max() < 1 - 1e-4  # the layers mix in different contexts
    same = E.layer_cosine(cat_a, E.contextual_vectors(tiny_lm, "the cat sat", "cat"))
    assert torch.allclose(same, torch.ones(3), atol=1e-5)


def test_centering_and_mean_hidden_state():
    h1 = torch.tensor([[[100.0, 0.0], [1.0, 2.0], [3.0, 4.0]]])
    h2 = torch.tensor([[[100.0, 0.0], [5.0, 6.0]]])
    assert torch.equal(E.mean_hidden_state([h1, h2]), torch.tensor([[3.0, 4.0]]))
    assert torch.equal(E.mean_hidden_state([h1], skip_first=False), torch.tensor([[104 / 3, 2.0]]))
    u, v = torch.tensor([[2.0, 1.0]]), torch.tensor([[1.0, 2.0]])
    assert E.layer_cosine(u, v, center=torch.tensor([[1.0, 1.0]])).item() == pytest.approx(0.0, abs=1e-6)
    assert E.layer_cosine(u, v).item() == pytest.approx(0.8)


# ----------------------------------------------------------------------------------------------- positions
def test_sinusoidal_encoding_formula_and_relative_property():
    import math

    pe = E.sinusoidal_encoding(50, 16)
    assert pe.shape == (50, 16)
    assert pe[7, 6].item() == pytest.approx(math.sin(7 / 10000 ** (6 / 16)), abs=1e-6)
    assert pe[7, 7].item() == pytest.approx(math.cos(7 / 10000 ** (6 / 16)), abs=1e-6)
    assert torch.equal(pe[0, 0::2], torch.zeros(8)) and torch.equal(pe[0, 1::2], torch.ones(8))
    # the dot product depends on the distance only
    torch.testing.assert_close(pe[3] @ pe[3:23].T, pe[20] @ pe[20:40].T, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="even"):
        E.sinusoidal_encoding(10, 7)


def test_rope_matches_the_models_rotary_embedding(tiny_lm):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    cfg = tiny_lm.model.config
    head_dim, base = cfg.hidden_size // cfg.num_attention_heads, E.rope_base(cfg)
    T = 20
    cos_m, sin_m = tiny_lm.model.model.rotary_emb(torch.zeros(1), torch.arange(T)[None])
    cos, sin = E.rope_cos_sin(range(T), head_dim, base)
    torch.testing.assert_close(cos, cos_m[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(sin, sin_m[0], atol=1e-6, rtol=0)
    q = torch.randn(1, 4, T, head_dim, generator=torch.Generator().manual_seed(1))
    k = torch.randn(1, 2, T, head_dim, generator=torch.Generator().manual_seed(2))
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos_m, sin_m)
    torch.testing.assert_close(E.apply_rope(q, range(T), base), q_hf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(E.apply_rope(k, range(T), base), k_hf, atol=1e-5, rtol=1e-5)


def test_rope_recomputes_the_models_attention(tiny_lm):
    import math

    cfg, model = tiny_lm.model.config, tiny_lm.model
    n_h, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    hd, base = cfg.hidden_size // n_h, E.rope_base(cfg)
    ids = tiny_lm.encode("the big cat sat on the red mat and ran")
    T = ids.shape[1]
    layer = model.model.layers[0]
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, output_attentions=True)
        x = layer.input_layernorm(out.hidden_states[0])
        q = layer.self_attn.q_proj(x).view(1, T, n_h, hd).transpose(1, 2)
        k = layer.self_attn.k_proj(x).view(1, T, n_kv, hd).transpose(1, 2)
        q, k = E.apply_rope(q, range(T), base), E.apply_rope(k, range(T), base).repeat_interleave(n_h // n_kv, 1)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(hd)).masked_fill(torch.ones(T, T).triu(1).bool(), -math.inf)
    torch.testing.assert_close(scores.softmax(-1), out.attentions[0], atol=1e-5, rtol=1e-4)


def test_rope_is_a_rotation_that_depends_on_relative_position():
    x = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    r = E.apply_rope(x, [3, 3], 10000)
    torch.testing.assert_close(r.norm(dim=-1), x.norm(dim=-1))
    a = E.apply_rope(x[:1], [5], 500) @ E.apply_rope(x[1:], [2], 500).T
    b = E.apply_rope(x[:1], [105], 500) @ E.apply_rope(x[1:], [102], 500).T
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)
    assert torch.equal(E.apply_rope(x, [0, 0], 500), x)
    with pytest.raises(ValueError, match="even head dimension"):
        E.rope_frequencies(7)


def test_rope_base_reads_config_and_rejects_scaled_types(tiny_lm):
    assert E.rope_base(tiny_lm.model.config) == tiny_lm.model.config.rope_parameters["rope_theta"]

    class Scaled:
        rope_parameters = {"rope_type": "llama3", "rope_theta": 5e5}

    with pytest.raises(ValueError, match="rope_type 'llama3'"):
        E.rope_base(Scaled())


def test_plot_helpers_label_their_axes():
    import matplotlib.pyplot as plt

    ax = E.plot_similarity(torch.eye(3), ["a", "b", "c"])
    assert ax.get_xlabel() and ax.get_title() == "cosine similarity" and len(ax.texts) == 9
    with pytest.raises(ValueError, match="one label per row"):
        E.plot_similarity(torch.eye(3), ["a", "b"])
    ax = E.plot_layer_curves({"x": torch.ones(4)})
    assert ax.get_xlabel().startswith("layer") and len(ax.lines) == 1
    ax = E.plot_positional(E.sinusoidal_encoding(8, 4))
    assert ax.get_ylabel() == "position"
    plt.close("all")


# ----------------------------------------------------------------------------------------------- real model
@pytest.mark.integration
def test_real_model_tokens_neighbours_and_rope(real_lm):
    zh = E.tokens(real_lm, "语言模型")
    assert "".join(zh["covers"].drop_duplicates()) == "语言模型" and len(zh) > 4  # characters split into bytes
    assert real_lm.tokenizer.decode(list(zh["id"])) == "语言模型"
    table = E.neighbours(real_lm, "seven", k=5)
    assert {"six", "eight"} <= set(table["token"].str.strip())
    cfg = real_lm.model.config
    cos_m, _ = real_lm.model.model.rotary_emb(torch.zeros(1), torch.arange(32)[None])
    torch.testing.assert_close(E.rope_cos_sin(range(32), cfg.head_dim, E.rope_base(cfg))[0], cos_m[0],
                               atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------------------------- exercises 02.x
@pytest.fixture
def lenient(monkeypatch):
    """Wrong answers below are on purpose: strict mode (make test) would turn them into errors."""
    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)


class _ByteTokenizer:
    """A stand-in tokenizer: one id per 3 bytes of UTF-8, so that word lengths decide the token counts."""

    def encode(self, text, add_special_tokens=False):
        raw = text.encode("utf-8")
        return list(range((len(raw) + 2) // 3))


def test_exercise_long_english_and_single_token_chinese(lenient):
    from types import SimpleNamespace

    from lmkit import exercises

    lm = SimpleNamespace(tokenizer=_ByteTokenizer())
    assert exercises.check("02.1", (" incomprehensible", "的"), lm=lm)       # 18 bytes -> 6 tokens; 3 bytes -> 1
    assert not exercises.check("02.1", ("cat", "的"), lm=lm)                 # 1 token: too short
    assert not exercises.check("02.1", (" incomprehensible", "中国"), lm=lm)  # 2 tokens
    assert not exercises.check("02.1", ("two words here", "的"), lm=lm)      # not one word
    assert not exercises.check("02.1", (" incomprehensible", "abc"), lm=lm)  # not Chinese
    assert not exercises.check("02.1", " incomprehensible", lm=lm)          # not a pair


def test_exercise_tied_head_logit(tiny_lm, lenient):
    from lmkit import exercises

    W = E.embedding_matrix(tiny_lm).detach()
    (mat,) = tiny_lm.tokenizer.encode(" mat", add_special_tokens=False)
    x = torch.nn.functional.one_hot(torch.tensor(mat), num_classes=W.shape[0]).float()
    with torch.no_grad():
        h = tiny_lm.model(tiny_lm.encode("the cat sat on the"), output_hidden_states=True).hidden_states[-1][0, -1]
        right = float(h @ (x @ W))
    kw = dict(lm=tiny_lm, prompt="the cat sat on the", word=" mat")
    assert exercises.check("02.2", right, **kw)
    assert not exercises.check("02.2", right + 0.01, **kw)
    (cat,) = tiny_lm.tokenizer.encode(" cat", add_special_tokens=False)
    assert not exercises.check("02.2", float(h @ W[cat]), **kw)             # another token's logit


def test_exercise_contextual_gap(tiny_lm, lenient):
    from itertools import combinations, product

    from lmkit import exercises

    senses = {"one": ["on the mat sat the cat", "to the house ran a cat"],
              "two": ["a big cat ate", "she saw the small red cat"]}
    states = {t: E.hidden_states_of(tiny_lm, t)[1] for ts in senses.values() for t in ts}
    vec = {t: h[:, E.word_span(tiny_lm, t, "cat")].mean(1) for t, h in states.items()}
    c = E.mean_hidden_state(list(states.values()))
    cos = lambda pairs: torch.stack([E.layer_cosine(vec[a], vec[b], c) for a, b in pairs]).mean(0)[-1]
    same = [p for ts in senses.values() for p in combinations(ts, 2)]
    gap = float(cos(same) - cos(list(product(*senses.values()))))
    assert exercises.check("02.3", (senses, gap), lm=tiny_lm, word="cat")
    assert not exercises.check("02.3", (senses, gap + 0.05), lm=tiny_lm, word="cat")
    uncentred = float(E.layer_cosine(vec[senses["one"][0]], vec[senses["one"][1]])[-1])
    assert not exercises.check("02.3", (senses, uncentred), lm=tiny_lm, word="cat")
    assert not exercises.check("02.3", ({"one": senses["one"][:1], "two": senses["two"]}, gap), lm=tiny_lm,
                               word="cat")                                # one sentence of a sense is not enough
    def gap_of(senses):
        states = {t: E.hidden_states_of(tiny_lm, t)[1] for ts in senses.values() for t in ts}
        vec = {t: h[:, E.word_span(tiny_lm, t, "cat")].mean(1) for t, h in states.items()}
        c = E.mean_hidden_state(list(states.values()))
        cos = lambda pairs: torch.stack([E.layer_cosine(vec[a], vec[b], c) for a, b in pairs]).mean(0)[-1]
        same = [p for ts in senses.values() for p in combinations(ts, 2)]
        return float(cos(same) - cos(list(product(*senses.values()))))

    same_start = {"one": ["the cat sat on the mat", "the cat ran to the house"], "two": senses["two"]}
    assert not exercises.check("02.3", (same_start, gap_of(same_start)), lm=tiny_lm, word="cat")  # same up to "cat"
    with_cats = {"one": ["on the mat sat the cats", "to the house ran a cat"], "two": senses["two"]}
    assert not exercises.check("02.3", (with_cats, gap), lm=tiny_lm, word="cat")  # "cats" is not the whole word


def test_cosine_matrix_and_sense_gap_by_hand():
    torch.manual_seed(0)
    vecs = [torch.randn(3, 8) for _ in range(6)]
    center = torch.randn(3, 8)
    sim = E.cosine_matrix(vecs, center)
    assert sim.shape == (3, 6, 6)
    torch.testing.assert_close(sim[:, 1, 4], E.layer_cosine(vecs[1], vecs[4], center))
    labels = ["x", "x", "x", "y", "y", "y"]
    within = [E.layer_cosine(vecs[i], vecs[j], center) for g in ([0, 1, 2], [3, 4, 5]) for i in g for j in g if i < j]
    across = [E.layer_cosine(vecs[i], vecs[j], center) for i in (0, 1, 2) for j in (3, 4, 5)]
    torch.testing.assert_close(E.sense_gap(sim, labels), torch.stack(within).mean(0) - torch.stack(across).mean(0))
    with pytest.raises(ValueError, match="two groups"):
        E.sense_gap(sim, ["x"] * 5 + ["y"])
    with pytest.raises(ValueError, match="labels"):
        E.sense_gap(sim, labels[:5])


def test_compare_gaps_finds_a_planted_gap_and_no_gap_without_one():
    n = 10
    labels = ["a"] * n + ["b"] * n
    lab = torch.tensor([0] * n + [1] * n)
    torch.manual_seed(1)
    noise = torch.randn(2 * n, 2 * n) * 0.05
    noise = (noise + noise.T) / 2
    planted = torch.where(lab[:, None] == lab[None, :], 0.6, 0.1) + noise
    flat = 0.3 + noise
    gap = E.compare_gaps(planted, labels)
    assert gap.verdict == "higher" and gap.low <= gap.diff <= gap.high and abs(gap.diff - 0.5) < 0.05
    assert E.compare_gaps(flat, labels).verdict == "cannot be told apart"
    vs = E.compare_gaps(planted, labels, control=flat)
    assert vs.verdict == "higher" and vs.paired and vs.diff == pytest.approx(gap.diff - float(E.sense_gap(flat, labels)))
    assert E.compare_gaps(planted, labels, control=planted).diff == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="one layer"):
        E.compare_gaps(torch.zeros(3, n, n), labels[: n])
    with pytest.raises(ValueError, match="same sentences"):
        E.compare_gaps(planted, labels, control=planted[:4, :4])


def test_senses_data_gives_each_word_a_distinct_left_context():
    """A causal model's vector at the word sees only the text before it: no two sentences may read the same up to
    the word, and each holds the word once, as a whole word (data/embeddings/senses.jsonl, notebook 02)."""
    import re
    from collections import Counter

    from lmkit.data import data_file
    from lmkit.files import read_jsonl

    rows = read_jsonl(data_file("embeddings/senses.jsonl"))
    assert Counter((r["word"], r["group"]) for r in rows) == {("bank", g): 15 for g in ("river", "money")}
    for word in ("bank", "spot", "place", "edge"):  # the word itself and the controls notebook 02 puts in its place
        seen = []
        for r in rows:
            text = re.sub(r"\bbank\b", word, r["text"])
            hits = list(re.finditer(rf"(?<!\w){word}(?!\w)", text))
            assert len(hits) == 1 and text.count(word) == 1, text
            assert hits[0].start() > 0, text                          # some left context before the word
            seen.append(text[:hits[0].end()])
        assert len(set(seen)) == len(seen), [s for s, n in Counter(seen).items() if n > 1]


def test_exercise_rope_score_from_the_relative_position(lenient):
    from lmkit import exercises

    torch.manual_seed(0)
    q, k = torch.randn(16), torch.randn(16)
    relative = float(q @ E.apply_rope(k[None], [-2], 100.0)[0])
    assert exercises.check("02.4", relative, q=q, k=k, theta=100.0)
    assert not exercises.check("02.4", float(q @ E.apply_rope(k[None], [2], 100.0)[0]), q=q, k=k, theta=100.0)
    assert not exercises.check("02.4", float(q @ k), q=q, k=k, theta=100.0)
