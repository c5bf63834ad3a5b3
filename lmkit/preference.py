"""Preference tuning with DPO: the loss, sequence log-probabilities, and a LoRA training loop for a CPU (notebook 17).

Direct Preference Optimization (Rafailov et al., 2023, "Direct Preference Optimization: Your Language Model is
Secretly a Reward Model", eq. 7) trains a policy :math:`\\pi_\\theta` on pairs (prompt x, chosen y_w, rejected y_l)
against a frozen reference :math:`\\pi_\\text{ref}`:

.. math::  L = -\\log \\sigma\\big(\\beta [\\log\\tfrac{\\pi_\\theta(y_w|x)}{\\pi_\\text{ref}(y_w|x)}
           - \\log\\tfrac{\\pi_\\theta(y_l|x)}{\\pi_\\text{ref}(y_l|x)}]\\big)

The implicit reward of a completion is :math:`r = \\beta \\log \\pi_\\theta(y|x) / \\pi_\\text{ref}(y|x)`; the
reward margin is :math:`r_w - r_l`, and preference accuracy the share of pairs whose margin is positive. TRL's
``DPOTrainer`` (loss type ``"sigmoid"``) computes the same loss; notebook 17 and ``tests/test_preference.py``
assert the two equal.

- Data: JSONL with ``prompt``, ``chosen``, ``rejected`` (non-empty strings, chosen != rejected); the project's set is
  ``data/preference/`` (concise vs rambling answers), read with :func:`load_split`.
- :func:`sequence_logps`: summed log-probability of the completion tokens only (the prompt masked, as in
  :func:`lmkit.finetune.encode_example`).
- :func:`train`: LoRA adapters (:func:`lmkit.finetune.add_lora`) on a copy of the model; the reference is the same
  model with the adapters switched off, its log-probabilities computed once before training. Checkpoints use the
  fine-tuning format (:func:`lmkit.finetune.save_checkpoint`); curves plot with
  :func:`lmkit.finetune.plot_loss_curves` (loss) and :func:`plot_margins` (reward margin).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from lmkit import finetune as ft
from lmkit.data import data_file
from lmkit.files import DataError, read_jsonl
from lmkit import checks
from lmkit.logprobs import check_fits, completion_logprobs, labelled_positions, pad, special_tokens_in
from lmkit.training import FitSettings, fingerprint, fit, make_accelerator, weights_fingerprint

__all__ = ["FIELDS", "SPLITS", "dpo_loss", "sequence_logps", "read_pairs", "load_split", "check_pairs",
           "encode_pairs", "pair_logps", "preference_metrics", "Reference", "train", "DPOResult", "Result",
           "plot_margins"]

FIELDS = ("prompt", "chosen", "rejected")
"""The fields every preference line needs, as non-empty strings."""
SPLITS = ("train", "test")
DATASET = "preference"


# ----------------------------------------------------------------------------------------------- the loss
def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss of a batch of pairs, and each pair's implicit rewards (Rafailov et al. 2023, eq. 7; notebook 17).

    Inputs: four tensors of shape ``[batch]``, the summed log-probabilities (nats) of each chosen / rejected
    completion under the policy and under the reference (see :func:`sequence_logps`). ``beta`` > 0 scales the
    log-ratios: small beta lets the policy move far from the reference, large beta keeps it close.

    Returns ``(loss, chosen_rewards, rejected_rewards)``: the mean of ``-logsigmoid(beta * (Δ_chosen - Δ_rejected))``
    over the batch (a scalar, nats), and ``beta * Δ`` for chosen and for rejected (shape ``[batch]``), where
    ``Δ = policy_logps - ref_logps``. Equal to TRL's ``DPOTrainer`` loss with ``loss_type="sigmoid"``.
    Raises ValueError for mismatched shapes or ``beta <= 0``.
    """
    tensors = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"dpo_loss needs four tensors of the same shape [batch]; got shapes "
                         f"{[tuple(t.shape) for t in tensors]}")
    checks.real("beta", beta, low=0, low_open=True, fix="use a positive number such as 0.1")
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def sequence_logps(model, batch: dict) -> torch.Tensor:
    """Summed log-probability (nats) of the labelled tokens of each row: the completion, not the prompt (notebook 17).

    ``batch`` holds ``input_ids``, ``attention_mask`` and ``labels`` of shape ``[batch, T]`` (from
    :func:`lmkit.finetune.collate`); positions labelled ``-100`` (prompt, padding) are left out. Token ``t`` is
    scored by the logits at ``t - 1``: :func:`lmkit.logprobs.completion_logprobs`, the ``logprob`` of its
    :class:`~lmkit.logprobs.Scores`. Returns a float32 tensor of shape ``[batch]``; gradients flow when enabled.
    Equal to TRL's ``DPOTrainer`` sequence log-probabilities (``tests/test_preference.py``). Raises ValueError before
    the forward pass when every label is -100.
    """
    if not labelled_positions(batch["labels"])[0].numel():
        raise ValueError("every label is -100: nothing to score; check that the completions are not cut off")
    return completion_logprobs(model, batch).logprob


# ----------------------------------------------------------------------------------------------- data
def read_pairs(path) -> list[dict]:
    """Preference pairs from a JSONL file, every line checked first (notebook 17).

    Each line needs ``prompt``, ``chosen`` and ``rejected`` as non-empty strings, with ``chosen`` different from
    ``rejected``. A bad line raises :class:`lmkit.data.DataError` (a ValueError) naming the file, the line and the fix.
    """
    rows = read_jsonl(path, FIELDS)
    numbers = [n for n, line in enumerate(Path(path).read_text(encoding="utf-8-sig").split("\n"), 1)
               if line.strip().lstrip("\ufeff")]
    for number, row in zip(numbers, rows):
        if row["chosen"].strip() == row["rejected"].strip():
            raise DataError(f"{path}, line {number}: 'chosen' and 'rejected' are the same text; a pair needs two "
                            "different completions (fix or remove the line)")
    return rows


def load_split(split: str, limit: int | None = None) -> list[dict]:
    """The project's preference set (``data/preference/``): ``'train'`` (244 pairs) or ``'test'`` (61) (notebook 17).

    ``limit``: the first pairs only (an integer >= 1), or None for all."""
    checks.one_of("split", split, SPLITS, error=DataError)
    if limit is not None:
        limit = checks.integer("limit", limit, low=1, fix="pass how many pairs to keep, or None for all",
                               error=DataError)
    return read_pairs(data_file(f"{DATASET}/{split}.jsonl"))[:limit]


def check_pairs(rows, tokenizer=None, name: str = "pairs") -> list[dict]:
    """``rows`` as a list, each checked before any work: a dict with ``prompt``, ``chosen`` and ``rejected`` as
    non-empty strings, ``chosen`` different from ``rejected``, and (given the ``tokenizer``) none writing one of its
    special tokens as text: the chat template and the end of turn are added by :func:`encode_pairs`, and a
    ``"<|im_end|>"`` typed into a completion would give it two, both labelled (TRL #4481). Raises a one-line
    :class:`lmkit.data.DataError` naming the pair, the field and the fix."""
    if isinstance(rows, (str, dict)) or not isinstance(rows, (list, tuple)):
        checks.fail(f"{name}={checks.show(rows, 50)} must be a list of {{'prompt', 'chosen', 'rejected'}} dicts: "
                    "pass e.g. load_split('train')", DataError)
    if not rows:
        checks.fail(f"{name} is empty: pass a list of {{'prompt', 'chosen', 'rejected'}} dicts", DataError)
    for i, row in enumerate(rows):
        bad = [k for k in FIELDS if not (isinstance(row, dict) and isinstance(row.get(k), str) and row[k].strip())]
        if bad:
            checks.fail(f"{name}[{i}] needs {', '.join(repr(k) for k in bad)} as non-empty strings, got "
                        f"{checks.show(row, 60)}", DataError)
        if row["chosen"].strip() == row["rejected"].strip():
            checks.fail(f"{name}[{i}]: 'chosen' and 'rejected' are the same text; a pair needs two different "
                        "completions", DataError)
        for key in FIELDS if tokenizer is not None else ():
            if found := special_tokens_in(tokenizer, row[key]):
                checks.fail(f"{name}[{i}]['{key}'] writes the special token {found[0]!r} as text: the chat template "
                            "and the end of turn are added by encode_pairs; remove it from the data", DataError)
    return list(rows)


def encode_pairs(tokenizer, rows: list[dict], max_length: int = 256) -> list[tuple[dict, dict]]:
    """(chosen, rejected) examples per pair, each the prompt in the chat template + completion + end of turn, the
    prompt's labels masked to -100 (:func:`lmkit.finetune.encode_example`: prompt and completion tokenized apart,
    as TRL does) (notebook 17). The rows are checked first (:func:`check_pairs`)."""
    rows = check_pairs(rows, tokenizer)
    return [(ft.encode_example(tokenizer, r["prompt"], r["chosen"], max_length),
             ft.encode_example(tokenizer, r["prompt"], r["rejected"], max_length)) for r in rows]


def _rows(examples: list[dict], tokenizer, device) -> dict:
    """Encoded examples right-padded into one batch (:func:`lmkit.logprobs.pad`), on ``device``."""
    return {k: v.to(device) for k, v in pad(examples, tokenizer).items()}


@torch.no_grad()
def pair_logps(model, tokenizer, pairs: list[tuple[dict, dict]], *, batch_size: int = 8,
               device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed completion log-probabilities (nats) of every (chosen, rejected) pair: two float32 tensors ``[n]``, by
    :func:`sequence_logps` on ``batch_size`` pairs at a time, in eval mode (notebook 17)."""
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="pairs per forward pass, such as 8")
    if not pairs:
        checks.fail("got no encoded pairs: pass the list that encode_pairs returns")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for i in range(0, len(pairs), batch_size):
        part = pairs[i:i + batch_size]  # chosen and rejected apart: rejected answers are longer, less padding
        chosen.append(sequence_logps(model, _rows([c for c, _ in part], tokenizer, device)).cpu())
        rejected.append(sequence_logps(model, _rows([r for _, r in part], tokenizer, device)).cpu())
    model.train(was_training)
    return torch.cat(chosen), torch.cat(rejected)


def preference_metrics(policy: tuple[torch.Tensor, torch.Tensor], reference: tuple[torch.Tensor, torch.Tensor],
                       beta: float = 0.1) -> dict:
    """DPO loss, mean reward margin (nats, scaled by beta) and preference accuracy of ``(chosen, rejected)`` logps
    under a policy and a reference (notebook 17). Accuracy: share of pairs with ``r_chosen > r_rejected``."""
    loss, r_c, r_r = dpo_loss(*policy, *reference, beta=beta)
    margin = r_c - r_r
    return {"loss": loss.item(), "margin": margin.mean().item(), "accuracy": (margin > 0).float().mean().item(),
            "chosen_reward": r_c.mean().item(), "rejected_reward": r_r.mean().item()}


# ----------------------------------------------------------------------------------------------- training
@dataclass
class DPOResult:
    """What :func:`train` returns: the tuned ``lm`` (a peft model on a copy of the weights) and the history.

    ``history``: one dict per step (see :func:`train`); ``seconds_per_step`` over the steps this call ran;
    ``trainable_params``: the LoRA adapters' parameters; ``resumed_from``: the checkpoint's step, or None.
    """

    lm: object
    beta: float
    history: list = field(default_factory=list)
    seconds_per_step: float = float("nan")
    trainable_params: int = 0
    resumed_from: int | None = None


Result = DPOResult  # the name before the loops became one (lmkit.training); old imports keep working


class Reference(NamedTuple):
    """A value of :func:`train`'s ``reference_cache``: the reference's summed log-probabilities (nats) of a pair's
    chosen and rejected completions, and ``source``, the digest of what they were computed from (the reference
    model's weights and the pair's token ids, so its text, the tokenizer and ``max_length``)."""

    chosen: float
    rejected: float
    source: str


def _check_cache(cache, sources: list[str]) -> dict:
    """``cache`` if every entry is a :class:`Reference` for the pair at its index (``sources``); else one line."""
    if not isinstance(cache, dict):
        checks.fail(f"reference_cache={checks.show(cache, 50)} must be a dict: pass {{}} and reuse it across runs")
    fresh = "pass a new empty dict and let train() fill it"
    for key, value in cache.items():
        if not checks.is_integer(key) or not 0 <= key < len(sources):
            checks.fail(f"reference_cache has the key {checks.show(key, 30)}, not an index of the {len(sources)} "
                        f"train_pairs: {fresh}")
        if not isinstance(value, Reference):
            checks.fail(f"reference_cache[{key}]={checks.show(value, 40)} does not record what it was computed from "
                        f"(train() fills it with Reference values): {fresh}")
        if value.source != sources[key]:
            checks.fail(f"reference_cache[{key}] was computed from another model, pair or max_length: share a cache "
                        f"only between runs on the same lm, train_pairs and max_length, or {fresh}")
    return cache


def _dpo_settings(beta, max_steps, batch_size, lr, lora_r, lora_alpha, warmup_steps, max_length, eval_every, seed,
                  output_dir, save_every, resume, progress: bool | None = None) -> FitSettings:
    """Check :func:`train`'s settings (one-line :class:`lmkit.checks.CheckError`) and return the loop's."""
    checks.real("beta", beta, low=0, low_open=True, fix="use a positive number such as 0.1")
    for name, value in (("max_steps", max_steps), ("batch_size", batch_size), ("lora_r", lora_r),
                        ("max_length", max_length)):
        checks.integer(name, value, low=1, fix="pass a whole number such as 4")
    checks.real("lora_alpha", lora_alpha, low=0, low_open=True, fix="pass e.g. 2 * lora_r")
    checks.seed("seed", seed)
    warmup_steps = checks.integer("warmup_steps", warmup_steps, low=0, fix="pass 0 for no warm-up")
    return FitSettings(max_steps=max_steps, lr=lr, schedule="cosine", warmup_steps=min(warmup_steps, max_steps),
                       weight_decay=0.0, max_grad_norm=1.0, eval_every=eval_every, save_every=save_every,
                       output_dir=str(output_dir) if output_dir else None, resume=resume, progress=progress,
                       desc=f"DPO beta={beta}").check()


def train(lm, train_pairs: list[dict], *, val_pairs: list[dict] | None = None, beta: float = 0.1,
          max_steps: int = 30, batch_size: int = 4, lr: float = 5e-4, lora_r: int = 8, lora_alpha: int = 16,
          warmup_steps: int = 3, max_length: int = 192, eval_every: int = 10, seed: int = 0,
          output_dir=None, save_every: int = 0, resume: bool = False, progress: bool | None = None,
          plot: bool = False, reference_cache: dict | None = None) -> DPOResult:
    """DPO with LoRA on a copy of ``lm``'s model; ``lm`` itself is left unchanged (notebook 17).

    - The reference is the starting model: adapters off. Its log-probabilities of a pair are computed once, when the
      pair is first drawn (and for every held-out pair before the first step).
    - Each step takes ``batch_size`` pairs in a fixed shuffled order (:func:`lmkit.finetune.example_order`), runs
      their chosen completions in one padded batch and their rejected ones in another, and takes an AdamW step on
      :func:`dpo_loss` (nats per pair); warm-up then cosine decay, gradients clipped at 1: the steps run on
      :func:`lmkit.training.fit`, the loop that fine-tuning uses too.
    - ``history``: one dict per step with ``train_loss`` (DPO loss), ``margin`` and ``accuracy`` of the batch, ``lr``
      and ``grad_norm``, and every ``eval_every`` steps and at the end ``val_loss``, ``val_margin``,
      ``val_accuracy`` on ``val_pairs`` (at step 0 the policy is the reference: loss log 2, every margin 0). These
      are the keys that :func:`lmkit.finetune.plot_loss_curves` and :func:`plot_margins` draw.
    - ``output_dir`` + ``save_every``: checkpoints in the fine-tuning format (:mod:`lmkit.training.checkpoint`);
      ``resume=True`` continues from the last, refused if it is from another ``beta`` or ``seed``.
    - ``reference_cache``: a dict to share between runs on the same ``lm``, ``train_pairs`` and ``max_length`` (a
      beta sweep), so that each reference log-probability is computed once; keys are pair indices, values
      :class:`Reference` (with the digest of the weights and token ids they came from). An entry from another
      model, pair or ``max_length``, or one that train() did not write, is refused.
    - ``resume`` also refuses a checkpoint of other data (the pairs' token ids), another ``max_length``,
      ``batch_size`` or LoRA shape, or another base model (:func:`lmkit.training.fit` records its frozen weights).
    Raises ValueError (a one-line :class:`lmkit.checks.CheckError`, or :class:`lmkit.data.DataError` for the pairs)
    before any model work: for a bad setting (``beta`` a positive number, the counts whole numbers: ``2.7`` and
    ``True`` are refused), malformed pairs or pairs that write a special token (:func:`check_pairs`), an entry of
    ``reference_cache`` that does not match, or an encoded pair longer than the model's context.
    """
    from lmkit.env import seed_everything
    from lmkit.models import LM

    settings = _dpo_settings(beta, max_steps, batch_size, lr, lora_r, lora_alpha, warmup_steps, max_length,
                             eval_every, seed, output_dir, save_every, resume, progress)
    checks.boolean("plot", plot)
    tok = lm.tokenizer
    device = torch.device(lm.device)
    train_ex = encode_pairs(tok, check_pairs(train_pairs, tok, "train_pairs"), max_length)
    val_ex = encode_pairs(tok, check_pairs(val_pairs, tok, "val_pairs"), max_length) if val_pairs else []
    for name, examples in (("train_pairs", train_ex), ("val_pairs", val_ex)):
        check_fits(lm.model, [max(len(c["input_ids"]), len(r["input_ids"])) for c, r in examples], f"{name}: pair",
                   f"pass max_length <= the model's context (now {max_length})")
    if reference_cache is not None:
        weights = weights_fingerprint(lm.model.named_parameters())
        sources = [fingerprint([weights, c, r]) for c, r in train_ex]
        ref_cache = _check_cache(reference_cache, sources)
    else:
        ref_cache, sources = {}, None

    seed_everything(seed)
    base = copy.deepcopy(lm.model)
    if getattr(base.config, "_attn_implementation", None) == "eager":
        base.set_attn_implementation("sdpa")  # faster to train; lmkit.load's eager is for reading attentions
    policy = ft.add_lora(base, ft.TrainConfig(method="lora", lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0))

    def reference(indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference logps of training pairs, computed once each, when first needed (adapters off)."""
        todo = sorted({i for i in indices if i not in ref_cache})
        if todo:
            with policy.disable_adapter():
                c, r = pair_logps(policy, tok, [train_ex[i] for i in todo], device=device)
            ref_cache.update({i: Reference(a, b, sources[i] if sources else "") for i, a, b in
                              zip(todo, c.tolist(), r.tolist())})
        return (torch.tensor([ref_cache[i][0] for i in indices], device=device),
                torch.tensor([ref_cache[i][1] for i in indices], device=device))

    if val_ex:
        with policy.disable_adapter():  # the reference: the starting model
            ref_val = pair_logps(policy, tok, val_ex, device=device)
    accelerator = make_accelerator(device=device)
    world, rank = accelerator.num_processes, accelerator.process_index

    def pairs_of_step(step: int) -> dict:
        """This process's ``batch_size`` pairs of a step, from the data position alone, with their reference logps."""
        order = ft.example_order(len(train_ex), seed, step * batch_size * world, batch_size * world)
        order = order[rank * batch_size:(rank + 1) * batch_size]
        return {"ref": reference(order), "chosen": _rows([train_ex[i][0] for i in order], tok, device),
                "rejected": _rows([train_ex[i][1] for i in order], tok, device)}

    def dpo_step_loss(model, batch: dict):
        """The loss hook: DPO loss of the step's pairs, their mean reward margin and preference accuracy."""
        chosen, rejected = sequence_logps(model, batch["chosen"]), sequence_logps(model, batch["rejected"])
        loss, r_c, r_r = dpo_loss(chosen, rejected, *batch["ref"], beta=beta)
        margin = r_c - r_r
        return loss, {"margin": margin.mean(), "accuracy": (margin > 0).float().mean()}

    def held_out(model) -> dict:
        m = preference_metrics(pair_logps(model, tok, val_ex, device=device), ref_val, beta)
        return {"val_loss": m["loss"], "val_margin": m["margin"], "val_accuracy": m["accuracy"]}

    live = (lambda: ft.LivePlot(f"DPO (beta={beta}): loss", ylabel="DPO loss (nats per pair)",
                                mark_best=False)) if plot else None
    run = fit(policy, dpo_step_loss, pairs_of_step, settings, evaluate=held_out if val_ex else None,
              accelerator=accelerator,
              identity={"seed": seed, "method": "dpo-lora", "beta": beta, "data": fingerprint(train_ex),
                        "max_length": max_length, "batch_size": batch_size, "lora_r": lora_r,
                        "lora_alpha": lora_alpha},
              examples_per_step=batch_size * world, live_plot=live)
    tuned = LM(model=run.model, tokenizer=tok, device=lm.device, name=f"{lm.name} + DPO")
    trainable, _ = ft.count_parameters(run.model)
    return DPOResult(lm=tuned, beta=beta, history=run.history, trainable_params=trainable,
                     resumed_from=run.resumed_from, seconds_per_step=run.seconds_per_step)


def plot_margins(history: list[dict], ax=None, title: str = "DPO: reward margin"):
    """Reward margin (train batch per step, held-out every evaluation) against optimizer steps (notebook 17).

    The loss curves draw with :func:`lmkit.finetune.plot_loss_curves` (the same history keys). Returns the axes.
    """
    from lmkit.finetune.plots import plot_step_curves

    ax = plot_step_curves(history, "margin", "val_margin", ylabel="reward margin r_chosen - r_rejected (nats)",
                          title=title, labels=("train batch", "held-out pairs"), ax=ax)
    ax.axhline(0, color="grey", lw=0.8)
    return ax
