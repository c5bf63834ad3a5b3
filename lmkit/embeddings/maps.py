"""2-D maps of word vectors with PCA or t-SNE, guarded against the inputs that break them (notebook 02).

scikit-learn's t-SNE ends the Python process with a segmentation fault when every row is the same (measured with
scikit-learn 1.9.1), which is what a learner gets by typing one word several times into the explorer. So
:func:`project_2d` checks its input first: NaN or infinite values, too few rows or columns, fewer than three
*different* vectors and (for t-SNE's cosine metric) zero vectors are refused with a one-line ``ValueError``;
repeated rows are projected once and share their point, a well-defined result.
"""
from __future__ import annotations

import numpy as np
import torch

from lmkit import checks
from lmkit.embeddings.matrix import word_vectors

__all__ = ["METHODS", "draw_map", "map_coordinates", "parse_groups", "plot_map", "project_2d"]

METHODS = {"pca": "PCA", "tsne": "t-SNE"}
"""The projections :func:`project_2d` offers, by key (``"t-SNE"`` and ``"TSNE"`` are read as ``"tsne"``)."""


def _method(method) -> str:
    key = str(method).lower().replace("-", "").replace("_", "")
    if key not in METHODS:
        checks.one_of("method", method, METHODS, fix="use 'pca' or 'tsne' (any case; 't-SNE' also works)")
    return key


def _as_matrix(X) -> np.ndarray:
    """``X`` as a finite float32 ``[n, d]`` array with ``n >= 3`` and ``d >= 2``, or a one-line ValueError."""
    try:
        if isinstance(X, torch.Tensor):
            X = X.detach().float().cpu().numpy()
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"cannot read {type(X).__name__} as a matrix of numbers: pass a [n, d] array or "
                         "tensor") from None
    if X.ndim != 2 or X.shape[0] < 3:
        raise ValueError(f"need at least 3 vectors to make a map, got an array of shape {X.shape}: add more words")
    if X.shape[1] < 2:
        raise ValueError(f"the vectors have {X.shape[1]} dimension: a 2-D map needs at least 2")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ValueError(f"rows {bad[:5].tolist()} hold NaN or infinite values: a map needs finite vectors")
    return X


def project_2d(X, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project the rows of ``X`` (``[n, d]``) to 2-D with PCA or t-SNE (cosine metric): a ``[n, 2]`` array.

    PCA is linear and deterministic: distances along its axes mean something. t-SNE (van der Maaten & Hinton,
    2008) keeps neighbourhoods, not distances, and changes with ``seed``. Both come from scikit-learn. Identical
    rows (for t-SNE: rows pointing the same way) get the same point. Raises ``ValueError`` for NaN or infinite
    values, fewer than 3 different vectors, fewer than 2 columns, or (t-SNE) an all-zero row (notebook 02).
    """
    key = _method(method)
    seed = checks.seed("seed", seed)
    X = _as_matrix(X)
    same = X                              # rows equal here get one point
    if key == "tsne":
        norms = np.linalg.norm(X, axis=1)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValueError(f"rows {zero[:5].tolist()} are all zeros: t-SNE's cosine distance is undefined for "
                             "them; leave them out or use method='pca'")
        same = X / norms[:, None]
    _, first, inverse = np.unique(same, axis=0, return_index=True, return_inverse=True)
    inverse, distinct = inverse.reshape(-1), first.size
    if distinct < 3:
        kind = "vectors" if key == "pca" else "directions"
        raise ValueError(f"the {X.shape[0]} vectors hold only {distinct} different {kind}: a map needs at least 3 "
                         "(the same word typed twice, or words made of the same tokens, give the same vector); "
                         "add different words")
    if key == "pca":  # fitted on every row (a repeated word weighs more), each distinct row projected once
        from sklearn.decomposition import PCA

        return PCA(n_components=2).fit(X).transform(X[first])[inverse]
    from sklearn.manifold import TSNE
    from sklearn.metrics import pairwise_distances

    reps = X[np.sort(first)]              # each distinct row once, in the order given
    if not np.any(pairwise_distances(reps, metric="cosine") > 0):
        raise ValueError("the vectors point the same way to float precision: t-SNE needs different directions; "
                         "use method='pca' or add different words")
    perplexity = float(min(30, max(2, (reps.shape[0] - 1) // 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca",
              random_state=int(seed)).fit_transform(reps)
    order = np.argsort(first)           # np.unique's order -> the row order of reps
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return xy[rank[inverse]]


def _check_groups(groups) -> None:
    if not isinstance(groups, dict) or not groups:
        raise ValueError(f"groups={groups!r:.60} is not a non-empty dict: pass e.g. {{'colours': ['red', 'blue']}}")
    for name, words in groups.items():
        if isinstance(words, str):
            checks.fail(f"group {name!r} holds one string {words!r:.60}: pass a list of words, e.g. ['red', 'blue']")
        checks.texts(f"group {name!r}", words, what="words", fix="pass e.g. ['red', 'blue']")


def map_coordinates(lm, groups: dict[str, list[str]], method: str = "pca", seed: int = 0):
    """The 2-D map of the static word vectors of ``groups`` as a DataFrame: ``word, group, x, y`` (notebook 02).

    ``groups`` maps a group name to its words, e.g. ``{"colours": ["red", "blue"], "numbers": ["one", "two"]}``;
    vectors come from :func:`lmkit.embeddings.word_vectors`, coordinates from :func:`project_2d`.
    """
    import pandas as pd

    _check_groups(groups)
    key = _method(method)
    words = [w for ws in groups.values() for w in ws]
    labels = [g for g, ws in groups.items() for _ in ws]
    xy = project_2d(word_vectors(lm, words)[0], key, seed)
    return pd.DataFrame({"word": words, "group": labels, "x": xy[:, 0], "y": xy[:, 1]})


def plot_map(lm, groups: dict[str, list[str]], method: str = "pca", ax=None, seed: int = 0):
    """A labelled 2-D map of the static vectors of word groups, one colour per group; returns the axes (notebook 02).

    ``groups`` as in :func:`map_coordinates`.
    """
    coords = map_coordinates(lm, groups, method, seed)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 6))
    return draw_map(coords, method, ax, title=f"{getattr(lm, 'name', 'model')}: input embeddings")


def draw_map(coords, method: str, ax, title: str = "input embeddings"):
    """Draw :func:`map_coordinates`' table on ``ax``: one colour per group, each point labelled with its word."""
    import matplotlib

    colours = matplotlib.colormaps["tab10"]
    for c, (group, rows) in enumerate(coords.groupby("group", sort=False)):
        ax.scatter(rows["x"], rows["y"], color=colours(c % 10), label=group, s=30)
        for row in rows.itertuples():
            ax.annotate(row.word, (row.x, row.y), xytext=(3, 3), textcoords="offset points", fontsize=9,
                        color=colours(c % 10))
    name = METHODS[_method(method)]
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_title(f"{title} of {len(coords)} words, {name}")
    ax.legend(loc="best", fontsize=8)
    return ax


def parse_groups(text: str) -> dict[str, list[str]]:
    """Parse lines ``group: word, word, ...`` (a line without ``:`` is a group named after its first word).

    Used by the explorer widget (notebook 02). Fewer than 3 words raise a one-line ``ValueError``.
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
