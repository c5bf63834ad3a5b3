"""Characters as tokens: the tiny GPT's tokenizer (notebook 10).

A 49k-entry BPE vocabulary would put almost every parameter of a small model in its embedding table; a character
vocabulary of a few dozen entries leaves them to the blocks.
"""
from __future__ import annotations


import numpy as np
import torch

from lmkit import checks


class CharTokenizer:
    """Characters <-> ids; the vocabulary is every character of the training text, sorted (notebook 10)."""

    def __init__(self, chars: str):
        checks.text("chars", chars, blank_ok=True, fix="pass the vocabulary's characters, e.g. from_text(text)")
        if len(set(chars)) != len(chars):
            checks.fail(f"chars must be a non-empty string of distinct characters, got {len(chars)} chars with "
                        f"{len(chars) - len(set(chars))} repeated: build it with CharTokenizer.from_text(text)")
        self.chars = chars
        self._codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self._order = np.argsort(self._codes)

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Ids of ``text`` as a 1-D int64 tensor; a character outside the vocabulary raises ValueError."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        pos = np.searchsorted(self._codes[self._order], codes).clip(0, len(self.chars) - 1)
        ids = self._order[pos]
        bad = self._codes[ids] != codes
        if bad.any():
            raise ValueError(f"character {text[int(bad.argmax())]!r} is not in the vocabulary: "
                             "build the tokenizer from a text that contains it")
        return torch.from_numpy(ids)

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in torch.as_tensor(ids).flatten().tolist())
