"""Exercise checkers of notebook 05 (causal interpretability)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("05.1", hint="answer with one float: add up the entries of the attribution Series whose names start with "
                       "f'L{layer}H' (every head of that layer). The heads of one layer together are the attention "
                       "block's output, so the checker projects that output directly.")
def _layer_heads_sum(answer, *, lm, text, answer_token, foil, layer):
    import torch

    from lmkit import interp

    n = lm.model.config.num_hidden_layers
    _, cache = interp.run_with_cache(lm, interp.token_ids(lm, text), [("attn", layer), ("resid", n - 1)])
    x, block = cache[("resid", n - 1)][0, -1].double(), cache[("attn", layer)][0, -1].double()
    norm = lm.model.model.norm
    scale = torch.rsqrt(x.pow(2).mean() + norm.variance_epsilon)
    w_u = lm.model.get_output_embeddings().weight.detach().double().cpu()
    a, f = interp.answer_id(lm, answer_token), interp.answer_id(lm, foil)
    expected = (block * scale * norm.weight.detach().double().cpu()) @ (w_u[a] - w_u[f])
    return _close(answer, expected.item(), rel=1e-4, abs_=1e-4)


@exercise("05.2", hint="answer with one float: record the clean run's input of o_proj at that layer "
                       "(interp.run_with_cache with the point ('z', layer)), write only that head's d_k columns into "
                       "the corrupted run (interp.replace_heads), take interp.logit_diff with those edits and "
                       "normalise it with interp.normalise(m, corrupted, clean).")
def _one_head(answer, *, lm, fact, head):
    from lmkit import interp

    (clean, corrupt, answer_token, foil), (layer, head) = fact, head
    expected = interp.patch(lm, clean, corrupt, answer_token, foil, where="head", layers=[layer])[0, head]
    return _close(answer, expected.item(), rel=1e-3, abs_=1e-4)


@exercise("05.3", hint="answer with one float: inside `with interp.ablate_heads(lm, [(layer, head)], 'zero'):` "
                       "compute interp.repeat_losses(lm, tokens) and average its second half (the columns from "
                       "seq_len on).")
def _ablate_one(answer, *, lm, tokens, layer, head):
    from lmkit import interp

    seq_len = (tokens.shape[1] - 1) // 2
    with interp.ablate_heads(lm, [(layer, head)], "zero"):
        expected = interp.repeat_losses(lm, tokens)[:, seq_len:].mean()
    return _close(answer, expected.item(), rel=1e-4, abs_=1e-4)
