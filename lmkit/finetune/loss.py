"""The fine-tuning loss: summed next-token NLL over the labelled positions, and the validation loss (notebook 11)."""
from __future__ import annotations

import torch

from lmkit import checks
from lmkit.finetune.data import collate
from lmkit.logprobs import completion_logprobs

__all__ = ["forward_nll", "evaluate_loss"]


def forward_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token NLL (nats) over the positions whose label is not -100, and how many there are (notebook 11).

    ``batch``: ``input_ids``, ``attention_mask``, ``labels`` ``[batch, T]`` from :func:`lmkit.finetune.collate`.
    The negated sum of :func:`lmkit.logprobs.completion_logprobs`: logits at position ``t`` predict label
    ``t + 1`` (the causal shift of ``model(..., labels=)``), and only the positions where some row has a label are
    projected onto the vocabulary (the LM head, 576 x 49,152 for SmolLM2, is a fifth of the compute and most of the
    memory of a forward pass; for a short answer after a long prompt, ``logits_to_keep`` skips it at the prompt
    positions). Equal to ``F.cross_entropy(..., ignore_index=-100, reduction="sum")`` over the full logits; the sum
    is divided by the label count of the whole accumulated batch in :func:`lmkit.finetune.train`. Returns two
    0-d tensors, the NLL (float32, with gradients when enabled) and the count (long).
    """
    scores = completion_logprobs(model, batch)
    return -scores.logprob.sum(), scores.n_tokens.sum()


@torch.no_grad()
def evaluate_loss(model, examples: list[dict], pad_id: int, *, batch_size: int = 8, device="cpu",
                  accelerator=None) -> float:
    """Mean NLL per label token over ``examples`` (each process takes its share, then sums) (notebook 11)."""
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="examples per forward pass, such as 8")
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
