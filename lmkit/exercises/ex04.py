"""Exercise checkers of notebook 04 (attention)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("04.1", hint="answer with a pair (weight, weight without the scaling). Take the query from .q_rot and "
                       "the keys from .k_rot: with grouped-query attention query head h reads key head h // 3; keep "
                       "only the keys at positions 0..7 (the causal mask); divide the dot products by sqrt(d_k) "
                       "before the softmax (and not for the second number).")
def _one_weight(answer, *, lm, text, layer=13, head=8, query_pos=7, key_pos=1):
    import torch

    from lmkit import attention as A

    tr = A.trace(lm, text)
    own = tr.attentions[layer, head, query_pos, key_pos].item()          # the model's own weight
    s = A.attention_steps(lm, tr.inputs[layer], layer)
    group = lm.model.config.num_attention_heads // lm.model.config.num_key_value_heads
    dots = s.k_rot[head // group, : query_pos + 1] @ s.q_rot[head, query_pos]  # from the rotated Q and K alone
    unscaled = torch.softmax(dots, -1)[key_pos].item()
    scaled, raw = answer
    return _close(scaled, own, abs_=1e-6) and _close(raw, unscaled, abs_=1e-6)


@exercise("04.2", hint="answer with one float: run A.head_stats on the attentions of the new text and read the "
                       "'prev' column of the row whose layer and head are L_prev and H_prev.")
def _prev_score(answer, *, lm, layer, head, text="One two three four five six seven eight nine ten"):
    from lmkit import attention as A

    _, att = A.attentions(lm, text)
    rows = att[int(layer), int(head), 2:]                # query positions i >= 2, as head_stats
    i = rows.new_tensor(range(2, att.shape[-1])).long()
    return _close(answer, rows[i - 2, i - 1].mean().item())


@exercise("04.3", hint="answer with a pair (share with residual=0, share with residual=0.9): "
                       "A.rollout(roll_att, residual=r)[-1, -1, 0] is what the last token draws from the first after "
                       "the last layer.")
def _rollout_shares(answer, *, lm, text):
    import torch

    from lmkit import attention as A

    _, att = A.attentions(lm, text)
    eye = torch.eye(att.shape[-1])

    def share(residual):  # rollout written out again: R <- normalise(r I + (1 - r) mean_heads(A_l)) R
        r = eye
        for a in att.mean(1):
            a_hat = residual * eye + (1 - residual) * a
            r = (a_hat / a_hat.sum(-1, keepdim=True)) @ r
        return r[-1, 0].item()

    pure, mostly_residual = answer
    return _close(pure, share(0.0)) and _close(mostly_residual, share(0.9))


@exercise("04.4", hint="answer with a pair (first layer, rank after layer 20) for ' Rome' (one token) after "
                       "'The capital of Italy is': A.logit_lens(...).first_layer(rome), and .rank(rome)[21] (row 0 "
                       "is the embedding, so row 21 is after layer 20; rank 0 = top).")
def _rome(answer, *, lm, prompt="The capital of Italy is", word=" Rome", after_layer=20):
    from lmkit import attention as A

    (token,) = lm.tokenizer.encode(word, add_special_tokens=False)
    lens = A.logit_lens(lm, prompt)
    first, rank = answer
    return first == lens.first_layer(token) and int(rank) == int(lens.rank(token)[after_layer + 1])
