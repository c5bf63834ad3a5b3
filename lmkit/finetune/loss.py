"""The fine-tuning loss: summed next-token NLL over the labelled positions, and the validation loss (notebook 06)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lmkit.finetune.data import IGNORE, collate

__all__ = ["forward_nll", "evaluate_loss"]


def forward_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token NLL over the positions whose label is not -100, and how many there are (notebook 06).

    Logits at position ``t`` predict label ``t + 1`` (the causal shift of ``model(..., labels=)``); the sum is
    ``F.cross_entropy(..., ignore_index=-100, reduction="sum")``, divided by the label count of the whole
    accumulated batch in :func:`lmkit.finetune.train`. Only the positions where some row has a label are
    projected onto the vocabulary: the LM head (576 x 49,152 for SmolLM2) is a fifth of the compute and most of the memory of a forward pass;
    for a short answer after a long prompt, ``logits_to_keep`` skips it at the prompt positions. Same loss.
    """
    targets = batch["labels"][:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    picked = targets[:, keep]
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), picked.reshape(-1), ignore_index=IGNORE,
                            reduction="sum")
    return total, (picked != IGNORE).sum()


@torch.no_grad()
def evaluate_loss(model, examples: list[dict], pad_id: int, *, batch_size: int = 8, device="cpu",
                  accelerator=None) -> float:
    """Mean NLL per label token over ``examples`` (each process takes its share, then sums) (notebook 06)."""
    was_training = model.training
    model.eval()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = examples[rank::world]
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for i in range(0, len(mine), batch_size):
        batch = {k: v.to(device) for k, v in collate(mine[i:i + batch_size], pad_id).items()}
        nll, count = forward_nll(model, batch)
        total += torch.stack([nll.double(), count.double()])
    if accelerator is not None and world > 1:
        total = accelerator.reduce(total, "sum")
    model.train(was_training)
    return (total[0] / total[1].clamp(min=1)).item()
