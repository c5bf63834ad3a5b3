"""The fine-tuning loss: summed next-token NLL over the labelled positions, and the validation loss (notebook 12)."""
from __future__ import annotations

import torch

from lmkit import checks
from lmkit.finetune.data import collate
from lmkit.logprobs import IGNORE, completion_logprobs

__all__ = ["forward_nll", "evaluate_loss", "shared_prefix_length", "shared_prefix_logprobs", "MIN_SHARED_PREFIX"]


MIN_SHARED_PREFIX = 8
"""The fewest tokens worth a separate forward pass: a shorter common prefix is computed with the rest."""


def shared_prefix_length(batch: dict) -> int:
    """How many leading tokens every row of ``batch`` shares and :func:`forward_nll` can compute once (notebook 12).

    The longest run of columns, from the start, where every row has the same token and no padding, cut so that the
    logits of the last shared position predict no labelled token (the scored positions all fall after it). 0 for
    a single row, a batch that brings its own ``position_ids`` (packed rows) or a 4-d attention mask, or a prefix
    shorter than :data:`MIN_SHARED_PREFIX`.
    """
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    if ids.shape[0] < 2 or "position_ids" in batch or mask.dim() != 2:
        return 0
    same = (ids == ids[:1]).all(dim=0) & (mask == 1).all(dim=0)
    n = int(same.long().cumprod(dim=0).sum())
    labelled = (labels != IGNORE).any(dim=0).nonzero()
    if len(labelled):
        n = min(n, int(labelled[0]) - 1)  # labels[:, :n + 1] unscored: the suffix's first column predicts nothing
    return n if n >= MIN_SHARED_PREFIX else 0


def shared_prefix_logprobs(model, batch: dict):
    """:func:`lmkit.logprobs.completion_logprobs` of ``batch``, with the prefix that all rows share computed once.

    Every date prompt starts with the same chat-template system turn and instruction (about 45 of its 70 tokens):
    the prefix (:func:`shared_prefix_length`) runs once as one row with its KV cache kept, the cache is repeated
    for every row (``DynamicCache.batch_repeat_interleave``), and only the rest of each row runs on top of it, at
    positions that continue the prefix's. Causal attention makes this exact up to float rounding: a token's keys
    and values depend only on the tokens before it. Gradients flow through the shared prefix as through the rows
    (the repeat's backward sums them), so the training loss uses it too; under LoRA dropout the prefix draws one
    dropout mask for all rows. Without a shared prefix this is ``completion_logprobs(model, batch)`` (notebook 12).
    """
    n = shared_prefix_length(batch)
    if not n:
        return completion_logprobs(model, batch)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    rows, width = ids.shape
    cache = model(input_ids=ids[:1, :n], attention_mask=mask[:1, :n], use_cache=True, logits_to_keep=1).past_key_values
    cache.batch_repeat_interleave(rows)
    rest = {"input_ids": ids[:, n:], "labels": batch["labels"][:, n:], "attention_mask": mask,
            "position_ids": torch.arange(n, width, device=ids.device).expand(rows, -1)}
    return completion_logprobs(model, rest, past_key_values=cache, use_cache=True)


def forward_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token NLL (nats) over the positions whose label is not -100, and how many there are (notebook 12).

    ``batch``: ``input_ids``, ``attention_mask``, ``labels`` ``[batch, T]`` from :func:`lmkit.finetune.collate`.
    The negated sum of :func:`lmkit.logprobs.completion_logprobs`: logits at position ``t`` predict label
    ``t + 1`` (the causal shift of ``model(..., labels=)``), and only the positions where some row has a label are
    projected onto the vocabulary (the LM head, 576 x 49,152 for SmolLM2, is a fifth of the compute and most of the
    memory of a forward pass; for a short answer after a long prompt, ``logits_to_keep`` skips it at the prompt
    positions). The tokens that every row starts with run once (:func:`shared_prefix_logprobs`). Equal to
    ``F.cross_entropy(..., ignore_index=-100, reduction="sum")`` over the full logits, up to float rounding; the sum
    is divided by the label count of the whole accumulated batch in :func:`lmkit.finetune.train`. Returns two
    0-d tensors, the NLL (float32, with gradients when enabled) and the count (long).
    """
    scores = shared_prefix_logprobs(model, batch)
    return -scores.logprob.sum(), scores.n_tokens.sum()


@torch.no_grad()
def evaluate_loss(model, examples: list[dict], pad_id: int, *, batch_size: int = 8, device="cpu",
                  accelerator=None) -> float:
    """Mean NLL per label token over ``examples`` (each process takes its share, then sums) (notebook 12)."""
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
