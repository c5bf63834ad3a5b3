"""Byte-level BPE of notebook 10: exact round trips, merges equal to the most frequent pairs, special tokens."""
from __future__ import annotations

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
