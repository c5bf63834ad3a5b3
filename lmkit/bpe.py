"""Byte-level byte-pair encoding (BPE), trained from scratch (notebook 03).

The tokenizer of GPT-2 and of SmolLM2, written out: text is cut into chunks by a pre-split regular expression
(words with their leading space, numbers, punctuation, runs of spaces), each chunk becomes its UTF-8 bytes (ids
0–255, so every string can be encoded and nothing is ever unknown), and training repeatedly replaces the most
frequent adjacent pair of ids by a new id (Sennrich et al. 2016, "Neural Machine Translation of Rare Words with
Subword Units"; byte-level as in Radford et al. 2019, GPT-2). Encoding applies the learned merges in the order they
were learned; decoding concatenates the bytes of each id.

Training keeps the pair counts up to date incrementally: a merge only recounts the distinct chunks that contain the
merged pair, and a heap finds the next most frequent pair, so a vocabulary of a few thousand on a megabyte of text
takes seconds instead of the minutes that recounting everything per merge costs. Ties between equally frequent pairs
go to the smallest pair of ids, so training is deterministic.

    tok = BPE.train(text, vocab_size=2048, special_tokens=["<|endoftext|>"])
    tok.decode(tok.encode(s)) == s          # for every string s
"""
from __future__ import annotations

import heapq
from collections import Counter
from typing import Iterable, Sequence

import regex

from lmkit import checks

__all__ = ["BPE", "GPT2_SPLIT", "GPT4_SPLIT", "count_pairs", "merge_pair"]

GPT2_SPLIT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
"""GPT-2's pre-split pattern: contractions, letters, digits, other symbols (each with one optional leading space),
then whitespace (a run of spaces keeps its last space for the next word)."""

GPT4_SPLIT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]"""
              r"""|\s+(?!\S)|\s+""")
"""GPT-4's (cl100k) pattern: case-insensitive contractions, numbers in groups of at most three digits, newlines
kept apart from other whitespace."""


def count_pairs(ids: Sequence[int], counts: dict | None = None, weight: int = 1) -> dict:
    """Add ``weight`` to ``counts[(a, b)]`` for every adjacent pair of ``ids``; returns ``counts`` (notebook 03)."""
    weight = checks.integer("weight", weight, low=1, fix="pass how often this sequence occurs, e.g. weight=1")
    counts = {} if counts is None else counts
    ids = list(ids)
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def _specials(special_tokens) -> list[str]:
    """The special tokens, each a non-empty string, duplicates dropped (first occurrence kept)."""
    if isinstance(special_tokens, str):
        checks.fail(f"special_tokens={checks.show(special_tokens)} is one string: pass a list, e.g. ['<|endoftext|>']")
    specials = list(dict.fromkeys(special_tokens))
    for s in specials:
        checks.text("special token", s, blank_ok=True, fix="give each special token some text")
    return specials


def _compile(pattern):
    """The pre-split pattern compiled; one that is not a string or not a regular expression is a one-line error."""
    checks.text("pattern", pattern, fix="pass a pre-split regular expression such as GPT2_SPLIT")
    try:
        return regex.compile(pattern)
    except regex.error as e:
        checks.fail(f"pattern={checks.show(pattern, 60)} is not a regular expression ({e}): pass one such as "
                    "GPT2_SPLIT")


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """``ids`` with every occurrence of ``pair``, scanned left to right, replaced by ``new_id`` (notebook 03)."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(checks.is_integer(x) for x in pair)):
        checks.fail(f"pair={checks.show(pair)} is not two ids: pass e.g. pair=(104, 105)")
    new_id = checks.integer("new_id", new_id, low=0, fix="pass the merged token's id, 256 + merge number")
    ids = list(ids)
    out, i, n = [], 0, len(ids)
    a, b = pair
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPE:
    """A trained byte-level BPE tokenizer (notebook 03).

    - ``merges``: the learned pairs in order; merge ``k`` created id ``256 + k``.
    - ``vocab``: ``vocab[id]`` is the bytes of ``id`` (special tokens: their UTF-8 text).
    - ``special_tokens``: ``{text: id}``, ids after the merges; ``encode`` maps each occurrence to its id.
    - ``pattern``: the pre-split regular expression (:data:`GPT2_SPLIT` by default).
    """

    def __init__(self, merges: Iterable[tuple[int, int]], *, pattern: str = GPT2_SPLIT,
                 special_tokens: Iterable[str] = ()):
        merges = list(merges)
        for k, m in enumerate(merges):
            if not (isinstance(m, (tuple, list)) and len(m) == 2):
                checks.fail(f"merge {k} = {checks.show(m)} is not a pair of ids: pass merges as [(a, b), ...]")
        self.merges = [tuple(m) for m in merges]
        self.ranks = {pair: 256 + k for k, pair in enumerate(self.merges)}
        self.vocab = [bytes([i]) for i in range(256)]
        for k, (a, b) in enumerate(self.merges):
            if not (checks.is_integer(a) and checks.is_integer(b) and 0 <= a < 256 + k and 0 <= b < 256 + k):
                checks.fail(f"merge {k} = {(a, b)} uses an id that does not exist yet: merges must be in order")
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self._split = _compile(pattern)
        self.pattern = pattern
        specials = _specials(special_tokens)
        self.special_tokens = {s: len(self.vocab) + k for k, s in enumerate(specials)}
        self.vocab += [s.encode("utf-8") for s in specials]
        self._special_split = (regex.compile("(" + "|".join(regex.escape(s) for s in
                                                          sorted(specials, key=len, reverse=True)) + ")")
                               if specials else None)
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"BPE(vocab_size={len(self)}, merges={len(self.merges)}, special_tokens={list(self.special_tokens)})"

    # ------------------------------------------------------------------------------------------------ training
    @classmethod
    def train(cls, text: str, vocab_size: int, *, pattern: str = GPT2_SPLIT,
              special_tokens: Iterable[str] = ()) -> "BPE":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text`` (notebook 03).

        Stops early when no pair occurs twice. Special tokens never take part in training: each occurrence of a
        special token's text in ``text`` is cut out first (it marks a boundary, as ``<|endoftext|>`` between
        documents), so no merge crosses it or learns its pieces. Raises ValueError if ``vocab_size`` is not an
        integer or leaves no room for the 256 bytes and the special tokens, or if ``pattern`` is not a regular
        expression.
        """
        specials = _specials(special_tokens)
        checks.text("text", text, blank_ok=True, fix="pass the training text")
        least = 256 + len(specials)
        vocab_size = checks.integer("vocab_size", vocab_size, low=least,
                                    fix=f"the 256 byte ids plus {len(specials)} special tokens need {least}")
        n_merges = vocab_size - least
        split = _compile(pattern)
        # each piece between special tokens is pre-split on its own, as encode does: joining the pieces would make
        # chunks (and merges) across a document boundary, "end<|endoftext|>Start" -> "endStart"
        parts = regex.split("|".join(regex.escape(s) for s in specials), text) if specials else [text]
        chunk_counts = Counter(chunk for part in parts for chunk in split.findall(part))
        words = [list(chunk.encode("utf-8", "surrogateescape")) for chunk in chunk_counts]
        freqs = list(chunk_counts.values())

        counts: dict[tuple[int, int], int] = {}
        where: dict[tuple[int, int], set[int]] = {}  # pair -> the distinct chunks that (may) contain it
        for w, (ids, f) in enumerate(zip(words, freqs)):
            count_pairs(ids, counts, f)
            for pair in zip(ids, ids[1:]):
                where.setdefault(pair, set()).add(w)
        heap = [(-c, a, b) for (a, b), c in counts.items()]
        heapq.heapify(heap)

        merges: list[tuple[int, int]] = []
        while len(merges) < n_merges and heap:
            neg, a, b = heapq.heappop(heap)
            pair = (a, b)
            if counts.get(pair, 0) != -neg:  # a stale entry: this pair's count has changed since it was pushed
                continue
            if -neg < 2:
                break
            new_id = 256 + len(merges)
            merges.append(pair)
            changed: set[tuple[int, int]] = set()
            for w in where.pop(pair, ()):
                ids, f = words[w], freqs[w]
                if len(ids) < 2 or not any(p == pair for p in zip(ids, ids[1:])):
                    continue
                for p in zip(ids, ids[1:]):  # remove the chunk's old pairs ...
                    counts[p] -= f
                    changed.add(p)
                ids = words[w] = merge_pair(ids, pair, new_id)
                for p in zip(ids, ids[1:]):  # ... and add its new ones
                    counts[p] = counts.get(p, 0) + f
                    changed.add(p)
                    where.setdefault(p, set()).add(w)
            counts.pop(pair, None)
            for p in changed:
                c = counts.get(p, 0)
                if c > 0 and p != pair:
                    heapq.heappush(heap, (-c, p[0], p[1]))
                elif p in counts and c <= 0:
                    del counts[p]
        return cls(merges, pattern=pattern, special_tokens=specials)

    # ------------------------------------------------------------------------------------------------ encoding
    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8", "surrogateescape"))
        while len(ids) >= 2:  # apply the earliest-learned merge present, as training did
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, 1 << 62))
            if pair not in self.ranks:
                break
            ids = merge_pair(ids, pair, self.ranks[pair])
        if len(self._cache) < 200_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str | bytes, *, special: bool = True) -> list[int]:
        """Token ids of ``text`` (notebook 03).

        ``bytes`` are accepted too (any bytes, valid UTF-8 or not: they are read with ``surrogateescape`` and come
        back exactly from :meth:`decode_bytes`). With ``special=True`` (the default, as when this tokenizer reads its
        own training format) each special token's text becomes its id; with ``special=False`` it is encoded as
        ordinary text, byte by byte: use that for data you did not write (user text, scraped pages), so that a
        ``"<|endoftext|>"`` inside it cannot end a document. Either way :meth:`decode` gives the text back exactly.
        """
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "surrogateescape")
        if not isinstance(text, str):
            checks.fail(f"encode takes a str or bytes, got {type(text).__name__}: pass the text itself")
        checks.boolean("special", special)
        parts = self._special_split.split(text) if (special and self._special_split) else [text]
        ids: list[int] = []
        for k, part in enumerate(parts):
            if k % 2:  # regex.split with one group: odd parts are the special tokens themselves
                ids.append(self.special_tokens[part])
            else:
                for chunk in self._split.findall(part):
                    ids.extend(self._encode_chunk(chunk))
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of ``ids`` concatenated; an id outside ``0..len(self) - 1`` (a negative one included: it does
        not count from the end) or one that is not an integer raises a one-line ValueError (notebook 03)."""
        if hasattr(ids, "tolist"):  # a tensor or an array
            ids = ids.tolist()
        if checks.is_integer(ids) or isinstance(ids, (str, bytes, dict)) or not hasattr(ids, "__iter__"):
            checks.fail(f"ids={checks.show(ids)} is not a list of ids: pass e.g. [72, 105]")
        ids = list(ids)
        bad = [i for i in ids if not (checks.is_integer(i) and 0 <= i < len(self.vocab))]
        if bad:
            checks.fail(f"id {checks.show(bad[0])} is not in the vocabulary of {len(self.vocab)} tokens: "
                        f"pass ids 0..{len(self.vocab) - 1}, as this tokenizer produced them")
        return b"".join(self.vocab[i] for i in ids)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """The text of ``ids``; bytes that are not valid UTF-8 (a cut multi-byte character) become U+FFFD with the
        default ``errors="replace"`` (``"surrogateescape"`` keeps them) (notebook 03)."""
        checks.one_of("errors", errors, ("replace", "strict", "ignore", "surrogateescape", "backslashreplace"))
        return self.decode_bytes(ids).decode("utf-8", errors)

    def token_strings(self) -> list[str]:
        """Each id's text, with bytes that are not valid UTF-8 on their own shown as ``\\xNN`` (notebook 03)."""
        return [b.decode("utf-8", "backslashreplace") for b in self.vocab]
