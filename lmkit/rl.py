"""Reasoning with verifiable rewards: pass@k, majority vote, GRPO's advantages and loss, and a task whose reward is
computed (taught in notebook 18, reasoning with rewards).

- **The task** (``data/rl/``, read with :func:`load_split`): one-step word problems, an addition or a subtraction
  with a whole-number answer. :func:`extract_answer` reads the last number of a reply (the rule of GSM8K-style
  graders), :func:`reward` is 1.0 when it equals the answer, else 0.0. :func:`prompt` is the user turn.
- **Inference-time scaling**: :func:`pass_at_k` (Chen et al. 2021, "Evaluating Large Language Models Trained on
  Code", the unbiased estimator), :func:`majority_vote` (Wang et al. 2022, "Self-Consistency Improves Chain of
  Thought Reasoning in Language Models"). :func:`sample` draws ``n`` completions per prompt in batches.
- **GRPO** (Shao et al. 2024, "DeepSeekMath", section 4.1): :func:`group_advantages` (reward minus its group's mean,
  over the group's standard deviation); :func:`grpo_token_losses` (the clipped ratio of PPO and the k3 estimate
  :func:`kl_k3` of the KL to a reference, token by token); :func:`grpo_loss` (their average over tokens, three ways:
  DAPO's token mean, GRPO's per-sequence mean, Dr. GRPO's constant normaliser). ``tests/test_rl.py`` asserts them
  equal to TRL's ``GRPOTrainer`` (1.16), the losses token by token.

Bad input raises a one-line :class:`lmkit.checks.CheckError` (a ``ValueError``) naming the value and the fix, before
any work.
"""
from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter
from typing import NamedTuple

import torch

from lmkit import checks
from lmkit.data import data_file
from lmkit.decoding.settings import eos_ids
from lmkit.files import DataError, read_jsonl
from lmkit.finetune.data import format_prompt
from lmkit.logprobs import pad, pad_id

__all__ = ["SPLITS", "INSTRUCTION", "AGGREGATIONS", "STD_EPS", "load_split", "prompt", "extract_answer", "reward",
           "pass_at_k", "majority_vote", "group_advantages", "kl_k3", "grpo_token_losses", "grpo_loss", "Samples",
           "sample", "completion_batch", "token_logprobs", "GroupSampler", "grpo_objective", "grpo_weight",
           "train_grpo"]

SPLITS = ("train", "test", "validation")
DATASET = "rl"
INSTRUCTION = " Give the final answer as a number."
"""Appended to each question to make the user turn (:func:`prompt`)."""
AGGREGATIONS = ("token", "sequence", "dr_grpo")
""":func:`grpo_loss`'s averages over tokens; TRL's names: ``"dapo"`` / ``"bnpo"``, ``"grpo"``, ``"dr_grpo"``."""
STD_EPS = 1e-4
"""Added to a group's standard deviation before dividing, as TRL's ``GRPOTrainer`` does (1.16)."""
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")  # "-3", "1,024", "2.5"; "is 12." ends a sentence


# ----------------------------------------------------------------------------------------------- the task
def load_split(split: str, limit: int | None = None) -> list[dict]:
    """The project's word problems (``data/rl/``): ``'train'`` (240), ``'test'`` (120, held out) or ``'validation'``
    (60, for choosing the training settings, ``benchmarks/rl_grpo.py``) (notebook 18).

    Each item: ``id``, ``question`` (str), ``answer`` (int), and the problem itself, ``op`` (``"add"`` / ``"sub"``),
    ``a``, ``b``. ``limit``: the first items only (an integer >= 1), or None for all. A bad line raises
    :class:`lmkit.files.DataError` naming the file and the line."""
    checks.one_of("split", split, SPLITS, error=DataError)
    if limit is not None:
        limit = checks.integer("limit", limit, low=1, fix="pass how many items to keep, or None for all",
                               error=DataError)
    return read_jsonl(data_file(f"{DATASET}/{split}.jsonl"), {"question": str, "answer": int})[:limit]


def prompt(item) -> str:
    """The user turn for an item (a dict with ``question``) or a question: the question and :data:`INSTRUCTION`."""
    question = item["question"] if isinstance(item, dict) else item
    return checks.text("question", question) + INSTRUCTION


def extract_answer(text: str) -> int | None:
    """The last number written in ``text`` as an integer (``"-3"``; ``"1,024"`` read as 1024; ``"12.0"`` as 12), or
    None if it has no number or its last number is not whole (``"2.5"``) (notebook 18).

    The rule of GSM8K-style graders: the final number is the answer. It is lenient on purpose (a reply need not say
    "The answer is"), so a reply that ends with a stray number scores that number: a reward a policy can learn to
    game, which notebook 18 looks for in the samples."""
    if not isinstance(text, str):
        checks.fail(f"text={checks.show(text)} must be a string, not {type(text).__name__}: pass the decoded reply")
    found = _NUMBER.findall(text)
    if not found:
        return None
    whole, _, fraction = found[-1].replace(",", "").partition(".")
    return None if fraction.strip("0") else int(whole)


def reward(text: str, answer: int) -> float:
    """1.0 if :func:`extract_answer` of ``text`` equals ``answer`` (an integer), else 0.0: computed, not judged
    (notebook 18)."""
    answer = checks.integer("answer", answer, fix="pass the item's integer answer")
    return 1.0 if extract_answer(text) == answer else 0.0


# ----------------------------------------------------------------------------------------------- inference-time scaling
def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from ``n`` samples of which ``c`` are correct (Chen et al. 2021, eq. 1;
    notebook 18): the probability that at least one of ``k`` samples drawn without replacement from the ``n`` is
    correct, ``1 - C(n-c, k) / C(n, k)``.

    Computed as the numerically stable product of Chen et al.'s code, ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, with no
    large binomials. A probability in [0, 1]; 1.0 when ``n - c < k`` (every k-subset holds a correct sample).

    Errors: ``n`` an integer >= 1, ``c`` an integer in [0, n], ``k`` an integer in [1, n].
    """
    n = checks.integer("n", n, low=1, fix="pass the number of samples drawn per problem")
    c = checks.integer("c", c, low=0, high=n, fix=f"the correct samples cannot outnumber the n={n} samples")
    k = checks.integer("k", k, low=1, high=n, fix=f"k cannot exceed the n={n} samples drawn; draw more or lower k")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def majority_vote(answers):
    """The most frequent answer among ``answers`` (self-consistency, Wang et al. 2022; notebook 18).

    ``answers``: a list (or tuple) of hashable answers, e.g. :func:`extract_answer` of each of k samples; ``None``
    stands for a reply with no answer and never wins over a parsed one (it is not counted). Ties go to the answer
    that appears first in ``answers``. Returns None only if every answer is None.

    Errors: an empty list, something that is not a list or tuple.
    """
    if not isinstance(answers, (list, tuple)) or not answers:
        checks.fail(f"answers={checks.show(answers)} must be a non-empty list: pass one answer per sample "
                     "(None for a reply with no answer)")
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None  # most_common keeps first-seen order among equal counts


# ----------------------------------------------------------------------------------------------- GRPO
def group_advantages(rewards, group_size: int, *, scale: bool = True) -> torch.Tensor:
    """GRPO's group-relative advantages (Shao et al. 2024, section 4.1.2, outcome supervision; notebook 18).

    ``rewards``: shape ``[batch]`` (a tensor or a list of numbers), the groups laid out one after another: rows
    ``0 .. group_size-1`` are the samples of the first prompt, and so on. Each advantage is the reward minus its
    group's mean; with ``scale=True`` it is divided by the group's standard deviation plus :data:`STD_EPS` (1e-4),
    the unbiased (n - 1) estimate, as TRL's ``GRPOTrainer`` (``scale_rewards="group"``). ``scale=False`` is Dr. GRPO's
    choice (Liu et al. 2025), TRL's ``scale_rewards="none"``. A group whose rewards are all equal gets advantage 0
    (no gradient), never NaN.

    Returns a float32 tensor ``[batch]`` (float64 if the rewards are). Errors: ``group_size`` not an integer >= 2 or
    not dividing the batch, a reward that is NaN or infinite, rewards that are not one-dimensional.
    """
    group_size = checks.integer("group_size", group_size, low=2, fix="a group needs at least two samples to compare")
    checks.boolean("scale", scale)
    r = torch.as_tensor(rewards)
    if r.ndim != 1 or not (r.is_floating_point() or r.dtype in (torch.int32, torch.int64, torch.bool)):
        checks.fail(f"rewards of shape {tuple(r.shape)} and dtype {r.dtype} must be one number per sample: pass a "
                    "1-D list or tensor of rewards")
    r = r.to(torch.float64 if r.dtype == torch.float64 else torch.float32)
    bad = (~torch.isfinite(r)).nonzero().flatten().tolist()
    if bad:
        checks.fail(f"rewards[{bad[0]}]={r[bad[0]].item()} must be a finite number: give every sample a reward "
                    "(0.0 for a reply with no answer)")
    if len(r) == 0 or len(r) % group_size:
        checks.fail(f"group_size={group_size} must divide the {len(r)} rewards: pass group_size samples per prompt, "
                    "the groups one after another")
    groups = r.view(-1, group_size)
    advantages = groups - groups.mean(dim=1, keepdim=True)
    if scale:
        advantages = advantages / (groups.std(dim=1, keepdim=True) + STD_EPS)
    return advantages.flatten()


def kl_k3(logp_new: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """The k3 estimate of KL(new || ref) at each sampled token (Schulman 2020, "Approximating KL divergence"; the
    form of DeepSeekMath eq. 4 and TRL; notebook 18): ``exp(ref - new) - (ref - new) - 1``, >= 0, in nats.

    Shapes: any two equal shapes, log-probabilities (nats) of the sampled tokens; returns that shape."""
    _same_shape(logp_new=logp_new, logp_ref=logp_ref)
    d = logp_ref - logp_new
    return torch.exp(d) - d - 1


def _same_shape(**tensors) -> None:
    first, shape = None, None
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            checks.fail(f"{name}={checks.show(t, 40)} must be a torch.Tensor: pass per-token values as a tensor")
        if shape is None:
            first, shape = name, tuple(t.shape)
        elif tuple(t.shape) != shape:
            checks.fail(f"{name} has shape {tuple(t.shape)} but {first} has {shape}: pass tensors of the same "
                        "[batch, completion tokens] shape")


def grpo_token_losses(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, *,
                      clip_eps: float = 0.2, beta: float = 0.0, logp_ref: torch.Tensor | None = None,
                      kl_bias_correction: bool = False) -> torch.Tensor:
    """GRPO's loss at each sampled token, before any mask or average (Shao et al. 2024, eq. 3; notebook 18).

    With ratio ``r = exp(logp_new - logp_old)`` and the completion's advantage ``A_i``:

        ``loss_it = -min(r * A_i, clip(r, 1 - clip_eps, 1 + clip_eps) * A_i) + beta * KL_it``

    the clipped surrogate of PPO (Schulman et al. 2017) and, when ``beta > 0``, the k3 estimate :func:`kl_k3` of the
    KL to the reference policy; ``kl_bias_correction=True`` multiplies each token's KL by its ratio ``r``, which makes
    its gradient the unbiased gradient of the reverse KL when sampling is off-policy (DeepSeek-AI 2025,
    "DeepSeek-V3.2"; TRL 1.16's ``use_bias_correction_kl``, True by default there). At a ratio exactly on the
    boundary, clipped and unclipped agree; beyond it, in the direction of the advantage, the token has no gradient.

    Shapes: ``logp_new``, ``logp_old`` and ``logp_ref`` ``[batch, T]``, log-probabilities (nats) of the sampled tokens
    under the policy being trained, the policy that sampled, and the reference; ``advantages`` ``[batch]``
    (:func:`group_advantages`). Returns ``[batch, T]`` in ``logp_new``'s dtype, padding positions included (they are
    for :func:`grpo_loss`'s mask to drop). Errors: as :func:`grpo_loss`.
    """
    clip_eps = checks.real("clip_eps", clip_eps, low=0, high=1, low_open=True, high_open=True,
                           fix="the ratio is clipped to [1 - clip_eps, 1 + clip_eps]; 0.2 is usual")
    beta = checks.real("beta", beta, low=0, fix="the weight of the KL penalty: 0 for none, such as 0.04")
    kl_bias_correction = checks.boolean("kl_bias_correction", kl_bias_correction)
    tensors = {"logp_new": logp_new, "logp_old": logp_old}
    if beta > 0 and logp_ref is None:
        checks.fail(f"beta={beta} needs logp_ref: pass the reference policy's per-token log-probabilities, or beta=0")
    if logp_ref is not None:
        tensors["logp_ref"] = logp_ref
    _same_shape(**tensors)
    if logp_new.ndim != 2:
        checks.fail(f"logp_new has shape {tuple(logp_new.shape)}: pass [batch, completion tokens] tensors")
    batch = logp_new.shape[0]
    if not isinstance(advantages, torch.Tensor) or tuple(advantages.shape) != (batch,):
        shape = tuple(advantages.shape) if isinstance(advantages, torch.Tensor) else type(advantages).__name__
        checks.fail(f"advantages has shape {shape} but logp_new has {batch} rows: pass one advantage per "
                    "completion, a [batch] tensor")
    ratio = torch.exp(logp_new - logp_old)
    a = advantages.to(logp_new.dtype).unsqueeze(1)
    per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * a)
    if beta > 0:
        kl = kl_k3(logp_new, logp_ref)
        per_token = per_token + beta * (kl * ratio if kl_bias_correction else kl)
    return per_token


def grpo_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
              clip_eps: float = 0.2, beta: float = 0.0, logp_ref: torch.Tensor | None = None,
              aggregation: str = "token", max_length: int | None = None,
              kl_bias_correction: bool = False) -> torch.Tensor:
    """The GRPO loss of a batch of sampled completions (Shao et al. 2024, eq. 3; notebook 18), a scalar to minimise.

    The per-token losses of :func:`grpo_token_losses` (the clipped ratio, plus ``beta`` times the k3 KL to the
    reference) averaged over the real tokens (``mask``) by ``aggregation``:

    - ``"token"``: the sum over every real token of the batch over their number (DAPO, Yu et al. 2025; TRL's
      ``"dapo"`` and ``"bnpo"`` on one batch): long completions weigh more;
    - ``"sequence"``: each completion's token mean, then the mean over completions (GRPO's eq. 3; TRL's
      ``"grpo"``): a token of a short completion weighs more, which Dr. GRPO (Liu et al. 2025) shows favours long
      wrong answers;
    - ``"dr_grpo"``: the sum over real tokens over ``batch * max_length`` (Dr. GRPO; TRL's ``"dr_grpo"``), a constant
      normaliser; ``max_length`` (default: the width of the tensors) is the generation budget.

    Shapes: ``logp_new``, ``logp_old``, ``mask`` and ``logp_ref`` ``[batch, T]`` (log-probabilities in nats of the
    sampled tokens under the policy being trained, the policy that sampled, the reference); ``mask`` 1/True on the
    completion's real tokens, 0 on padding; ``advantages`` ``[batch]`` (:func:`group_advantages`). In a training
    loop only ``logp_new`` carries gradients (detach the others).

    Errors: a tensor of another shape than ``logp_new``'s (or not 2-D), ``advantages`` not ``[batch]``,
    ``clip_eps`` not in (0, 1), ``beta`` < 0, ``beta > 0`` without ``logp_ref``, an unknown ``aggregation``,
    ``max_length`` shorter than the tensors, ``kl_bias_correction`` not a bool.
    """
    aggregation = checks.one_of("aggregation", aggregation, AGGREGATIONS)
    _same_shape(logp_new=logp_new, mask=mask)
    if max_length is not None:
        width = logp_new.shape[-1] if logp_new.ndim else 1
        max_length = checks.integer("max_length", max_length, low=max(width, 1),
                                    fix="the generation budget, at least the completions' width")
    per_token = grpo_token_losses(logp_new, logp_old, advantages, clip_eps=clip_eps, beta=beta, logp_ref=logp_ref,
                                  kl_bias_correction=kl_bias_correction)
    mask = mask.to(per_token.dtype)
    masked = per_token * mask
    if aggregation == "token":
        return masked.sum() / mask.sum().clamp(min=1.0)
    if aggregation == "sequence":
        return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    batch, width = per_token.shape
    return masked.sum() / (batch * (max_length or width))


# ----------------------------------------------------------------------------------------------- sampling
class Samples(NamedTuple):
    """What :func:`sample` drew: ``n`` completions per prompt, laid out prompt by prompt (the groups of
    :func:`group_advantages`).

    ``texts``: the decoded completions (special tokens dropped); ``prompt_ids``: each row's prompt ids (the chat
    template applied); ``completion_ids``: each completion's ids up to and including its end-of-turn token (when it
    ended by itself), so ``len`` is the tokens it cost; ``finished``: whether it ended by itself before the budget.
    """
    texts: list[str]
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    finished: list[bool]


@torch.no_grad()
def sample(lm, prompts, *, n: int = 1, max_new_tokens: int = 64, do_sample: bool = True, temperature: float = 1.0,
           top_p: float = 1.0, seed: int | None = None, batch_size: int = 32, model=None) -> Samples:
    """``n`` completions of each prompt in its chat template, generated in batches of ``batch_size`` rows with left
    padding (notebook 18). ``do_sample=False`` is greedy (then ``n`` copies are identical: use ``n=1``).

    ``prompts``: user turns (:func:`prompt`). ``seed``: ``torch.manual_seed(seed)`` once before the first batch.
    ``model``: generate with this model (a LoRA-wrapped copy) instead of ``lm.model``; the tokenizer is ``lm``'s.
    Returns :class:`Samples` with ``len(prompts) * n`` rows, prompt by prompt.
    Errors: empty or non-string prompts, ``n`` / ``max_new_tokens`` / ``batch_size`` not integers >= 1,
    ``temperature`` <= 0, ``top_p`` not in (0, 1], a bad seed.
    """
    prompts = checks.texts("prompts", prompts)
    n = checks.integer("n", n, low=1, fix="pass how many completions to draw per prompt")
    max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, fix="ask for at least one new token")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="rows generated at once, such as 32")
    do_sample = checks.boolean("do_sample", do_sample)
    temperature = checks.real("temperature", temperature, low=0, low_open=True, fix="such as 1.0")
    top_p = checks.probability("top_p", top_p, open_low=True, fix="1.0 keeps the whole distribution")
    if seed is not None:
        seed = checks.seed("seed", seed)
    model = lm.model if model is None else model
    tok = lm.tokenizer
    rows = [tok(format_prompt(tok, p), add_special_tokens=False).input_ids for p in prompts for _ in range(n)]
    stops = eos_ids(lm)
    settings = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if do_sample else \
        dict(do_sample=False, temperature=None, top_p=None, top_k=None)
    if seed is not None:
        torch.manual_seed(seed)
    completions, finished = [], []
    for start in range(0, len(rows), batch_size):
        batch = {k: v.to(lm.device) for k, v in pad([{"input_ids": r} for r in rows[start:start + batch_size]],
                                                     tok, side="left").items()}
        out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=pad_id(tok), **settings)
        for row in out[:, batch["input_ids"].shape[1]:].tolist():
            end = next((i for i, t in enumerate(row) if t in stops), None)
            completions.append(row if end is None else row[:end + 1])
            finished.append(end is not None)
    texts = tok.batch_decode(completions, skip_special_tokens=True)
    return Samples(texts, rows, completions, finished)


# ----------------------------------------------------------------------------------------------- scoring samples
def completion_batch(prompt_ids, completion_ids, pad_with) -> dict[str, torch.Tensor]:
    """Prompts and their sampled completions in one batch, laid out as generation saw them (notebook 18).

    ``prompt_ids``, ``completion_ids``: one id list per row (:class:`Samples`' fields), each completion at least one
    token. Prompts are left-padded to one width ``P`` and completions right-padded to one width ``T``, so every
    completion starts at column ``P`` (TRL's ``GRPOTrainer`` lays its batches out the same way).
    ``pad_with``: the pad id, or the tokenizer (:func:`lmkit.logprobs.pad_id`).

    Returns long tensors: ``input_ids``, ``attention_mask`` and ``position_ids`` ``[N, P + T]`` (positions count
    real tokens from 0, as ``generate`` counts them under left padding, so scoring sees what sampling saw) and
    ``completion_mask`` ``[N, T]`` (1 on the completion's real tokens). Errors: no rows, a different number of
    prompts and completions, an empty prompt or completion.
    """
    if not isinstance(prompt_ids, (list, tuple)) or not isinstance(completion_ids, (list, tuple)) or not prompt_ids:
        checks.fail(f"got {checks.show(prompt_ids, 40)} and {checks.show(completion_ids, 40)}: pass two non-empty "
                    "lists of id lists, such as Samples.prompt_ids and Samples.completion_ids")
    if len(prompt_ids) != len(completion_ids):
        checks.fail(f"got {len(prompt_ids)} prompts and {len(completion_ids)} completions: pass one prompt per "
                    "completion (Samples repeats each prompt n times)")
    empty = next((i for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)) if not len(p) or not len(c)), None)
    if empty is not None:
        checks.fail(f"row {empty} has {len(prompt_ids[empty])} prompt and {len(completion_ids[empty])} completion "
                    "ids: every row needs both (drop empty completions before scoring)")
    left = pad([{"input_ids": list(p)} for p in prompt_ids], pad_with, side="left")
    right = pad([{"input_ids": list(c)} for c in completion_ids], pad_with, side="right")
    mask = torch.cat([left["attention_mask"], right["attention_mask"]], dim=1)
    return {"input_ids": torch.cat([left["input_ids"], right["input_ids"]], dim=1), "attention_mask": mask,
            "position_ids": (mask.cumsum(dim=1) - 1).clamp(min=0), "completion_mask": right["attention_mask"]}


def token_logprobs(model, batch: dict, *, temperature: float = 1.0) -> torch.Tensor:
    """The log-probability (nats, float32) of each completion token under ``model``: ``[N, T]`` (the reasoning
    notebook).

    ``batch``: :func:`completion_batch`'s dict, on the model's device. One forward pass; the LM head runs only on the
    last ``T + 1`` columns (``logits_to_keep``), whose first ``T`` predict the completion's tokens. Padding columns
    hold the log-probability of the pad id: mask them with ``completion_mask``. Gradients flow when enabled (the
    policy's log-probabilities in a GRPO step); under ``torch.no_grad()`` it gives the sampling policy's and the
    reference's. ``temperature``: the logits are divided by it before the log-softmax, so the log-probabilities
    are those of the distribution the replies were sampled from at that temperature (TRL's ``GRPOTrainer`` does the
    same with ``GRPOConfig.temperature``); a GRPO step at sampling temperature 0.7 must score at 0.7, or its ratio and
    KL compare two different distributions. Errors: a batch without the keys of :func:`completion_batch`, a
    temperature <= 0.
    """
    temperature = checks.real("temperature", temperature, low=0, low_open=True,
                              fix="the sampling temperature, such as 1.0")
    missing = [k for k in ("input_ids", "attention_mask", "position_ids", "completion_mask") if k not in batch]
    if missing:
        checks.fail(f"the batch has no {', '.join(missing)}: pass the dict that lmkit.rl.completion_batch returns")
    width = batch["completion_mask"].shape[1]
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=width + 1).logits[:, :-1]
    targets = batch["input_ids"][:, -width:]
    return (logits.float() / temperature).log_softmax(dim=-1).gather(2, targets.unsqueeze(2)).squeeze(2)


# ----------------------------------------------------------------------------------------------- training
class GroupSampler:
    """GRPO's batch source for :func:`lmkit.training.fit`: each step samples a group per question with the current
    policy, rewards it, and hands over the replies of the groups whose rewards differ (notebook 18).

    ``items``: training problems (:func:`load_split`), shuffled once with ``seed`` and taken ``prompts`` at a time
    (round and round). At each step: ``group`` replies per question from ``policy`` at ``temperature``, at most
    ``max_new_tokens`` each (:func:`sample`, seeded by ``seed`` and the draw, so a run repeats exactly);
    :func:`reward`; :func:`group_advantages`. A group whose rewards are all equal has advantage 0 and teaches nothing,
    so it is left out; when *every* group of a draw is so, the next ``prompts`` questions are drawn instead, up to
    ``max_draws`` draws (DAPO's dynamic sampling, Yu et al. 2025, applied only to a step that would be empty).
    The reference's log-probabilities (``policy`` with its adapters switched off: the base model) are taken here,
    without gradients, for :func:`grpo_objective`'s KL.

    Calling it with the step gives a list of micro-batches of at most ``chunk`` replies (:func:`completion_batch`'s
    keys plus ``advantages`` ``[n]`` and ``ref_logp`` ``[n, T]``). ``stats``: one dict per step, over every reply
    drawn in it: ``reward`` (mean), ``length`` (mean tokens), ``zero_variance`` (share of groups with equal
    rewards), ``cut`` (share stopped by the budget), ``n_cut``, ``cut_rewarded``, ``draws``, ``replies``.
    Errors: a bad ``items``, ``prompts``, ``group`` (at least 2), ``chunk``, ``max_draws``; a step that finds no
    group with unequal rewards in ``max_draws`` draws raises ValueError saying what to change.
    """

    def __init__(self, lm, policy, items, *, prompts: int = 4, group: int = 8, max_new_tokens: int = 48,
                 temperature: float = 0.7, seed: int = 0, chunk: int = 8, max_draws: int = 4):
        if not isinstance(items, (list, tuple)) or not items or not all(isinstance(i, dict) for i in items):
            checks.fail(f"items={checks.show(items, 40)}: pass a non-empty list of problems, such as "
                        "rl.load_split('train')")
        self.prompts = checks.integer("prompts", prompts, low=1, fix="questions per step, such as 4")
        self.group = checks.integer("group", group, low=2, fix="a group needs at least 2 replies to compare")
        self.chunk = checks.integer("chunk", chunk, low=1, fix="replies per backward pass, such as 8")
        self.max_draws = checks.integer("max_draws", max_draws, low=1, fix="such as 4")
        self.max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, fix="such as 48")
        self.temperature = checks.real("temperature", temperature, low=0, low_open=True, fix="such as 0.7")
        self.seed = checks.seed("seed", seed)
        self.lm, self.policy = lm, policy
        self.order = random.Random(self.seed).sample(list(items), len(items))
        self.cursor, self.draws, self.stats = 0, 0, []

    def _draw(self):
        items = [self.order[(self.cursor + j) % len(self.order)] for j in range(self.prompts)]
        self.cursor += self.prompts
        drawn = sample(self.lm, [prompt(i) for i in items], n=self.group, max_new_tokens=self.max_new_tokens,
                       temperature=self.temperature, seed=self.seed * 100_000 + 1000 + self.draws, batch_size=64,
                       model=self.policy)
        self.draws += 1
        rewards = torch.tensor([reward(t, i["answer"]) for t, i in zip(drawn.texts, [i for i in items
                                                                                     for _ in range(self.group)])])
        return drawn, rewards

    def __call__(self, step: int) -> list[dict]:
        replies, draws = [], 0
        while draws < self.max_draws:
            drawn, rewards = self._draw()
            draws += 1
            replies.append((drawn, rewards))
            advantages = group_advantages(rewards, self.group)
            if (advantages != 0).any():
                break
        else:
            raise ValueError(f"step {step + 1}: no group had unequal rewards in {self.max_draws} draws of "
                             f"{self.prompts} questions: raise group, temperature or max_draws, or start from a "
                             "model that is sometimes right")
        all_rewards = torch.cat([r for _, r in replies])
        lengths = [len(c) for d, _ in replies for c in d.completion_ids]
        cut = torch.tensor([not f for d, _ in replies for f in d.finished])
        groups = all_rewards.view(-1, self.group)
        self.stats.append({"reward": all_rewards.mean().item(), "length": sum(lengths) / len(lengths),
                           "zero_variance": (groups.std(1) == 0).float().mean().item(),
                           "cut": cut.float().mean().item(), "n_cut": int(cut.sum()),
                           "cut_rewarded": int(all_rewards[cut].sum()), "draws": draws, "replies": len(lengths)})
        keep = (advantages != 0).nonzero().flatten().tolist()  # the last draw's groups with unequal rewards
        micro = []
        for s in range(0, len(keep), self.chunk):
            rows = keep[s:s + self.chunk]
            batch = completion_batch([drawn.prompt_ids[r] for r in rows], [drawn.completion_ids[r] for r in rows],
                                     self.lm.tokenizer)
            with torch.no_grad(), self.policy.disable_adapter():
                batch["ref_logp"] = token_logprobs(self.policy, {k: v.to(self.lm.device) for k, v in batch.items()},
                                                   temperature=self.temperature).cpu()
            batch["advantages"] = advantages[rows]
            micro.append(batch)
        return micro


def grpo_objective(*, temperature: float = 1.0, clip_eps: float = 0.2, beta: float = 0.0):
    """GRPO's loss function for :func:`lmkit.training.fit`, over :class:`GroupSampler`'s micro-batches (notebook 18).

    Returns ``loss_fn(model, batch) -> (loss, metrics)``: ``loss`` the SUM over the batch's completion tokens of
    :func:`grpo_token_losses` (one gradient step per batch, so ``logp_old`` is the policy's own detached
    log-probabilities and the ratio is 1), and ``metrics`` ``{"kl": ...}`` the sum of :func:`kl_k3` to the
    reference over the same tokens. With ``weight=grpo_weight`` :func:`lmkit.training.fit` divides both by the
    step's completion tokens: DAPO's token mean (:func:`grpo_loss` with ``aggregation="token"``) over the step's micro-batches, and
    the mean KL per token. ``temperature``: the sampling temperature (:func:`token_logprobs`).
    """
    temperature = checks.real("temperature", temperature, low=0, low_open=True, fix="the sampling temperature")
    clip_eps = checks.real("clip_eps", clip_eps, low=0, high=1, low_open=True, high_open=True, fix="0.2 is usual")
    beta = checks.real("beta", beta, low=0, fix="the weight of the KL penalty: 0 for none, such as 0.04")

    def loss_fn(model, batch):
        logp = token_logprobs(model, batch, temperature=temperature)
        mask = batch["completion_mask"].to(logp.dtype)
        per_token = grpo_token_losses(logp, logp.detach(), batch["advantages"], clip_eps=clip_eps, beta=beta,
                                      logp_ref=batch["ref_logp"])
        return (per_token * mask).sum(), {"kl": (kl_k3(logp.detach(), batch["ref_logp"]) * mask).sum()}

    return loss_fn


def grpo_weight(batch) -> float:
    """What one of :class:`GroupSampler`'s micro-batches counts for in :func:`lmkit.training.fit`: its completion
    tokens (the token mean of DAPO)."""
    return float(batch["completion_mask"].sum())


def train_grpo(lm, items, *, steps: int, prompts: int = 4, group: int = 8, lr: float = 5e-4,
               max_new_tokens: int = 48, temperature: float = 0.7, seed: int = 0, lora_r: int = 16,
               lora_alpha: int = 32, beta: float = 0.0, chunk: int = 8, max_draws: int = 4, live_plot=None):
    """Train LoRA adapters on ``lm.model`` with GRPO on ``items`` for ``steps`` steps (notebook 18).

    :class:`GroupSampler` is the batch source, :func:`grpo_objective` the loss, weighted by :func:`grpo_weight`,
    and :func:`lmkit.training.fit` the loop (AdamW at a constant ``lr``, no weight decay, gradients clipped at norm
    1). ``max_draws``: :class:`GroupSampler`'s. ``seed`` seeds the adapters' initialisation, the order of the
    questions and the sampling. ``lm.model`` is wrapped in place (peft), so ``rl.sample(lm, ...)`` now samples from
    the trained policy too: sample from the base model inside ``policy.disable_adapter()``. ``live_plot``: as
    :func:`lmkit.training.fit`'s, its ``update`` receives the history with the sampler's statistics merged in.

    Returns ``(policy, history)``: the peft model, in eval mode, and one dict per step: ``step``, ``train_loss``,
    ``grad_norm``, ``kl`` (mean per token over the replies learned from, nats), the :class:`GroupSampler` stats and
    ``seconds`` (cumulative, the sampling included).
    """
    from lmkit import env
    from lmkit.finetune import TrainConfig, add_lora
    from lmkit.training import FitSettings, fit

    steps = checks.integer("steps", steps, low=1, fix="take at least one GRPO step")
    objective = grpo_objective(temperature=temperature, beta=beta)
    settings = FitSettings(max_steps=steps, lr=lr, schedule="constant", weight_decay=0.0, max_grad_norm=1.0,
                           progress=False, desc="GRPO").check()
    sampler = GroupSampler(lm, None, items, prompts=prompts, group=group, max_new_tokens=max_new_tokens,
                           temperature=temperature, seed=seed, chunk=chunk,
                           max_draws=max_draws)  # every check before lm.model is wrapped
    config = TrainConfig(lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.0)
    config.check()
    env.seed_everything(seed)
    policy = sampler.policy = add_lora(lm.model, config)

    def merged(history):  # fit's history with the sampler's statistics of each step
        return [{**entry, **sampler.stats[entry["step"] - 1]} for entry in history
                if 1 <= entry["step"] <= len(sampler.stats)]

    class _Plot:
        def __init__(self):
            self.inner = live_plot()

        def update(self, history):
            self.inner.update(merged(history))

        def close(self):
            self.inner.close()

    result = fit(policy, objective, sampler, settings, weight=grpo_weight,
                 live_plot=_Plot if live_plot is not None else None)
    history = merged(result.history)
    for entry, seconds in zip(history, itertools.accumulate(result.seconds)):
        entry["seconds"] = seconds
    return result.model, history
