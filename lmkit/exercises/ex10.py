"""Exercise checkers of notebook 10 (SmolLM2 from scratch)."""
from __future__ import annotations

from .registry import exercise


@exercise("10.1", hint="answer with an int: V·d (the tied embedding, once) + L·(d·q + 2·d·kv + q·d + 3·d·f + 2·d) + d, "
                       "with q = heads·head_dim, kv = kv_heads·head_dim, f = intermediate_size.")
def _params(answer, *, lm):
    return int(answer) == sum(p.numel() for p in lm.model.parameters())


@exercise("10.2", hint="answer with a pair of ints (gqa_bytes, mha_bytes): layers × 2 (key and value) × heads × "
                       "head_dim × 4 bytes, with 3 key/value heads, then with 9.")
def _kv_bytes(answer, *, lm):
    from lmkit.layers import head_dim

    c = lm.model.config
    per = lambda heads: c.num_hidden_layers * 2 * heads * head_dim(c) * 4  # noqa: E731
    gqa, mha = answer
    return int(gqa) == per(c.num_key_value_heads) and int(mha) == per(c.num_attention_heads)
