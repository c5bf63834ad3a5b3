"""Exercise checkers of notebook 11 (SmolLM2 from scratch)."""
from __future__ import annotations

from .registry import exercise


@exercise("11.1", hint="answer with an int: V·d (the tied embedding, once) + L·(d·q + 2·d·kv + q·d + 3·d·f + 2·d) + d, "
                       "with q = heads·head_dim, kv = kv_heads·head_dim, f = intermediate_size.")
def _params(answer, *, lm):
    return int(answer) == sum(p.numel() for p in lm.model.parameters())


@exercise("11.2", hint="answer with a pair of ints (gqa_bytes, mha_bytes): layers × 2 (key and value) × heads × "
                       "head_dim × 4 bytes, with 3 key/value heads, then with 9.")
def _kv_bytes(answer, *, lm):
    from lmkit.layers import head_dim

    c = lm.model.config
    per = lambda heads: c.num_hidden_layers * 2 * heads * head_dim(c) * 4  # noqa: E731
    gqa, mha = answer
    return int(gqa) == per(c.num_key_value_heads) and int(mha) == per(c.num_attention_heads)


@exercise("11.3", hint="answer with the ids [1, prompt length + N_NEW] of your cached greedy loop (exactly N_NEW new "
                       "tokens): run the prompt "
                       "once, keeping each layer's keys and values (after RoPE); then feed only the newest token, "
                       "with RoPE at its position (the cache length) and a mask that lets it see every cached key.")
def _cached_greedy(answer, *, lm, prompt, n_new=None):
    """Recomputed the slow way: greedy tokens from the whole sequence at every step (no cache, no stop at EOS), as
    notebook 11's section 8 loop does; equal to ``model.generate`` when no EOS comes first. With ``n_new``, the
    answer must add exactly that many tokens to ``prompt``."""
    import torch

    ids = torch.as_tensor(answer)
    ids = ids[None] if ids.dim() == 1 else ids
    if ids.shape[0] != 1 or not torch.equal(ids[:, : prompt.shape[1]], prompt):
        return False
    got = ids.shape[1] - prompt.shape[1]
    if got < 1 or (n_new is not None and got != int(n_new)):
        return False
    reference = prompt
    with torch.no_grad():
        for _ in range(got):
            reference = torch.cat([reference, lm.model(reference).logits[:, -1:].argmax(-1)], dim=1)
    return torch.equal(ids, reference)
