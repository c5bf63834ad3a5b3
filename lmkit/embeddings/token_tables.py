"""A text's tokens as a table: ids, byte-level BPE pieces, their bytes and the characters they cover (notebook 02)."""
from __future__ import annotations

from functools import lru_cache

from lmkit import checks

__all__ = ["piece_bytes", "token_counts", "tokens"]


def _tokenizer(lm_or_tokenizer):
    return getattr(lm_or_tokenizer, "tokenizer", lm_or_tokenizer)


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {c: b for b, c in bytes_to_unicode().items()}


def piece_bytes(piece: str) -> bytes:
    """The raw bytes of a byte-level BPE piece (``"Ġcat"`` -> ``b" cat"``); other pieces as UTF-8 (notebook 02)."""
    table = _byte_decoder()
    if all(c in table for c in piece):
        return bytes(table[c] for c in piece)
    return piece.encode("utf-8")


def tokens(lm_or_tokenizer, text: str):
    """One row per token of ``text``: id, BPE piece, its raw bytes, its text and the characters it covers (notebook 02).

    No special tokens are added. A piece that holds only part of a multi-byte character (most Chinese characters are
    3 UTF-8 bytes) decodes alone to ``"�"``; its bytes and the character span show where it belongs.
    """
    import pandas as pd

    checks.text("text", text, blank_ok=True, fix="tokens needs a non-empty string, e.g. 'The cat sat.'")
    tok = _tokenizer(lm_or_tokenizer)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    rows = []
    for i, (tid, (a, b)) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
        piece = tok.convert_ids_to_tokens(tid)
        rows.append({"id": tid, "piece": piece, "bytes": piece_bytes(piece).hex(" "),
                     "decoded": tok.decode([tid]), "covers": text[a:b]})
    return pd.DataFrame(rows).rename_axis("position")


def token_counts(lm_or_tokenizer, texts: dict[str, str]):
    """Characters, UTF-8 bytes and tokens of each text, with bytes per token; and whether decode round-trips.

    ``texts`` maps a label to a text (notebook 02).
    """
    import pandas as pd

    tok = _tokenizer(lm_or_tokenizer)
    rows = []
    for label, text in texts.items():
        ids = tok(text, add_special_tokens=False)["input_ids"]
        rows.append({"text": label, "characters": len(text), "bytes": len(text.encode("utf-8")), "tokens": len(ids),
                     "characters/token": round(len(text) / max(len(ids), 1), 2),
                     "bytes/token": round(len(text.encode("utf-8")) / max(len(ids), 1), 2),
                     "round trip": tok.decode(ids) == text})
    return pd.DataFrame(rows).set_index("text")
