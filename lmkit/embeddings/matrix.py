"""The embedding matrix: a row per token, the lookup as a product, word vectors and nearest neighbours (notebook 02)."""
from __future__ import annotations

import torch

from lmkit import checks
from lmkit.embeddings.token_tables import _tokenizer

__all__ = ["embedding_matrix", "neighbours", "one_hot_embed", "word_ids", "word_vectors"]


def embedding_matrix(lm) -> torch.Tensor:
    """The input embedding matrix ``W`` of shape ``[vocab, d]``: row ``i`` is the vector of token ``i`` (notebook 02)."""
    return lm.model.get_input_embeddings().weight


def one_hot_embed(lm, ids) -> torch.Tensor:
    """``e = onehot(ids) · W``: the embedding lookup written as a matrix product, ``[T, d]`` (notebook 02).

    Written by hand because it is the lesson; the model itself does the cheaper ``W[ids]``.
    """
    W = embedding_matrix(lm)
    ids = torch.as_tensor(ids, device=W.device).reshape(-1)
    x = torch.nn.functional.one_hot(ids, num_classes=W.shape[0]).to(W.dtype)
    return x @ W


def _is_cjk(text: str) -> bool:
    return any("\u3000" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" for c in text)


def word_ids(lm, word: str, leading_space: bool = True) -> list[int]:
    """Token ids of ``word`` as it appears inside a sentence (notebook 02).

    With ``leading_space`` a space is put in front (``" cat"`` is one token, ``"cat"`` another) unless the word
    already starts with one or is Chinese/Japanese, which are written without spaces.
    """
    checks.text("word", word, fix="an empty word has no tokens; pass a non-empty string such as 'cat'")
    checks.boolean("leading_space", leading_space)
    if leading_space and not word[0].isspace() and not _is_cjk(word):
        word = " " + word
    return _tokenizer(lm)(word, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def word_vectors(lm, words, leading_space: bool = True) -> tuple[torch.Tensor, list[int]]:
    """Static vectors of ``words``: the mean of the embedding rows of each word's tokens, ``[n, d]`` (notebook 02).

    Also returns how many tokens each word took (1 for most common English words).
    """
    if isinstance(words, str):
        checks.fail(f"words={checks.show(words)} is one string: pass a list such as ['cat', 'dog']")
    W = embedding_matrix(lm).detach()
    vecs, counts = [], []
    for w in words:
        ids = word_ids(lm, w, leading_space)
        vecs.append(W[ids].mean(0))
        counts.append(len(ids))
    if not vecs:
        raise ValueError("no words given: pass a list such as ['cat', 'dog']")
    return torch.stack(vecs).float().cpu(), counts


def _variant_key(text: str) -> str:
    return text.strip().lower().rstrip("s")


@torch.no_grad()
def neighbours(lm, query, k: int = 10, skip_variants: bool = True, leading_space: bool = True):
    """The ``k`` tokens whose embedding rows have the highest cosine similarity to ``query`` (notebook 02).

    ``query`` is a word (its :func:`word_vectors` vector) or a ``[d]`` tensor. With ``skip_variants`` a token is left
    out when its text, with surrounding spaces removed, lower-cased and stripped of every trailing ``s``, equals the
    query's or a better neighbour's (``" Cat"``, ``"cats"``; also ``"clas"`` after ``"class"``), or when it decodes
    to nothing or to a broken character (``\ufffd``), so the list shows other words.
    """
    import pandas as pd

    k = checks.integer("k", k, low=1, must="a positive integer", fix="the number of neighbours, such as k=10")
    checks.boolean("skip_variants", skip_variants)
    W = torch.nn.functional.normalize(embedding_matrix(lm).detach().float(), dim=-1)
    if isinstance(query, str):
        vec = word_vectors(lm, [query], leading_space)[0][0]
        seen = {_variant_key(query)} if skip_variants else set()
    else:
        vec = torch.as_tensor(query, dtype=torch.float32)
        seen = set()
    if vec.shape != (W.shape[1],):
        raise ValueError(f"query vector of shape {tuple(vec.shape)}: pass a word or a vector of size {W.shape[1]}")
    sims = W @ torch.nn.functional.normalize(vec.to(W.device), dim=0)
    tok = _tokenizer(lm)
    rows = []
    for tid in sims.argsort(descending=True).tolist():
        text = tok.decode([tid])
        key = _variant_key(text)
        if skip_variants:
            if not key or "\ufffd" in text or key in seen:
                continue
            seen.add(key)
        rows.append({"token": text, "id": tid, "cosine": round(float(sims[tid]), 4)})
        if len(rows) == k:
            break
    return pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="rank"))
