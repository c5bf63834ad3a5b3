"""Byte-level BPE of notebook 03: exact round trips, merges equal to the most frequent pairs, special tokens."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest
import regex

from lmkit.bpe import BPE, GPT2_SPLIT, GPT4_SPLIT, count_pairs, merge_pair

CORPUS = ("The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.\n"
          "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.\n"
          "你好，世界。我们学习分词。 Numbers 12345 and 2026-12-01, e-mail me@example.org!\n") * 8
STRINGS = ["Hello, world!", "你好，世界：分词器从零开始。", "👍🏽 and 👩‍👩‍👧 are single graphemes",
           "e\u0301 a\u0308 n\u0303 (combining marks)", "line one\r\nline two\r\n", "runs    of     spaces   ",
           "", " ", "\t\n\n\t", "don't won't I'M we've", "<|endoftext|> inside text<|endoftext|>"]


@pytest.fixture(scope="module", params=[GPT2_SPLIT, GPT4_SPLIT], ids=["gpt2", "gpt4"])
def tok(request):
    return BPE.train(CORPUS, 256 + 60, pattern=request.param, special_tokens=["<|endoftext|>"])


@pytest.mark.parametrize("text", STRINGS)
def test_round_trip_is_exact(tok, text):
    ids = tok.encode(text)
    assert all(isinstance(i, int) and 0 <= i < len(tok) for i in ids)
    assert tok.decode(ids) == text


def test_round_trip_on_random_bytes(tok):
    rng = random.Random(0)
    for n in (0, 1, 7, 300):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert tok.decode_bytes(tok.encode(data)) == data
    # valid UTF-8 read as bytes and as text gives the same ids
    assert tok.encode(CORPUS[:200].encode()) == tok.encode(CORPUS[:200])


def test_merges_shorten_and_the_vocabulary_has_the_asked_size(tok):
    assert len(tok) == 256 + 60 and len(tok.merges) == 59
    assert len(tok.encode(CORPUS)) < 0.7 * len(CORPUS.encode())  # 60 merges already save a third of the ids
    assert tok.vocab[256 + 5] == tok.vocab[tok.merges[5][0]] + tok.vocab[tok.merges[5][1]]


def test_first_merges_are_the_most_frequent_pairs():
    """Recount the pairs from scratch after each merge (the slow way) and compare with the incremental trainer."""
    n = 25
    trained = BPE.train(CORPUS, 256 + n).merges
    chunks = Counter(regex.findall(GPT2_SPLIT, CORPUS))
    words = [list(c.encode()) for c in chunks]
    expected = []
    for k in range(n):
        counts = {}
        for w, f in zip(words, chunks.values()):
            count_pairs(w, counts, f)
        best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))  # ties: the smallest pair
        expected.append(best)
        words = [merge_pair(w, best, 256 + k) for w in words]
    assert trained == expected
    # the very first merge is the most frequent adjacent byte pair within the chunks
    first = Counter(p for c, f in chunks.items() for p in zip(c.encode(), c.encode()[1:]) for _ in range(f))
    assert trained[0] in {p for p, c in first.items() if c == max(first.values())}


def test_special_tokens_map_to_their_ids_or_to_text(tok):
    eot = tok.special_tokens["<|endoftext|>"]
    assert eot == len(tok) - 1
    ids = tok.encode("a<|endoftext|>b")
    assert ids.count(eot) == 1
    assert eot not in tok.encode("a<|endoftext|>b", special=False)
    assert tok.decode(tok.encode("a<|endoftext|>b", special=False)) == "a<|endoftext|>b"


def test_encode_applies_merges_in_training_order():
    tok = BPE([(ord("a"), ord("b")), (256, ord("c")), (ord("b"), ord("c"))])
    assert tok.encode("abc") == [257]  # ab first, then (ab)c; never a(bc)
    assert tok.encode("bc") == [258]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="vocab_size=200"):
        BPE.train("abc", 200)
    with pytest.raises(ValueError, match="merge 0"):
        BPE([(256, 1)])
    with pytest.raises(ValueError, match="id 9999"):
        BPE([]).decode([1, 9999])
    with pytest.raises(ValueError, match="str or bytes"):
        BPE([]).encode(3)


def test_training_stops_when_no_pair_repeats():
    tok = BPE.train("abcd", 1000)
    assert tok.merges == [] and len(tok) == 256


# ----------------------------------------------------------------------------------------------- issue 31
def test_special_token_text_in_training_data_is_a_boundary():
    """Special tokens are cut out of the training text and each piece is pre-split alone (as encode does): no chunk,
    and so no merge, spans a document boundary. Before, the pieces were joined, "x<|endoftext|>y" became "xy"."""
    text = "x<|endoftext|>y " * 20
    tok = BPE.train(text, 256 + 10, special_tokens=["<|endoftext|>"])
    assert (ord("x"), ord("y")) not in tok.merges
    assert (ord(" "), ord("x")) in tok.merges                  # " x" does occur: "y x" splits into "y", " x"
    ids = tok.encode(text)
    assert ids.count(tok.special_tokens["<|endoftext|>"]) == 20 and tok.decode(ids) == text
    # user text is encoded as text with special=False: the special id never appears and the text comes back
    assert tok.special_tokens["<|endoftext|>"] not in tok.encode(text, special=False)
    assert tok.decode(tok.encode(text, special=False)) == text


@pytest.mark.parametrize("call, match", [
    (lambda t: t.decode([-1]), r"id -1 is not in the vocabulary of 257 tokens: pass ids 0\.\.256"),
    (lambda t: t.decode([257]), "id 257 is not in the vocabulary"),
    (lambda t: t.decode([True]), "id True is not in the vocabulary"),
    (lambda t: t.decode([1.0]), r"id 1\.0 is not in the vocabulary"),
    (lambda t: t.decode(5), "ids=5 is not a list of ids"),
    (lambda t: t.decode("abc"), "ids='abc' is not a list of ids"),
    (lambda t: t.decode([104], errors="bogus"), "errors='bogus' is not one of"),
    (lambda t: t.encode("a", special=1), "special=1 must be True or False"),
    (lambda t: BPE([(1, 2, 3)]), r"merge 0 = \(1, 2, 3\) is not a pair"),
    (lambda t: BPE([], pattern="(unclosed"), r"pattern='\(unclosed' is not a regular expression"),
    (lambda t: BPE.train("abab", 300, pattern="[a-"), "is not a regular expression"),
    (lambda t: BPE.train("abab", float("nan")), "vocab_size=nan must be an integer"),
    (lambda t: BPE.train("abab", 300.0), r"vocab_size=300\.0 must be an integer"),
    (lambda t: BPE.train("abab", True), "vocab_size=True must be an integer"),
    (lambda t: BPE.train("abab", 256, special_tokens=["<s>"]), "vocab_size=256 must be an integer >= 257"),
    (lambda t: count_pairs([1, 2, 3], weight=0), "weight=0 must be an integer >= 1"),
    (lambda t: count_pairs([1, 2, 3], weight=float("nan")), "weight=nan"),
    (lambda t: merge_pair([1, 2], (1, 2), -1), "new_id=-1 must be an integer >= 0"),
    (lambda t: merge_pair([1, 2], (1,), 256), r"pair=\(1,\) is not two ids"),
])
def test_bad_numbers_and_ids_are_one_line_errors(call, match):
    tok = BPE([], special_tokens=["<|endoftext|>"])
    with pytest.raises(ValueError, match=match) as err:
        call(tok)
    assert "\n" not in str(err.value)


def test_decode_takes_a_tensor_of_ids():
    torch = pytest.importorskip("torch")
    tok = BPE.train(CORPUS, 256 + 20)
    ids = tok.encode("the quick fox")
    assert tok.decode(torch.tensor(ids)) == "the quick fox"


# ----------------------------------------------------------------------------------- training on documents
def test_documents_are_pre_split_apart_so_no_merge_crosses_them():
    """A list of documents trains on each alone: "x" and "y" never meet, though joined they would make "xy"."""
    docs = ["x", "y"] * 20
    assert (ord("x"), ord("y")) in BPE.train("".join(docs), 256 + 5).merges   # the joined text does merge them
    assert (ord("x"), ord("y")) not in BPE.train(docs, 256 + 5).merges
    # documents and a special token between them are the same boundary
    lines = CORPUS.splitlines(keepends=True)
    assert BPE.train(lines, 256 + 40).merges == BPE.train("<|s|>".join(lines), 256 + 41,
                                                            special_tokens=["<|s|>"]).merges


@pytest.mark.parametrize("bad, match", [(b"abc", "is not a string or a list"), (5, "is not a string or a list"),
                                        (["a", 3], "document 1 = 3 is not a string")])
def test_training_text_must_be_strings(bad, match):
    with pytest.raises(ValueError, match=match):
        BPE.train(bad, 300)


# ------------------------------------------------------------------------ Hugging Face tokenizers, id for id
tokenizers = pytest.importorskip("tokenizers")
FUZZ_ALPHABET = "ab Z9 0\t\n\r'.,!-é你👍\u00a0\u2003٣"  # letters, digits (Arabic-Indic too), spaces, symbols


def _fuzz(n=400, seed=0):
    rng = random.Random(seed)
    return [*STRINGS, *("".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randrange(1, 25))) for _ in range(n))]


def _library_chunks(pre, text):
    from lmkit.bpe import bytes_to_unicode

    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    return [bytes(to_byte[c] for c in piece).decode() for piece, _ in pre.pre_tokenize_str(text)]


@pytest.mark.parametrize("digits", [False, True], ids=["bytelevel", "digits+bytelevel"])
def test_split_patterns_equal_the_library_pre_tokenizers(digits):
    from tokenizers import pre_tokenizers as pt

    from lmkit.bpe import GPT2_DIGITS_SPLIT

    level = pt.ByteLevel(add_prefix_space=False, use_regex=True)
    pre = pt.Sequence([pt.Digits(individual_digits=True), level]) if digits else level
    pattern = GPT2_DIGITS_SPLIT if digits else GPT2_SPLIT
    for text in _fuzz():
        assert regex.findall(pattern, text) == _library_chunks(pre, text), text
    # the case that needs the extra branch: spaces before a digit stay whole after Digits, GPT-2 alone splits them
    assert regex.findall(pattern, "a   5") == (["a", "   ", "5"] if digits else ["a", "  ", " 5"])


def _library_bpe(digits, corpus=CORPUS, vocab_size=400):
    from tokenizers import Tokenizer, models, pre_tokenizers as pt, trainers

    hf = Tokenizer(models.BPE())
    level = pt.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.pre_tokenizer = pt.Sequence([pt.Digits(individual_digits=True), level]) if digits else level
    alphabet = [c for c in pt.ByteLevel.alphabet() if c != "Ā"]  # leave byte 0 out: the library drops it
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>"],
                                  initial_alphabet=alphabet, show_progress=False)
    hf.train_from_iterator(corpus.splitlines(keepends=True), trainer)
    return hf


@pytest.mark.parametrize("digits", [False, True], ids=["bytelevel", "digits+bytelevel"])
def test_from_huggingface_gives_the_library_ids(digits, tmp_path):
    hf = _library_bpe(digits)
    ours = BPE.from_huggingface(hf)
    assert ours.special_tokens == {"<|endoftext|>": 0, "<|im_start|>": 1}
    assert ours.byte_ids[0] is None and len(ours) == hf.get_vocab_size()
    for text in [*_fuzz(200, seed=1), CORPUS, "a\x00b<|im_start|>x 2026<|endoftext|>", "byte 0 \x00 is dropped"]:
        assert ours.encode(text) == hf.encode(text).ids, text
    assert ours.decode(ours.encode("a\x00b")) == "ab"  # the library drops a byte it has no token for; so do we
    # the same from the saved tokenizer.json, and a shorter merge table is the start of the full one
    hf.save(str(tmp_path / "tokenizer.json"))
    again = BPE.from_huggingface(tmp_path / "tokenizer.json", max_merges=10)
    assert again.merges == ours.merges[:10] and again.merge_ids == ours.merge_ids[:10]
    assert len(again.encode(CORPUS)) > len(ours.encode(CORPUS))  # fewer merges, more tokens


def test_from_huggingface_refuses_what_it_cannot_reproduce():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers as pt

    hf = _library_bpe(False)
    hf.normalizer = normalizers.NFC()
    with pytest.raises(ValueError, match="normalizer 'NFC' is not supported"):
        BPE.from_huggingface(hf)
    wp = Tokenizer(models.WordPiece({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    with pytest.raises(ValueError, match="model type 'WordPiece' is not BPE"):
        BPE.from_huggingface(wp)
    hf = _library_bpe(False)
    hf.pre_tokenizer = pt.Whitespace()
    with pytest.raises(ValueError, match=r"pre-tokenizer \['Whitespace'\] is not supported"):
        BPE.from_huggingface(hf)
    with pytest.raises(ValueError, match="not a Hugging Face fast tokenizer"):
        BPE.from_huggingface(object())


@pytest.mark.integration
def test_smollm2_merges_give_smollm2_ids_on_hamlet(real_lm):
    """SmolLM2's own merge table, loaded into this BPE, gives the bundled tokenizer's ids on all of Hamlet."""
    from lmkit.data import corpus

    smol = BPE.from_huggingface(real_lm.tokenizer)
    text = corpus("validation")
    expected = real_lm.tokenizer.encode(text, add_special_tokens=False, verbose=False)
    assert len(expected) > 50_000 and smol.encode(text) == expected
    mixed = "Hello 2026!\r\n你好，世界 👩‍👩‍👧 <|im_start|>user\nhi<|im_end|> \x04"
    assert smol.encode(mixed) == real_lm.tokenizer.encode(mixed, add_special_tokens=False)


@pytest.mark.integration
def test_smollm2_was_trained_with_the_digit_split_that_its_bundled_copy_dropped(real_lm):
    """SmolLM2's vocabulary has no token with two digits or with whitespace next to a digit (the hub's
    Digits(individual_digits=True) pre-split at training time); the bundled (GGUF) tokenizer runs ByteLevel alone.
    Loaded with each pre-split, the merges give the library's ids for each, and the two differ where whitespace runs
    into a digit."""
    from tokenizers import Tokenizer, pre_tokenizers

    from lmkit.bpe import GPT2_DIGITS_SPLIT, bytes_to_unicode

    backend = real_lm.tokenizer.backend_tokenizer
    assert json.loads(backend.to_str())["pre_tokenizer"]["type"] == "ByteLevel"
    to_byte = {c: b for b, c in bytes_to_unicode().items()}
    added = {t.content for t in backend.get_added_tokens_decoder().values()}
    texts = [bytes(to_byte[c] for c in t).decode("utf-8", "replace") for t in backend.get_vocab() if t not in added]
    assert sum(bool(regex.search(r"\p{N}", t)) for t in texts) >= 10  # single digits are there ...
    assert not [t for t in texts if len(regex.findall(r"\p{N}", t)) >= 2 or regex.search(r"\s\p{N}|\p{N}\s", t)]
    hub = Tokenizer.from_str(backend.to_str())
    hub.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    ours_hub, ours_bundled = BPE.from_huggingface(hub), BPE.from_huggingface(real_lm.tokenizer)
    assert ours_hub.pattern == GPT2_DIGITS_SPLIT
    for text in ["a   5", "Exit.\n\n1 Clown. Hi 2026!", "x  12 items"]:
        bundled = real_lm.tokenizer.encode(text, add_special_tokens=False)
        trained = hub.encode(text, add_special_tokens=False).ids
        assert ours_bundled.encode(text) == bundled and ours_hub.encode(text) == trained
        assert len(bundled) == len(trained) + 1  # the run before the digit is cut in two by GPT-2's pattern alone
