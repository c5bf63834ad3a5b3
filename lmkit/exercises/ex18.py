"""Exercise checkers of notebook 18 (reasoning with verifiable rewards: sampling more, and GRPO)."""
from __future__ import annotations

from .registry import _close, exercise


@exercise("18.1", hint="pass@k is 1 - C(n - c, k) / C(n, k): the share of the size-k subsets of the n samples that "
                       "hold at least one of the c right ones. Use math.comb.")
def _pass_at_k(answer, *, n, c, k):
    from lmkit.rl import pass_at_k

    return _close(answer, pass_at_k(n, c, k), rel=1e-9, abs_=1e-12)


@exercise("18.2", hint="subtract the group's mean (0.25 here) from each reward and divide by the group's standard "
                       "deviation with n - 1 in the denominator, plus rl.STD_EPS; answer one float per reply.")
def _advantages(answer, *, rewards):
    from lmkit.rl import group_advantages

    answer = [float(a) for a in answer]
    expected = group_advantages([float(r) for r in rewards], len(rewards), scale=True).tolist()
    return len(answer) == len(expected) and all(_close(a, e, rel=1e-5, abs_=1e-6) for a, e in zip(answer, expected))


@exercise("18.3", hint="'sequence' takes each reply's mean over its own tokens, then the mean over the replies: a "
                       "token's weight is 1 / (number of replies) / (its reply's length).")
def _token_weight(answer, *, lengths, aggregation, max_length):
    import torch

    from lmkit.rl import grpo_loss

    width = max(lengths)
    mask = (torch.arange(width) < torch.tensor(lengths)[:, None]).double()
    logp = torch.zeros(len(lengths), width, dtype=torch.float64, requires_grad=True)
    loss = grpo_loss(logp, logp.detach(), torch.ones(len(lengths), dtype=torch.float64), mask,
                     aggregation=aggregation, max_length=max_length)
    (grad,) = torch.autograd.grad(loss, logp)  # a derivative to read, not a training step
    return _close(answer, -grad[1, 0].item(), rel=1e-6, abs_=1e-12)
