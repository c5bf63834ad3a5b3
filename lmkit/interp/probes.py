"""Linear probes with a control task: what a logistic regression can read from each layer's residual stream
(notebook 05).

A probe's accuracy alone says little: a flexible enough probe learns any labelling of the words it has seen.
Hewitt & Liang (2019), "Designing and Interpreting Probes with Control Tasks", train the same probe on a *control
task* that gives each word type a random label (kept across its occurrences); *selectivity* is the task's accuracy
minus the control's. Here the property is whether a word that can be a noun or a verb (" walk", " dance") is used as
one or the other in its sentence: the word's own embedding cannot tell (half its uses are each), its context can.
"""
from __future__ import annotations

import numpy as np
import torch

from lmkit import checks
from lmkit.interp.hooks import run_with_cache, special_text, token_ids
from lmkit.logprobs import pad

__all__ = ["noun_verb_data", "word_activations", "control_labels", "probe_accuracy", "plot_probes"]


def noun_verb_data(words=None) -> list[dict]:
    """Rows of ``data/interp/noun_verb.jsonl`` (``text``, ``word``, ``label``, ``frame``, ``split``), optionally
    only those whose ``word`` is in ``words`` (notebook 05; the set is described in ``data/interp/README.md``)."""
    from lmkit.data import data_file
    from lmkit.files import read_jsonl

    rows = read_jsonl(data_file("interp/noun_verb.jsonl"),
                      {"text": str, "word": str, "label": str, "frame": str, "split": str})
    if words is not None:
        words = checks.texts("words", words)
        unknown = set(words) - {r["word"] for r in rows}
        if unknown:
            raise ValueError(f"words {sorted(unknown)} are not in the set: pick from "
                             f"{sorted({r['word'] for r in rows})}")
        rows = [r for r in rows if r["word"] in set(words)]
    return rows


def word_activations(lm, texts, words, *, batch_size: int = 64) -> torch.Tensor:
    """``[layers + 1, N, d]``: the residual stream at the (last) token of ``words[i]`` in ``texts[i]``; row 0 is
    the embedding, row ``l + 1`` the output of layer ``l`` (float32, CPU) (notebook 05).

    Texts run in batches, padded on the right (:func:`lmkit.logprobs.pad`): in a causal model a position never sees
    the padding after it. ``texts`` and ``words`` are paired by index, so their lengths must match. They are data,
    not prompts: a text or word holding a special token's text (``"<|im_end|>"``) is refused, since the tokenizer
    would turn it into that token inside the sentence. Every text is tokenized and checked (the word is in it, it
    fits the model's context) before the first forward pass.
    """
    from lmkit.embeddings import word_span

    texts, words = checks.texts("texts", texts), checks.texts("words", words)
    if len(texts) != len(words):
        checks.fail(f"{len(texts)} texts and {len(words)} words: pass one word for each text")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="pass e.g. batch_size=64")
    n = lm.model.config.num_hidden_layers
    points = [("embed", 0)] + [("resid", l) for l in range(n)]
    for name, items in (("texts", texts), ("words", words)):
        for i, item in enumerate(items):
            special = special_text(lm, item)
            if special is not None:
                checks.fail(f"{name}[{i}]={checks.show(item, 50)} contains the special token {special!r}: the model "
                            "would read that token inside the sentence; remove it from the data")
    positions = [word_span(lm, text, " " + word)[-1] for text, word in zip(texts, words, strict=True)]
    all_ids = [token_ids(lm, t, f"texts[{i}]")[0] for i, t in enumerate(texts)]
    columns = []
    for start in range(0, len(texts), batch_size):
        ids = all_ids[start:start + batch_size]
        batch = pad([{"input_ids": row} for row in ids], lm.tokenizer)["input_ids"]
        _, cache = run_with_cache(lm, batch, points)
        rows = torch.arange(len(ids))
        pos = torch.tensor(positions[start:start + batch_size])
        columns.append(torch.stack([cache[p][rows, pos] for p in points]))
    return torch.cat(columns, 1)


def control_labels(types, seed: int = 0) -> dict:
    """A random binary label for each distinct type in ``types``, half of them 1 (Hewitt & Liang 2019's control
    task: a label fixed per word type, unrelated to the property) (notebook 05)."""
    uniq = sorted(set(checks.texts("types", types, what="word types")))
    rng = np.random.default_rng(checks.seed("seed", seed))
    flips = rng.permutation(len(uniq)) < len(uniq) // 2
    return {t: int(f) for t, f in zip(uniq, flips)}


def probe_accuracy(features: torch.Tensor, labels, train, *, c: float = 0.1, seed: int = 0) -> np.ndarray:
    """Held-out accuracy of a logistic-regression probe (scikit-learn, features standardised) per layer.

    ``features``: ``[layers, N, d]``; ``labels``: ``[N]`` (binary or more); ``train``: ``[N]`` booleans, the rest
    is the test set. ``c`` is the inverse L2 strength. Returns ``[layers]`` accuracies on the test rows
    (notebook 05).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    c = checks.real("c", c, low=0.0, low_open=True, fix="pass the inverse L2 strength, e.g. c=0.1")
    seed = checks.seed("seed", seed)
    if not isinstance(features, torch.Tensor) or features.dim() != 3 or not features.is_floating_point():
        checks.fail(f"features has shape {tuple(getattr(features, 'shape', ()))}: pass a [layers, N, d] float "
                    "tensor, as from word_activations")
    if not torch.isfinite(features).all():
        checks.fail("features hold NaN or infinite values: pass finite activations")
    y, train = np.asarray(labels), np.asarray(train)
    if train.dtype != bool:
        checks.fail(f"train has dtype {train.dtype}, not booleans: pass one True/False per row (True = train), "
                    "e.g. np.array([r['split'] == 'train' for r in rows])")
    if y.ndim != 1 or train.ndim != 1 or features.shape[1] != len(y) or len(y) != len(train):
        raise ValueError(f"features have {features.shape[1]} rows, labels {len(y)}, train {len(train)}: pass one "
                         "label and one train flag per row")
    if train.all() or not train.any():
        raise ValueError("train selects all rows or none: keep some rows for the test set and some for training")
    if len(np.unique(y[train])) < 2:
        checks.fail(f"the training rows all have the label {y[train].tolist()[0]!r}: a probe needs at least two "
                    "classes to learn from")
    acc = []
    for x in features.numpy():
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
        probe.fit(x[train], y[train])
        acc.append(probe.score(x[~train], y[~train]))
    return np.array(acc)


def plot_probes(curves: dict, ax=None, title: str = "linear probe accuracy by layer", chance: float | None = 0.5,
                layers=None):
    """Accuracy per layer for each named curve (``{"task": acc, "control": acc, ...}``); ``layers`` gives each
    entry's layer (-1 = the embedding; default -1, 0, 1, ...) (notebook 05)."""
    import matplotlib.pyplot as plt

    if chance is not None:
        chance = checks.probability("chance", chance, fix="pass the accuracy of guessing, e.g. 0.5, or None")
    if not isinstance(curves, dict) or not curves:
        checks.fail(f"curves={checks.show(curves)} must be a non-empty dict {{name: accuracies}}: pass e.g. "
                    "{'task': acc_task}")
    if layers is not None:
        layers = list(layers)
        for name, acc in curves.items():
            if len(acc) != len(layers):
                checks.fail(f"curve {name!r} has {len(acc)} values but layers has {len(layers)}: pass one layer per "
                            "value")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    for name, acc in curves.items():
        x = np.arange(-1, len(acc) - 1) if layers is None else np.asarray(layers)
        ax.plot(x, acc, marker="o", markersize=3, label=name)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", label="chance")
    ax.set_xlabel("residual stream after layer (-1 = the embedding)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(title)
    ax.legend()
    return ax
