"""Reading attention and the residual stream across layers: attention rollout and the logit lens (notebook 04)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lmkit import checks
from lmkit.attention.capture import MAX_TOKENS, trace

__all__ = ["LogitLens", "logit_lens", "rollout"]

def rollout(att: torch.Tensor, *, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): ``R_l = Â_l · R_{l-1}``, returned for every layer ``[L, T, T]``.

    ``Â_l = residual·I + (1-residual)·mean_heads(A_l)``, rows renormalised: the identity stands for the residual
    connection, which carries each token's own state past the block. ``R[l, i, j]`` is how much of input token
    ``j`` reaches position ``i`` after layer ``l``, if information only mixed along attention (notebook 04).
    """
    if att.dim() != 4:
        raise ValueError(f"att has shape {tuple(att.shape)}: pass [layers, heads, T, T] as from attentions()")
    residual = checks.probability("residual", residual, must="between 0 and 1",
                                  fix="the identity's share, 0.5 in the paper")
    t = att.shape[-1]
    eye = torch.eye(t)
    out, r = [], eye
    for a in att.float().mean(1):
        a_hat = residual * eye + (1 - residual) * a
        a_hat = a_hat / a_hat.sum(-1, keepdim=True)
        r = a_hat @ r
        out.append(r)
    return torch.stack(out)


@dataclass
class LogitLens:
    """The final norm and unembedding applied to the residual stream after each layer (notebook 04).

    Row 0 is the token embeddings, row ``l+1`` the stream after layer ``l``; the last row gives the model's logits.
    """

    tokens: list[str]
    top_ids: torch.Tensor        # [L+1, T]
    top_probs: torch.Tensor      # [L+1, T]
    top_tokens: list[list[str]]  # [L+1][T]
    last_probs: torch.Tensor     # [L+1, V] the full distribution at the last position
    row_labels: list[str] = field(default_factory=list)

    def rank(self, token_id: int) -> np.ndarray:
        """Rank (0 = top) of ``token_id`` at the last position, for each row."""
        p = self.last_probs
        token_id = checks.index("token_id", token_id, p.shape[-1], negative=False,
                                what=f"the vocabulary has {p.shape[-1]} ids")
        return (p > p[:, token_id:token_id + 1]).sum(-1).numpy()

    def first_layer(self, token_id: int) -> int | None:
        """First layer after which ``token_id`` is the top guess at the last position (-1: already the embedding)."""
        hits = np.flatnonzero(self.rank(token_id) == 0)
        return int(hits[0]) - 1 if hits.size else None


def logit_lens(lm, text: str, *, max_tokens: int = MAX_TOKENS) -> LogitLens:
    """Decode every layer's residual stream with the model's own final norm and unembedding (notebook 04).

    transformers' last ``hidden_states`` entry already has the final norm applied, so the raw stream after each
    layer is recorded with hooks instead (:func:`trace`); the last row equals the model's logits.
    """
    tr = trace(lm, text, max_tokens=max_tokens)
    model = lm.model
    emb = model.get_input_embeddings().weight[tr.ids.to(model.get_input_embeddings().weight.device)]
    stream = torch.stack([emb.detach().float().cpu()] + tr.layer_outputs)       # [L+1, T, d]
    norm, head = model.model.norm, model.get_output_embeddings()
    with torch.inference_mode():
        x = stream.to(device=lm.device, dtype=lm.dtype)
        probs = head(norm(x)).float().softmax(-1).cpu()                          # [L+1, T, V]
    top_p, top_i = probs.max(-1)
    top_tokens = [[lm.tokenizer.decode([i]) for i in row] for row in top_i.tolist()]
    labels = ["embed"] + [str(i) for i in range(len(tr.layer_outputs))]
    return LogitLens(tr.tokens, top_i, top_p, top_tokens, probs[:, -1].clone(), labels)
