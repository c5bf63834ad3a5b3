"""The pieces of notebook 09's training loop that tests and exercise checkers reuse: random batches, the evaluated
loss, the learning-rate schedule, the thread setting, the history record and its plot. The loop itself lives only
in notebook 09's cells: writing it is the lesson (the library's loop, for pretrained models, is
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
    """``batch_size`` random windows of ``ids``: inputs x [B, T] and targets y = x shifted by one (notebook 09)."""
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
    """Mean next-token cross-entropy (nats) over ``n_windows`` evenly spaced windows of ``ids`` (notebook 09).

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


@dataclass
class History:
    """What notebook 09's training loop records: losses at each evaluation, samples, time and throughput."""

    step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    tokens_per_s: float = 0.0


@contextmanager
def num_threads(n: int | None):
    """Run the block with ``n`` torch CPU threads (None: leave as is), restored afterwards (notebook 09)."""
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
    """Linear warm-up for ``warmup`` steps, then cosine decay to lr/10 (notebook 09)."""
    step = checks.integer("step", step, low=0, fix="the 0-based step number")
    steps = checks.integer("steps", steps, low=1, fix="the run's length in steps")
    lr = checks.real("lr", lr, low=0, fix="the peak learning rate, such as 1e-3")
    warmup = checks.integer("warmup", warmup, low=0, fix="pass 0 for no warm-up")
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def plot_history(histories: dict[str, History], x: str = "step", ax=None):
    """Validation (solid) and training (dashed) loss of each run against ``x`` = "step" or "seconds" (notebook 09)."""
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
