"""Contextual embeddings: a word's vector at every layer, and how context moves it (notebook 02)."""
from __future__ import annotations

import torch

from lmkit import checks, logprobs
from lmkit.embeddings.token_tables import _tokenizer

__all__ = ["compare_gaps", "contextual_vectors", "cosine_matrix", "hidden_states_many", "hidden_states_of",
           "layer_cosine", "mean_hidden_state", "plot_layer_curves", "sense_gap", "word_span"]


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


def cosine_matrix(vectors, center: torch.Tensor | None = None) -> torch.Tensor:
    """Centred cosine of every pair of ``n`` word vectors at every layer: ``[layers + 1, n, n]`` (notebook 02).

    ``vectors``: a list of ``n`` tensors ``[layers + 1, d]`` (one word in ``n`` sentences); ``center``:
    ``[layers + 1, d]`` or ``None``. Entry ``[l, i, j]`` is :func:`layer_cosine` of vectors ``i`` and ``j`` at layer
    ``l``. Raises a one-line ``ValueError`` for fewer than two vectors.
    """
    vectors = list(vectors)
    if len(vectors) < 2:
        raise ValueError(f"{len(vectors)} vector(s): pass at least two word vectors to compare")
    v = torch.stack(vectors).float()                                            # [n, layers + 1, d]
    if center is not None:
        v = v - center
    v = torch.nn.functional.normalize(v, dim=-1).transpose(0, 1)                # [layers + 1, n, d]
    return v @ v.transpose(1, 2)


def _labels(labels, n: int) -> torch.Tensor:
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} sentences: pass one group label per sentence")
    kinds = sorted(set(labels), key=labels.index)
    if len(kinds) != 2 or min(labels.count(k) for k in kinds) < 2:
        raise ValueError(f"labels {kinds} with counts {[labels.count(k) for k in kinds]}: pass two groups of at least "
                         "two sentences each")
    return torch.tensor([kinds.index(x) for x in labels])


def sense_gap(sim: torch.Tensor, labels) -> torch.Tensor:
    """Mean cosine over the pairs within a group minus over the pairs across the two groups (notebook 02).

    ``sim``: ``[..., n, n]`` from :func:`cosine_matrix` (the diagonal is ignored); ``labels``: ``n`` group labels,
    two groups of at least two. Returns ``[...]`` (one gap per layer for a ``[layers + 1, n, n]`` input).
    """
    lab = _labels(labels, sim.shape[-1])
    same = lab[:, None] == lab[None, :]
    within = same & ~torch.eye(len(lab), dtype=torch.bool)
    return sim[..., within].mean(-1) - sim[..., ~same].mean(-1)


def compare_gaps(sim: torch.Tensor, labels, control: torch.Tensor | None = None, *, confidence: float = 0.95,
                 n_resamples: int = 2000, seed: int = 0):
    """The within − across gap of :func:`sense_gap` with a bootstrap interval over the sentences (notebook 02).

    ``sim``: ``[n, n]`` cosines of one word in ``n`` sentences (one layer of :func:`cosine_matrix`); ``labels``: their
    two groups. Every pair cosine shares its sentences with other pairs, so the pairs are not independent items and
    per-sentence means are not either: each resample draws ``n`` sentences with replacement within each group,
    recomputes the whole statistic on the pairs of distinct draws (a sentence drawn twice is never paired with
    itself), and the percentile interval of those statistics is reported (Efron & Tibshirani 1993, ch. 13).

    Without ``control``, the :class:`lmkit.stats.Comparison` compares within (``mean_a``) against across (``mean_b``):
    ``diff`` is the gap. With ``control`` (``[n, n]``, another word in the same ``n`` sentence frames, in the same
    order), it compares the two gaps, ``gap(sim) − gap(control)``, resampling the same sentences for both (paired).
    ``verdict`` is "higher" when the whole interval is above 0. Raises a one-line ``ValueError`` for bad shapes or
    labels.
    """
    from lmkit import checks
    from lmkit.stats import Comparison, _verdict

    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim has shape {tuple(sim.shape)}: pass one layer, [n, n], e.g. cosine_matrix(...)[-1]")
    if control is not None and control.shape != sim.shape:
        raise ValueError(f"control has shape {tuple(control.shape)}, sim {tuple(sim.shape)}: pass the control word's "
                         "cosines in the same sentences, in the same order")
    confidence = checks.probability("confidence", confidence, open_low=True, open_high=True, fix="pass e.g. 0.95")
    n_resamples = checks.integer("n_resamples", n_resamples, low=100, fix="pass e.g. n_resamples=2000")
    lab = _labels(labels, sim.shape[0])
    gen = torch.Generator().manual_seed(checks.seed("seed", seed))
    members = [torch.nonzero(lab == k).flatten() for k in (0, 1)]
    draws = torch.cat([m[torch.randint(len(m), (n_resamples, len(m)), generator=gen)] for m in members], 1)  # [B, n]
    order = torch.cat(members)                                                  # the original sentences, grouped
    distinct = draws[:, :, None] != draws[:, None, :]                           # [B, n, n]: no sentence with itself
    same = (lab[order][:, None] == lab[order][None, :])

    def parts(s, idx, ok):
        sub = s[idx[..., :, None], idx[..., None, :]]
        w, a = ok & same, ok & ~same
        return (sub * w).sum((-1, -2)) / w.sum((-1, -2)), (sub * a).sum((-1, -2)) / a.sum((-1, -2))

    full = torch.ones(len(order), len(order), dtype=torch.bool) & ~torch.eye(len(order), dtype=torch.bool)
    (w0, a0), (wb, ab) = parts(sim.float(), order, full), parts(sim.float(), draws, distinct)
    if control is None:
        mean_a, mean_b, boot = float(w0), float(a0), wb - ab
    else:
        (cw0, ca0), (cwb, cab) = parts(control.float(), order, full), parts(control.float(), draws, distinct)
        mean_a, mean_b, boot = float(w0 - a0), float(cw0 - ca0), (wb - ab) - (cwb - cab)
    alpha = (1 - confidence) / 2
    low, high = (float(x) for x in torch.quantile(boot.double(), torch.tensor([alpha, 1 - alpha], dtype=torch.double)))
    diff = mean_a - mean_b
    low, high = min(low, diff), max(high, diff)
    return Comparison(diff=diff, low=low, high=high, verdict=_verdict(low, high), mean_a=mean_a, mean_b=mean_b,
                      n_a=len(order), n_b=len(order), paired=True, confidence=confidence, method="bootstrap")


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
