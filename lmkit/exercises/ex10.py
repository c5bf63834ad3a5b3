"""Exercise checkers of notebook 10 (a GPT from scratch)."""
from __future__ import annotations

from .registry import _close, exercise


def n_params_of(cfg, **changes) -> int:
    """Parameters of ``TinyGPT(cfg)`` with ``changes`` applied, counted on the meta device (no memory, no init)."""
    from dataclasses import replace

    import torch

    from lmkit import tinygpt as tg

    with torch.device("meta"):
        return tg.n_params(tg.TinyGPT(replace(cfg, **changes)))


@exercise("10.1", hint="answer with a pair (extra parameters, verdict). A learned table holds one trainable vector "
                       "of n_embd numbers per position of the context (block_size of them); the sinusoidal encoding "
                       "has none. The verdict is compare(learned, sinusoidal, paired=True).verdict over the final "
                       "validation losses of at least 3 seeds, one per seed, in the same seed order for both.")
def _learned_positions(answer, *, cfg, learned, sinusoidal):
    """The count from the config; the verdict recomputed from the per-seed losses (needs >= 3 seeds, paired)."""
    from lmkit.stats import compare

    extra, verdict = answer
    if len(learned) != len(sinusoidal) or len(learned) < 3:
        return False  # one or two seeds cannot say which encoding trains better
    right = n_params_of(cfg, pos="learned") - n_params_of(cfg, pos="sinusoidal")
    return int(extra) == right and verdict == compare(learned, sinusoidal, paired=True).verdict


@exercise("10.2", hint="answer with a pair of ints (parameters of cfg, parameters of cfg with n_layer=12, "
                       "n_head=12, n_embd=768): V·d for the tied embedding, 12d² + 13d per block, 2d for the final "
                       "LayerNorm (plus block_size·d only if pos='learned').")
def _count(answer, *, cfg):
    ours, big = answer
    return int(ours) == n_params_of(cfg) and int(big) == n_params_of(cfg, n_layer=12, n_head=12, n_embd=768)


@exercise("10.3", hint="x = ids[:-1][None], y = ids[1:][None]; one call model(x, y) returns the mean "
                       "cross-entropy over every position at once; answer with it as a float (nats per character).")
def _one_pass(answer, *, model, ids):
    """Recomputed the slow way: one forward pass per prefix, each scoring only its last position."""
    import torch
    import torch.nn.functional as F

    x, y = ids[:-1][None], ids[1:]
    with torch.no_grad():
        losses = [F.cross_entropy(model(x[:, : t + 1]).logits[0, -1], y[t]) for t in range(x.shape[1])]
    return _close(answer, torch.stack(losses).mean().item(), rel=1e-4)


@exercise("10.4", hint="answer with the output tensor [2, 10, n_embd] for x = torch.randn(2, 10, cfg.n_embd, "
                       "generator=torch.Generator().manual_seed(0)): q, k, v = attn.qkv(x).split(C, 2), each viewed "
                       "as [B, heads, T, d_k]; softmax(q kᵀ/√d_k with -inf where j > i) @ v; heads back side by side; "
                       "then attn.proj.")
def _attention(answer, *, attn):
    """Compared with PyTorch's fused kernel on the module's own weights."""
    import torch
    import torch.nn.functional as F

    C = attn.proj.in_features
    x = torch.randn(2, 10, C, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        q, k, v = (t.view(2, 10, attn.n_head, -1).transpose(1, 2) for t in attn.qkv(x).split(C, dim=2))
        ref = attn.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 10, C))
    answer = torch.as_tensor(answer).detach().float()
    return answer.shape == ref.shape and torch.allclose(answer, ref, atol=1e-5)


@exercise("10.5", hint="answer with a triple (step, validation loss, verdict) for the run you pass as curves: the "
                       "evaluation i where curves.choose_windows.mean(1) is lowest (the first half of the development "
                       "windows; the validation loss when the run has no development windows), its step curves.step[i], the mean validation "
                       "loss there (nats per character), and compare(curves.val_windows[-1], curves.val_windows[i], "
                       "paired=True).verdict: is the last checkpoint worse than the one early stopping keeps?")
def _early_stopping(answer, *, curves):
    """The checkpoint early stopping keeps (:meth:`lmkit.tinygpt.Curves.stop`: lowest loss on the first half of the
    development windows, else lowest validation loss), its validation loss, and the paired verdict over the same validation windows."""
    from lmkit.stats import compare

    step, loss, verdict = answer
    i = curves.stop()
    right = compare(curves.val_windows[-1], curves.val_windows[i], paired=True).verdict
    return int(step) == curves.step[i] and _close(loss, curves.val_loss[i], rel=1e-4) and verdict == right
