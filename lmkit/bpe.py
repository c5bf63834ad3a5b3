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
go to the smallest pair of ids, so that the order of the merges is specified and two implementations can agree on it
(Hugging Face ``tokenizers`` breaks ties another way; notebook 03 shows the first tie where the two part).

    tok = BPE.train(text, vocab_size=2048, special_tokens=["<|endoftext|>"])
    tok.decode(tok.encode(s)) == s          # for every string s

A trained Hugging Face byte-level BPE (SmolLM2's, GPT-2's) loads with :meth:`BPE.from_huggingface`: its merges,
its token ids and its pre-split, so that ``encode`` gives the library's ids exactly.
"""
from __future__ import annotations

import heapq
from collections import Counter
from typing import Iterable, Sequence

import regex

from lmkit import checks

__all__ = ["BPE", "GPT2_SPLIT", "GPT4_SPLIT", "GPT2_DIGITS_SPLIT", "bytes_to_unicode", "count_pairs",
           "merge_pair"]

GPT2_SPLIT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
"""GPT-2's pre-split pattern: contractions, letters, digits, other symbols (each with one optional leading space),
then whitespace (a run of spaces keeps its last space for the next word)."""

GPT4_SPLIT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]"""
              r"""|\s+(?!\S)|\s+""")
"""GPT-4's (cl100k) pattern: case-insensitive contractions, numbers in groups of at most three digits, newlines
kept apart from other whitespace."""


GPT2_DIGITS_SPLIT = (r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?=\p{N})|\s+(?!\S)|\s+""")
r"""GPT-2's pattern run after Hugging Face's ``Digits(individual_digits=True)`` pre-tokenizer, as one expression (the
``Sequence([Digits(individual_digits=True), ByteLevel()])`` of SmolLM2's tokenizer.json on the Hugging Face hub).
``Digits`` cuts every digit out on its own first and GPT-2's pattern then runs on the pieces between digits, so: a
digit is always a chunk of one (``\p{N}`` instead of `` ?\p{N}+``), and a run of spaces just before a digit ends a
piece, so it stays whole (``\s+(?=\p{N})``) where GPT-2's pattern alone would leave its last space to the next
chunk. Checked against the library's own split in ``tests/test_bpe.py``. SmolLM2 was trained with this split (its
vocabulary holds no token with two digits or with a space next to a digit); the copy of its tokenizer bundled in the
GGUF model file that :func:`lmkit.load` reads runs ``ByteLevel`` alone, :data:`GPT2_SPLIT` (notebook 03)."""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from each byte (0-255) to the printable character that stands for it in byte-level vocabularies
    (``"Ġ"`` for a space): printable Latin-1 bytes stand for themselves, the 68 others for ``chr(256)``, ``chr(257)``,
    ... in byte order (Radford et al. 2019, GPT-2's ``encoder.py``; Hugging Face ``tokenizers``' ``ByteLevel``)
    (notebook 03)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        table[b] = chr(b) if b in keep else chr(256 + extra)
        extra += b not in keep
    return table


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
    """A byte-level BPE tokenizer, trained here or loaded from Hugging Face (notebook 03).

    - ``merges``: the merged pairs of ids, in the order they were learned (their rank).
    - ``merge_ids``: the id each merge creates; ``256 + k`` for merge ``k`` of a tokenizer trained here.
    - ``vocab``: ``vocab[id]`` is the bytes of ``id`` (special tokens: their UTF-8 text).
    - ``byte_ids``: ``byte_ids[b]`` is the id of the single byte ``b`` (``b`` itself when trained here; ``None``
      for a byte that a loaded vocabulary lacks: ``encode`` drops it, as the library does, so that text does not
      come back exactly).
    - ``special_tokens``: ``{text: id}``; ``encode`` maps each occurrence to its id.
    - ``pattern``: the pre-split regular expression (:data:`GPT2_SPLIT` by default).

    ``BPE(merges)`` builds the tokenizer of a merge table in this module's numbering (bytes are ids 0-255, merge
    ``k`` makes id ``256 + k``, special tokens come after). With ``vocab=`` (a list of bytes, one per id, as a
    library's vocabulary gives it) the ids are that vocabulary's: each byte's id and each merge's result are looked
    up in it by their bytes, and ``special_tokens`` may be a ``{text: id}`` mapping. Raises ValueError for a merge
    that is not a pair, a merge that uses an id that does not exist yet, or a ``vocab`` that lacks a byte or a
    merge's result.
    """

    def __init__(self, merges: Iterable[tuple[int, int]], *, pattern: str = GPT2_SPLIT,
                 special_tokens: Iterable[str] | dict = (), vocab: Sequence[bytes] | None = None):
        merges = list(merges)
        for k, m in enumerate(merges):
            if not (isinstance(m, (tuple, list)) and len(m) == 2):
                checks.fail(f"merge {k} = {checks.show(m)} is not a pair of ids: pass merges as [(a, b), ...]")
        self.merges = [tuple(m) for m in merges]
        self._split = _compile(pattern)
        self.pattern = pattern
        given_ids = dict(special_tokens) if isinstance(special_tokens, dict) else None
        specials = _specials(list(special_tokens))
        if vocab is None:
            if given_ids is not None:
                checks.fail("special_tokens={text: id} needs vocab=: without it, pass a list of texts")
            self.vocab = [bytes([i]) for i in range(256)]
            self.byte_ids = list(range(256))
            for k, (a, b) in enumerate(self.merges):
                if not (checks.is_integer(a) and checks.is_integer(b) and 0 <= a < 256 + k and 0 <= b < 256 + k):
                    checks.fail(f"merge {k} = {(a, b)} uses an id that does not exist yet: merges must be in order")
                self.vocab.append(self.vocab[a] + self.vocab[b])
            self.merge_ids = list(range(256, 256 + len(self.merges)))
            self.special_tokens = {s: len(self.vocab) + k for k, s in enumerate(specials)}
            self.vocab += [s.encode("utf-8") for s in specials]
        else:
            self.vocab = [bytes(v) for v in vocab]
            if given_ids is None:
                given_ids = {}
                for s in specials:
                    hits = [i for i, v in enumerate(self.vocab) if v == s.encode("utf-8")]
                    if not hits:
                        checks.fail(f"special token {s!r} is not in vocab: add it to the vocabulary first")
                    given_ids[s] = hits[0]
            for s, i in given_ids.items():
                if not (checks.is_integer(i) and 0 <= i < len(self.vocab)):
                    checks.fail(f"special token {s!r} has id {checks.show(i)}, not in the vocabulary of "
                                f"{len(self.vocab)}: pass ids 0..{len(self.vocab) - 1}")
            self.special_tokens = {s: int(i) for s, i in given_ids.items()}
            special_ids = set(self.special_tokens.values())
            by_bytes: dict[bytes, int] = {}
            for i, v in enumerate(self.vocab):
                if i not in special_ids:
                    by_bytes.setdefault(v, i)
            # a byte with no token of its own is dropped by encode, as Hugging Face's BPE does without an unknown
            # token (SmolLM2's vocabulary lacks 21 of the 256 bytes)
            self.byte_ids = [by_bytes.get(bytes([b])) for b in range(256)]
            self.merge_ids = []
            for k, (a, b) in enumerate(self.merges):
                if not (checks.is_integer(a) and checks.is_integer(b) and 0 <= a < len(self.vocab)
                        and 0 <= b < len(self.vocab)):
                    checks.fail(f"merge {k} = {(a, b)} uses an id outside the vocabulary of {len(self.vocab)}")
                new = by_bytes.get(self.vocab[a] + self.vocab[b])
                if new is None:
                    checks.fail(f"merge {k} = {(a, b)} makes {self.vocab[a] + self.vocab[b]!r}, which is not in "
                                "vocab: pass the vocabulary these merges were trained with")
                self.merge_ids.append(new)
        self.ranks = {}
        self._merged = {}
        for k, (pair, new) in enumerate(zip(self.merges, self.merge_ids)):
            if pair not in self.ranks:  # the earliest rank of a pair wins, as in the libraries
                self.ranks[pair] = k
                self._merged[pair] = new
        self._special_split = (regex.compile("(" + "|".join(regex.escape(s) for s in
                                                          sorted(self.special_tokens, key=len, reverse=True)) + ")")
                               if self.special_tokens else None)
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"BPE(vocab_size={len(self)}, merges={len(self.merges)}, special_tokens={list(self.special_tokens)})"

    # ------------------------------------------------------------------------------------------------ training
    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int, *, pattern: str = GPT2_SPLIT,
              special_tokens: Iterable[str] = ()) -> "BPE":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text`` (notebook 03).

        ``text`` is one string or a list (any iterable) of documents, such as lines; each document is pre-split on
        its own, so no chunk, and so no merge, spans two of them (as Hugging Face's ``train_from_iterator`` treats
        its sequences). Stops early when no pair occurs twice. Special tokens never take part in training: each
        occurrence of a special token's text is cut out first (it marks a boundary, as ``<|endoftext|>`` between
        documents), so no merge crosses it or learns its pieces. Raises ValueError if ``text`` is neither a string
        nor strings, if ``vocab_size`` is not an integer or leaves no room for the 256 bytes and the special tokens,
        or if ``pattern`` is not a regular expression.
        """
        specials = _specials(special_tokens)
        if isinstance(text, str):
            docs = [text]
        elif isinstance(text, (bytes, bytearray, dict)) or not hasattr(text, "__iter__"):
            checks.fail(f"text={checks.show(text)} is not a string or a list of strings: pass the training text")
        else:
            docs = list(text)
        for k, doc in enumerate(docs):
            if not isinstance(doc, str):
                checks.fail(f"document {k} = {checks.show(doc)} is not a string: pass the training text as strings")
        least = 256 + len(specials)
        vocab_size = checks.integer("vocab_size", vocab_size, low=least,
                                    fix=f"the 256 byte ids plus {len(specials)} special tokens need {least}")
        n_merges = vocab_size - least
        split = _compile(pattern)
        # each piece between special tokens is pre-split on its own, as encode does: joining the pieces would make
        # chunks (and merges) across a document boundary, "end<|endoftext|>Start" -> "endStart"
        cut = regex.compile("|".join(regex.escape(s) for s in specials)) if specials else None
        parts = (part for doc in docs for part in (cut.split(doc) if cut else (doc,)))
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

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_huggingface(cls, tokenizer, *, max_merges: int | None = None) -> "BPE":
        """The byte-level BPE of a Hugging Face tokenizer, with its own ids (notebook 03).

        ``tokenizer``: a ``tokenizers.Tokenizer``, a transformers fast tokenizer (its ``backend_tokenizer`` is
        read), the path of a ``tokenizer.json``, or that file's content as a dict. Its merges (in rank order), its
        vocabulary (token strings mapped back to bytes with :func:`bytes_to_unicode`) and its added tokens become
        ``merges``, ``vocab`` and ``special_tokens``; its pre-tokenizer becomes ``pattern``: ``ByteLevel`` alone is
        :data:`GPT2_SPLIT`, ``Sequence([Digits(individual_digits=True), ByteLevel])`` is :data:`GPT2_DIGITS_SPLIT`.
        ``encode(text)`` then equals ``tokenizer.encode(text, add_special_tokens=False)`` id for id.
        ``max_merges`` keeps only the first merges: the tokenizer that training would have given at that size.
        Raises ValueError for a tokenizer this class cannot reproduce (not BPE, a normalizer, another pre-tokenizer,
        ``add_prefix_space=True``, byte fallback).
        """
        import json
        import os

        if isinstance(tokenizer, dict):
            spec = tokenizer
        elif isinstance(tokenizer, (str, os.PathLike)):
            with open(tokenizer, encoding="utf-8") as f:
                spec = json.load(f)
        else:
            backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
            if not hasattr(backend, "to_str"):
                checks.fail(f"tokenizer={type(tokenizer).__name__} is not a Hugging Face fast tokenizer: pass a "
                            "tokenizers.Tokenizer, a transformers fast tokenizer or a tokenizer.json path")
            spec = json.loads(backend.to_str())
        model = spec.get("model") or {}
        if model.get("type") != "BPE":
            checks.fail(f"model type {model.get('type')!r} is not BPE: only byte-level BPE tokenizers load here")
        if spec.get("normalizer") is not None:
            checks.fail(f"normalizer {spec['normalizer'].get('type')!r} is not supported: this BPE does not "
                        "normalise text, pass a tokenizer without one")
        if model.get("byte_fallback") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
            checks.fail("byte_fallback, continuing_subword_prefix and end_of_word_suffix are not supported: pass a "
                        "byte-level BPE such as GPT-2's or SmolLM2's")
        pre = spec.get("pre_tokenizer") or {}
        steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
        kinds = [st.get("type") for st in steps]
        if kinds == ["ByteLevel"]:
            pattern = GPT2_SPLIT
        elif kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
            pattern = GPT2_DIGITS_SPLIT
        else:
            checks.fail(f"pre-tokenizer {kinds} is not supported: ByteLevel, or Digits(individual_digits=True) "
                        "then ByteLevel, are")
        level = steps[-1]
        if level.get("add_prefix_space") or not level.get("use_regex", True):
            checks.fail("ByteLevel(add_prefix_space=True) or use_regex=False is not supported: pass a tokenizer "
                        "with add_prefix_space=False and use_regex=True")
        to_byte = {c: b for b, c in bytes_to_unicode().items()}
        token_id = model["vocab"]
        added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        size = max([*token_id.values(), *added.values()]) + 1
        vocab = [b""] * size
        for t, i in token_id.items():
            vocab[i] = bytes(to_byte[c] for c in t) if i not in added.values() else t.encode("utf-8")
        for t, i in added.items():
            vocab[i] = t.encode("utf-8")
        merges = [m.split(" ", 1) if isinstance(m, str) else m for m in model.get("merges", [])]
        if max_merges is not None:
            max_merges = checks.integer("max_merges", max_merges, low=0, fix="pass how many merges to keep")
            merges = merges[:max_merges]
        return cls([(token_id[a], token_id[b]) for a, b in merges], pattern=pattern, special_tokens=added,
                   vocab=vocab)

    # ------------------------------------------------------------------------------------------------ encoding
    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        byte_ids, ranks = self.byte_ids, self.ranks
        ids = [byte_ids[b] for b in chunk.encode("utf-8", "surrogateescape") if byte_ids[b] is not None]
        while len(ids) >= 2:  # apply the earliest-learned merge present, as training did
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, 1 << 62))
            if pair not in ranks:
                break
            ids = merge_pair(ids, pair, self._merged[pair])
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
