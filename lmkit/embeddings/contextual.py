"""Contextual embeddings: a word's vector at every layer, and how context moves it (notebook 02)."""
from __future__ import annotations

import torch

from lmkit import checks, logprobs
from lmkit.embeddings.token_tables import _tokenizer

__all__ = ["contextual_vectors", "hidden_states_many", "hidden_states_of", "layer_cosine", "mean_hidden_state",
           "plot_layer_curves", "word_span"]


@torch.no_grad()
def hidden_states_of(lm, text: str) -> tuple[list[str], torch.Tensor]:
    """Tokens of ``text`` and the residual stream after every layer, ``[layers + 1, T, d]`` (notebook 02).

    Row 0 is the embedding lookup, row ``l`` the output of block ``l``; transformers returns the last row after
    the model's final norm.
    """
    ids = lm.encode(checks.text("text", text))
    out = lm.model(ids, output_hidden_states=True)
    return _tokenizer(lm).convert_ids_to_tokens(ids[0].tolist()), torch.stack(out.hidden_states)[:, 0].float().cpu()


@torch.no_grad()
def hidden_states_many(lm, texts, batch_size: int = 64) -> list[torch.Tensor]:
    """:func:`hidden_states_of` for many texts, run in padded batches: one ``[layers + 1, T_i, d]`` tensor per text,
    ``T_i`` its own token count (notebook 02).

    The texts are padded on the right with an attention mask: under the causal mask a real token never attends to
    the padding after it, so each text's rows equal :func:`hidden_states_of`'s up to float rounding (a batched
    matrix product sums in another order), at a fraction of the time of one forward pass per text. Raises a one-line
    ``ValueError`` for an empty list, a single string or an empty text.
    """
    if isinstance(texts, str):
        checks.fail(f"texts={checks.show(texts)} is one string: pass a list of texts, or use hidden_states_of")
    texts = [checks.text("text", t) for t in texts]
    if not texts:
        raise ValueError("texts is empty: pass a list of at least one text")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="texts per forward pass, such as 64")
    tok = _tokenizer(lm)
    device = next(lm.model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        rows = [tok(t, add_special_tokens=False)["input_ids"] for t in texts[start:start + batch_size]]
        batch = logprobs.pad([{"input_ids": r} for r in rows], tok, side="right")
        hs = torch.stack(lm.model(batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                                  output_hidden_states=True).hidden_states, 1)
        out += [h[:, :len(r)].float().cpu() for h, r in zip(hs, rows)]  # [layers + 1, T_i, d] each
    return out


def word_span(lm, text: str, word: str) -> list[int]:
    """Positions of the tokens that cover the first occurrence of ``word`` in ``text`` (notebook 02)."""
    checks.text("text", text)
    checks.text("word", word, fix="pass a word that appears in the sentence")
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
    checks.boolean("skip_first", skip_first)
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
