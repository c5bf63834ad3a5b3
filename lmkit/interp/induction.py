"""Induction heads: repeated random tokens, per-token loss on each repeat, induction scores, ablation (notebook 05).

Olsson et al. (2022), "In-context Learning and Induction Heads": on a random sequence repeated twice the first
repeat cannot be predicted, the second can, by a head that attends from the current token to the token *after* its
earlier occurrence and copies it. The induction score of a head is the mean attention it pays to that position over
the second repeat. Ablating a head replaces its output (its slice of the input of ``o_proj``) with zeros or with
its mean over the data; the rise of the second repeat's loss measures what the head was doing.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from lmkit import checks
from lmkit.interp.hooks import check_ids, check_layer, hooked, run, run_with_cache
from lmkit.layers import head_dim

__all__ = ["repeated_tokens", "induction_scores", "repeat_losses", "head_means", "ablation_edits", "ablate_heads",
           "random_heads", "check_repeated"]


def repeated_tokens(lm, seq_len: int = 50, n_seqs: int = 8, seed: int = 0) -> torch.Tensor:
    """``[n_seqs, 1 + 2·seq_len]`` ids: a start token (the tokenizer's BOS, else EOS), then ``seq_len`` random
    non-special tokens, then the same tokens again. Seeded with its own generator (notebook 05)."""
    from lmkit.decoding.settings import context_length

    most = (context_length(lm) - 1) // 2
    seq_len = checks.integer("seq_len", seq_len, low=2, high=most,
                             fix=f"1 + 2·seq_len tokens must fit the model's context of {context_length(lm)}")
    n_seqs = checks.integer("n_seqs", n_seqs, low=2, fix="pass e.g. n_seqs=8")
    seed = checks.seed("seed", seed)
    tok = lm.tokenizer
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    special = set(tok.all_special_ids)
    pool = torch.tensor([i for i in range(min(len(tok), lm.model.config.vocab_size)) if i not in special])
    gen = torch.Generator().manual_seed(seed)
    seqs = pool[torch.randint(len(pool), (n_seqs, seq_len), generator=gen)]
    return torch.cat([torch.full((n_seqs, 1), start), seqs, seqs], 1).to(lm.device)


def check_repeated(lm, tokens) -> torch.Tensor:
    """``tokens`` checked as :func:`repeated_tokens` makes them: ``[n, 1 + 2·seq_len]`` ids (``seq_len >= 2``), a
    start token then one sequence repeated twice; else a one-line ValueError (scores read at the wrong offset
    would be silently meaningless)."""
    ids = check_ids(lm, tokens, "tokens")
    t = ids.shape[1]
    fix = "pass tokens=repeated_tokens(lm, seq_len, n_seqs)"
    if t < 5 or t % 2 == 0:
        checks.fail(f"tokens has {t} columns, not 1 + 2·seq_len with seq_len >= 2: {fix}")
    s = (t - 1) // 2
    if not torch.equal(ids[:, 1:1 + s], ids[:, 1 + s:]):
        checks.fail(f"tokens[:, 1:{1 + s}] and tokens[:, {1 + s}:] differ: the second half must repeat the first; "
                    f"{fix}")
    return ids


def induction_scores(lm, seq_len: int = 50, n_seqs: int = 8, seed: int = 0, *, tokens=None) -> torch.Tensor:
    """``[layers, heads]``: each head's mean attention, over the second repeat, from a token to the token that
    followed its first occurrence (``seq_len - 1`` positions back). 1 = a perfect induction head (notebook 05).

    Attention weights are read from the model itself (``output_attentions`` under eager attention).
    ``tokens`` (as from :func:`repeated_tokens`, checked by :func:`check_repeated`) overrides
    ``seq_len``/``n_seqs``/``seed``.
    """
    from lmkit.attention import eager_attention

    ids = repeated_tokens(lm, seq_len, n_seqs, seed) if tokens is None else check_repeated(lm, tokens)
    seq_len = (ids.shape[1] - 1) // 2
    with eager_attention(lm.model), torch.inference_mode():
        att = lm.model(input_ids=ids, output_attentions=True, use_cache=False).attentions
    queries = torch.arange(1 + seq_len, 1 + 2 * seq_len)                       # the second repeat
    keys = queries - seq_len + 1                                               # after the earlier occurrence
    return torch.stack([a[:, :, queries, keys].float().mean((0, 2)).cpu() for a in att])


def repeat_losses(lm, tokens: torch.Tensor, edits: dict | None = None) -> torch.Tensor:
    """Per-token cross-entropy (nats) of predicting each token of ``tokens`` after the start token,
    ``[n_seqs, 2·seq_len]``: columns ``:seq_len`` are the first repeat, the rest the second (notebook 05)."""
    tokens = check_ids(lm, tokens, "tokens")
    if tokens.shape[1] < 2:
        checks.fail(f"tokens has {tokens.shape[1]} column: a loss needs a token to predict, pass at least two")
    logits = run(lm, tokens, edits)[:, :-1]
    return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none").cpu()


def head_means(lm, tokens: torch.Tensor) -> dict[int, torch.Tensor]:
    """``{layer: [H·d_k]}``: each layer's head outputs (before ``o_proj``) averaged over ``tokens``' sequences and
    positions, the values a mean ablation writes in (notebook 05)."""
    n = lm.model.config.num_hidden_layers
    _, cache = run_with_cache(lm, check_ids(lm, tokens, "tokens"), [("z", l) for l in range(n)])
    return {l: cache[("z", l)].mean((0, 1)) for l in range(n)}


def _head_pairs(name: str, heads, empty_ok: bool) -> list[tuple]:
    """``heads`` as a list of ``(layer, head)`` pairs (their ranges are checked by the caller)."""
    ok = hasattr(heads, "__iter__") and not isinstance(heads, (str, dict))
    pairs = list(heads) if ok else []
    if not ok or not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs) or not (pairs or empty_ok):
        checks.fail(f"{name}={checks.show(heads)} must be a {'' if empty_ok else 'non-empty '}list of (layer, head) "
                    "pairs: pass e.g. [(5, 3)]")
    return [tuple(p) for p in pairs]


def ablation_edits(lm, heads, how: str = "zero", means: dict | None = None) -> dict:
    """The edits that zero (``how="zero"``) or mean-ablate (``how="mean"``, values from ``means``) ``heads``,
    a list of ``(layer, head)`` pairs (notebook 05)."""
    checks.one_of("how", how, ("zero", "mean"))
    if how == "mean" and means is None:
        raise ValueError("how='mean' needs means=head_means(lm, tokens): pass the data's mean head outputs")
    cfg = lm.model.config
    d_k, by_layer = head_dim(cfg), {}
    for layer, head in _head_pairs("heads", heads, empty_ok=False):
        head = checks.index("head", head, cfg.num_attention_heads, negative=False,
                            what=f"layers have {cfg.num_attention_heads} heads")
        by_layer.setdefault(check_layer(lm, layer), []).append(head)
    if how == "mean":
        width = cfg.num_attention_heads * d_k
        for layer in by_layer:
            m = means.get(layer) if isinstance(means, dict) else None
            if not isinstance(m, torch.Tensor) or tuple(m.shape) != (width,):
                checks.fail(f"means has no [{width}] tensor for layer {layer} (got {checks.show(m, 40)}): pass "
                            "means=head_means(lm, tokens) of this model")

    def edit_for(layer, hs):
        def edit(x):
            x = x.clone()
            for h in hs:
                cols = slice(h * d_k, (h + 1) * d_k)
                x[..., cols] = 0.0 if how == "zero" else means[layer][cols].to(x)
            return x
        return edit
    return {("z", layer): edit_for(layer, hs) for layer, hs in by_layer.items()}


@contextmanager
def ablate_heads(lm, heads, how: str = "zero", means: dict | None = None):
    """Inside the block the model runs with ``heads`` (``[(layer, head), ...]``) ablated (notebook 05)."""
    with hooked(lm, ablation_edits(lm, heads, how, means)):
        yield lm


def random_heads(lm, k: int, seed: int = 0, exclude=()) -> list[tuple[int, int]]:
    """``k`` distinct ``(layer, head)`` pairs drawn at random (seeded), none of them in ``exclude`` (notebook 05)."""
    cfg = lm.model.config
    excluded = set(_head_pairs("exclude", exclude, empty_ok=True))
    pool = [(l, h) for l in range(cfg.num_hidden_layers) for h in range(cfg.num_attention_heads)
            if (l, h) not in excluded]
    if not pool:
        checks.fail("exclude leaves no head to draw: exclude fewer heads")
    k = checks.integer("k", k, low=1, high=len(pool), fix=f"{len(pool)} heads are available")
    seed = checks.seed("seed", seed)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:k]
    return [pool[i] for i in order.tolist()]
