"""Induction heads: repeated random tokens, per-token loss on each repeat, induction scores, ablation (notebook 11).

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
from lmkit.interp.hooks import check_layer, hooked, run, run_with_cache
from lmkit.layers import head_dim

__all__ = ["repeated_tokens", "induction_scores", "repeat_losses", "head_means", "ablation_edits", "ablate_heads",
           "random_heads"]


def repeated_tokens(lm, seq_len: int = 50, n_seqs: int = 8, seed: int = 0) -> torch.Tensor:
    """``[n_seqs, 1 + 2·seq_len]`` ids: a start token (the tokenizer's BOS, else EOS), then ``seq_len`` random
    non-special tokens, then the same tokens again. Seeded with its own generator (notebook 11)."""
    seq_len = checks.integer("seq_len", seq_len, low=2, fix="pass e.g. seq_len=50")
    n_seqs = checks.integer("n_seqs", n_seqs, low=2, fix="pass e.g. n_seqs=8")
    seed = checks.seed("seed", seed)
    tok = lm.tokenizer
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    special = set(tok.all_special_ids)
    pool = torch.tensor([i for i in range(min(len(tok), lm.model.config.vocab_size)) if i not in special])
    gen = torch.Generator().manual_seed(seed)
    seqs = pool[torch.randint(len(pool), (n_seqs, seq_len), generator=gen)]
    return torch.cat([torch.full((n_seqs, 1), start), seqs, seqs], 1).to(lm.device)


def induction_scores(lm, seq_len: int = 50, n_seqs: int = 8, seed: int = 0, *, tokens=None) -> torch.Tensor:
    """``[layers, heads]``: each head's mean attention, over the second repeat, from a token to the token that
    followed its first occurrence (``seq_len - 1`` positions back). 1 = a perfect induction head (notebook 11).

    Attention weights are read from the model itself (``output_attentions`` under eager attention).
    ``tokens`` (as from :func:`repeated_tokens`) overrides ``seq_len``/``n_seqs``/``seed``.
    """
    from lmkit.attention import eager_attention

    ids = repeated_tokens(lm, seq_len, n_seqs, seed) if tokens is None else tokens
    seq_len = (ids.shape[1] - 1) // 2
    with eager_attention(lm.model), torch.inference_mode():
        att = lm.model(input_ids=ids, output_attentions=True, use_cache=False).attentions
    queries = torch.arange(1 + seq_len, 1 + 2 * seq_len)                       # the second repeat
    keys = queries - seq_len + 1                                               # after the earlier occurrence
    return torch.stack([a[:, :, queries, keys].float().mean((0, 2)).cpu() for a in att])


def repeat_losses(lm, tokens: torch.Tensor, edits: dict | None = None) -> torch.Tensor:
    """Per-token cross-entropy (nats) of predicting each token of ``tokens`` after the start token,
    ``[n_seqs, 2·seq_len]``: columns ``:seq_len`` are the first repeat, the rest the second (notebook 11)."""
    logits = run(lm, tokens, edits)[:, :-1]
    return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none").cpu()


def head_means(lm, tokens: torch.Tensor) -> dict[int, torch.Tensor]:
    """``{layer: [H·d_k]}``: each layer's head outputs (before ``o_proj``) averaged over ``tokens``' sequences and
    positions, the values a mean ablation writes in (notebook 11)."""
    n = lm.model.config.num_hidden_layers
    _, cache = run_with_cache(lm, tokens, [("z", l) for l in range(n)])
    return {l: cache[("z", l)].mean((0, 1)) for l in range(n)}


def ablation_edits(lm, heads, how: str = "zero", means: dict | None = None) -> dict:
    """The edits that zero (``how="zero"``) or mean-ablate (``how="mean"``, values from ``means``) ``heads``,
    a list of ``(layer, head)`` pairs (notebook 11)."""
    checks.one_of("how", how, ("zero", "mean"))
    if how == "mean" and means is None:
        raise ValueError("how='mean' needs means=head_means(lm, tokens): pass the data's mean head outputs")
    cfg = lm.model.config
    d_k, by_layer = head_dim(cfg), {}
    for layer, head in heads:
        head = checks.index("head", head, cfg.num_attention_heads, negative=False,
                            what=f"layers have {cfg.num_attention_heads} heads")
        by_layer.setdefault(check_layer(lm, layer), []).append(head)

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
    """Inside the block the model runs with ``heads`` (``[(layer, head), ...]``) ablated (notebook 11)."""
    with hooked(lm, ablation_edits(lm, heads, how, means)):
        yield lm


def random_heads(lm, k: int, seed: int = 0, exclude=()) -> list[tuple[int, int]]:
    """``k`` distinct ``(layer, head)`` pairs drawn at random (seeded), none of them in ``exclude`` (notebook 11)."""
    cfg = lm.model.config
    pool = [(l, h) for l in range(cfg.num_hidden_layers) for h in range(cfg.num_attention_heads)
            if (l, h) not in set(map(tuple, exclude))]
    k = checks.integer("k", k, low=0, high=len(pool), fix=f"{len(pool)} heads are available")
    seed = checks.seed("seed", seed)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:k]
    return [pool[i] for i in order.tolist()]
