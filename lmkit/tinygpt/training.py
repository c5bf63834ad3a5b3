"""The pieces of notebook 10's training loop that tests and exercise checkers reuse: random batches, the evaluated
loss, the learning-rate schedule, the thread setting, the history record and its plot. The loop itself lives only
in notebook 10's cells: writing it is the lesson (the library's loop, for pretrained models, is
:func:`lmkit.training.fit`).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from lmkit import checks


def get_batch(ids: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator):
    """``batch_size`` random windows of ``ids``: inputs x [B, T] and targets y = x shifted by one (notebook 10)."""
    block_size = checks.integer("block_size", block_size, low=1, fix="the window length, such as 64")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="windows per batch, such as 32")
    if ids.numel() <= block_size + 1:
        raise ValueError(f"text of {ids.numel()} tokens is too short for block_size={block_size}: use more text")
    start = torch.randint(ids.numel() - block_size - 1, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    win = ids[start[:, None] + offsets]
    return win[:, :-1], win[:, 1:]


@torch.no_grad()
def estimate_loss(model: nn.Module, ids: torch.Tensor, block_size: int, n_windows: int = 64,
                  batch_size: int = 32) -> float:
    """Mean next-token cross-entropy (nats) over ``n_windows`` evenly spaced windows of ``ids`` (notebook 10).

    The windows are fixed, so every evaluation of every model sees the same text.
    """
    block_size = checks.integer("block_size", block_size, low=1, fix="the window length, such as 64")
    n_windows = checks.integer("n_windows", n_windows, low=1, fix="pass e.g. n_windows=64")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="windows per forward pass, such as 32")
    was_training = model.training
    model.eval()
    starts = torch.linspace(0, ids.numel() - block_size - 1, n_windows).long()
    offsets = torch.arange(block_size + 1)
    total = 0.0
    for chunk in starts.split(batch_size):
        win = ids[chunk[:, None] + offsets]
        total += model(win[:, :-1], win[:, 1:]).loss.item() * len(chunk)
    model.train(was_training)
    return total / n_windows



@torch.no_grad()
def token_nll(model: nn.Module, ids: torch.Tensor, window: int, *, stride: int | None = None,
              batch_size: int = 16) -> torch.Tensor:
    """Per-token negative log-likelihood (nats) of ids 1..n-1, float32 ``[n - 1]``, with full windows batched
    (notebook 10).

    The same sliding-window scoring as :func:`lmkit.metrics.token_nll` (windows of ``window`` ids every ``stride``,
    default ``window // 2``; each id scored once, in the first window that holds it), and the same values, but up to
    ``batch_size`` windows go through ``model`` in one forward pass instead of one each. ``model(x).logits`` must be
    ``[B, T, vocab]`` (a tiny GPT or :class:`~lmkit.tinygpt.RNNLM`). Errors (one line, before any forward pass):
    ``window``/``stride`` out of range, ``batch_size`` < 1, fewer than 2 ids.
    """
    import torch.nn.functional as F

    from lmkit.metrics import check_window, window_starts

    stride = check_window(window, stride)
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="windows per forward pass, such as 16")
    ids = torch.as_tensor(ids).flatten().long()
    n = ids.numel()
    if n < 2:
        raise ValueError(f"ids has {n} token(s): scoring needs at least 2; pass a longer text")
    plan, scored = [], 1  # (begin, end, first id scored): the order and rule of lmkit.metrics.token_nll
    for begin in window_starts(n, window, stride):
        end = min(begin + window, n)
        if end > scored:
            plan.append((begin, end, scored))
            scored = end
        if end == n:
            break
    was_training = model.training
    model.eval()
    nll = torch.empty(n - 1, dtype=torch.float32)
    groups = [p for p in plan if p[1] - p[0] == window], [p for p in plan if p[1] - p[0] != window]
    for group, size in zip(groups, (batch_size, 1)):
        for i in range(0, len(group), size):
            chunk = group[i:i + size]
            logp = F.log_softmax(model(torch.stack([ids[b:e] for b, e, _ in chunk])).logits.float(), -1)
            for row, (b, e, s) in enumerate(chunk):  # logits[j] predicts id b + j + 1
                nll[s - 1:e - 1] = -logp[row, s - b - 1:e - b - 1].gather(1, ids[s:e, None])[:, 0]
    model.train(was_training)
    return nll


@dataclass
class History:
    """What notebook 10's training loop records: losses at each evaluation, samples, time and throughput."""

    step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    tokens_per_s: float = 0.0


@contextmanager
def num_threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (None: leave as is), restored afterwards (notebook 10)."""
    if n is not None:
        n = checks.integer("n", n, low=1, fix="the number of CPU threads, or None to leave it as is")
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to lr/10 (notebook 10)."""
    step = checks.integer("step", step, low=0, fix="the 0-based step number")
    steps = checks.integer("steps", steps, low=1, fix="the run's length in steps")
    lr = checks.real("lr", lr, low=0, fix="the peak learning rate, such as 1e-3")
    warmup = checks.integer("warmup", warmup, low=0, fix="pass 0 for no warm-up")
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def plot_history(histories: dict[str, History], x: str = "step", ax=None):
    """Validation (solid) and training (dashed) loss of each run against ``x`` = "step" or "seconds" (notebook 10)."""
    import matplotlib.pyplot as plt

    checks.one_of("x", x, ("step", "seconds"))
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, (name, h) in enumerate(histories.items()):
        xs = getattr(h, x)
        line, = ax.plot(xs, h.val_loss, marker=".", label=f"{name} validation", color=f"C{i}")
        ax.plot(xs, h.train_loss, ls="--", color=line.get_color(), alpha=0.7, label=f"{name} train")
    ax.set_xlabel("training step" if x == "step" else "training seconds (evaluation excluded)")
    ax.set_ylabel("cross-entropy (nats per character)")
    ax.set_title(f"Loss against {'steps' if x == 'step' else 'wall time'}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax
