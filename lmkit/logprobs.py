"""Completion log-probabilities, written once: encode prompt + completion, pad, score the labelled tokens.

Every lmkit function that asks "how likely is this completion after this prompt?" goes through this module:
label scores in notebook 15 (:func:`lmkit.apps.continuation_logprobs`), multiple choice in notebook 16
(:func:`lmkit.evaluation.loglikelihoods`), DPO in notebook 17 (:func:`lmkit.preference.sequence_logps`) and the
fine-tuning loss in notebook 12 (:func:`lmkit.finetune.forward_nll`). The steps, bottom up:

1. :func:`encode_completion`: the token ids of a context and of the completion after it, by one of two rules
   (``"harness"``: lm-evaluation-harness's split; ``"apart"``: each text on its own, as TRL and generation do).
2. :func:`labelled_example`: ``input_ids`` and ``labels``, the labels ``-100`` (:data:`IGNORE`) on the context.
3. :func:`pad`: examples into one batch of tensors (right or left padding), padding labelled ``-100`` too; the pad
   id comes from :func:`pad_id` (the tokenizer's pad token, else its end-of-text token).
4. :func:`labelled_positions` and :func:`completion_logprobs`: the logits at position ``t`` predict token ``t + 1``;
   only positions whose next token is labelled go through the LM head; the log-softmax there is read at the label.
   Returns each completion's summed log-probability (nats), its token count and whether greedy decoding would
   produce it (:class:`Scores`).
5. :func:`pair_logprobs`: many (context, completion) id pairs at once, for scoring without gradients: the completions
   of one context share one row (the context runs once), and the ids that every context starts with run once, as
   a KV cache.

Nothing here knows about prompts, chat templates or data sets: callers choose the rule and the texts.
"""
from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from lmkit import checks
from lmkit.env import show_progress
from lmkit.transformers_compat import returned_cache, with_cache

__all__ = ["IGNORE", "RULES", "SIDES", "Scores", "special_tokens_in", "encode_completion", "labelled_example",
           "pad_id", "pad", "context_length", "check_fits", "labelled_positions", "completion_logprobs",
           "common_prefix", "pair_logprobs"]

IGNORE = -100
"""The label of a position that is not scored: the context (prompt) and padding. transformers' and PyTorch's
``ignore_index``, so ``model(..., labels=)`` and ``F.cross_entropy`` skip the same positions."""

RULES = ("harness", "apart")
"""How :func:`encode_completion` splits context + completion into tokens."""

SIDES = ("right", "left")
"""Where :func:`pad` puts the padding."""

_FILL = {"labels": IGNORE, "position_ids": 0, "blocks": -1, "segments": -1}
"""What :func:`pad` fills each known key with (``input_ids`` get the pad id, ``attention_mask`` 0)."""


# ----------------------------------------------------------------------------------------------- encoding
def special_tokens_in(tokenizer, text: str) -> list[str]:
    """The special tokens of ``tokenizer`` (``<|im_end|>``, ``<|endoftext|>``, ...) written as text inside ``text``,
    in the order the tokenizer lists them; ``[]`` when there is none.

    A tokenizer called on such text would read each as its special token (a control token), not as the characters
    a user wrote: lmkit either encodes user text as text (``split_special_tokens=True``) or refuses it with this
    list in the message (TRL #4481: a DPO completion ending in ``"<|im_end|>"`` got two end-of-turn tokens)."""
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    names = [t.content for t in added.values() if getattr(t, "special", False)]
    names += [t for t in getattr(tokenizer, "all_special_tokens", []) or [] if t not in names]
    return [t for t in names if t and t in text]


def encode_completion(tokenizer, context: str, completion: str, *, rule: str = "harness", eos: bool = False,
                      max_length: int | None = None) -> tuple[list[int], list[int]]:
    """Token ids of ``context`` and of ``completion`` after it: ``(context_ids, completion_ids)``.

    No special tokens are added by the tokenizer, and the completion is read as text: a special token written in it
    (``"<|im_end|>"``) becomes the ordinary tokens of those characters (``split_special_tokens=True``), never the
    control token. The two rules (``rule=``):

    - ``"harness"`` (lm-evaluation-harness, ``HFLM._encode_pair``; notebook 16): trailing whitespace of the context
      moves to the front of the completion; ``context + completion`` is tokenized as one text, and the completion's
      ids are what follows the context's own ids. A completion is thus scored as the tokens the model would read
      in the whole text. An empty context becomes the BOS token (EOS when there is none), the harness's
      ``prefix_token_id``: the first completion token needs a position that predicts it. Both texts are read as
      text (the harness would read a special token written in an item as the token itself).
    - ``"apart"`` (TRL's ``DPOTrainer``, and generation: notebooks 12, 15, 17): context and completion are
      tokenized on their own and the ids joined, so the completion's tokens are exactly those that a model writes
      after that prompt at generation time, and a label word is the same ids whatever precedes it. An empty
      context stays empty (:func:`pair_logprobs` refuses it). The context keeps its special tokens: it is the
      caller's prompt, often in a chat template (``<|im_start|>user ...``).

    ``eos=True`` appends the tokenizer's end-of-text id to the completion (a fine-tuned model learns to stop); a
    completion that writes a special token as text is then refused (training data that ends in ``"<|im_end|>"``
    would teach the model to write the marker as text before the real one).
    ``max_length``: at most this many ids in all; the start of the context is cut first, then the end of the
    completion (so the answer survives a long prompt; notebook 12).

    Raises :class:`lmkit.checks.CheckError` (a ValueError) for an unknown rule, a non-string text, ``eos=True`` with
    a tokenizer that has no end-of-text token (nor BOS / EOS for an empty harness context), ``max_length`` not an
    integer >= 2, or ``eos=True`` with special-token text in the completion.
    """
    checks.one_of("rule", rule, RULES)
    for name, value in (("context", context), ("completion", completion)):
        if not isinstance(value, str):
            checks.fail(f"{name} must be a string, not {type(value).__name__}: pass the text itself")
    checks.boolean("eos", eos)
    if max_length is not None:
        max_length = checks.integer("max_length", max_length, low=2,
                                    fix="leave room for a prompt token and an answer token")
    if eos and tokenizer.eos_token_id is None:
        checks.fail("eos=True, but the tokenizer has no eos_token_id: set tokenizer.eos_token or pass eos=False")
    if eos and (found := special_tokens_in(tokenizer, completion)):
        checks.fail(f"completion {checks.show(completion, 50)} writes the special token {found[0]!r} as text: eos=True "
                    "adds the end of text itself; remove the marker from the data")

    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):  # length is checked against the model's context by check_fits, in one line
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True

    def ids(text: str, as_text: bool = True) -> list[int]:
        return tokenizer(text, add_special_tokens=False, split_special_tokens=as_text).input_ids

    if rule == "apart":
        ctx, comp = ids(context, as_text=False), ids(completion)
    else:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            context, completion = context[:-n_spaces], context[-n_spaces:] + completion
        if not context:
            first = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
            if first is None:
                checks.fail("the context is empty and the tokenizer has no BOS or EOS token to stand for it: "
                            "give the context some text")
            ctx, comp = [first], ids(completion)
        else:
            ctx = ids(context)
            comp = ids(context + completion)[len(ctx):]
    if eos:
        comp = comp + [tokenizer.eos_token_id]
    if max_length is not None:
        room = max(max_length - len(comp), 0)
        ctx = ctx[max(len(ctx) - room, 0):] if room else []  # a negative start would cut a prompt that fits
        comp = comp[:max_length - len(ctx)]
    return ctx, comp


def labelled_example(context_ids: list[int], completion_ids: list[int]) -> dict:
    """``{"input_ids": context + completion, "labels": ...}`` with the context's labels :data:`IGNORE`, so only the
    completion is scored (the prompt masking of notebooks 12 and 17; TRL's ``completion_mask``)."""
    return {"input_ids": list(context_ids) + list(completion_ids),
            "labels": [IGNORE] * len(context_ids) + list(completion_ids)}


# ----------------------------------------------------------------------------------------------- padding
def pad_id(tokenizer) -> int:
    """The id that pads a batch: the tokenizer's pad token, else its end-of-text token (SmolLM2 has both).

    The one fallback rule of lmkit: under the attention mask a pad token is never seen, so any real id would do;
    EOS is the one transformers' ``generate`` falls back to as well, so a padded row that generation continues
    reads as finished. Raises :class:`lmkit.checks.CheckError` when the tokenizer has neither.
    """
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if value is not None:
            return int(value)
    checks.fail("the tokenizer has neither pad_token_id nor eos_token_id: set tokenizer.pad_token")


def pad(examples: list[dict], value, *, side: str = "right") -> dict[str, torch.Tensor]:
    """Pad encoded examples into one batch of ``[batch, width]`` long tensors (the one padding of lmkit).

    ``examples``: dicts of id lists, each with ``input_ids`` and optionally ``labels`` (padded with :data:`IGNORE`),
    ``position_ids`` (0), and the packing keys ``blocks`` / ``segments`` of :func:`pair_logprobs` (-1). ``value``: the
    pad id of ``input_ids``, or a tokenizer (then :func:`pad_id`). Adds ``attention_mask`` (1 on real tokens, 0 on
    padding).

    ``side="right"`` for training and labelled batches: with a causal mask a real token never sees the padding
    after it, and positions count from 0 in every row. ``side="left"`` when rows must end together: batched
    generation predicts at the last column (notebook 16's letter answers), and :func:`pair_logprobs` keeps the
    logits of only the last columns. Uses ``torch.nn.utils.rnn.pad_sequence``.

    Raises :class:`lmkit.checks.CheckError` for no examples, a key it does not know, keys or lengths that differ
    between examples, or a bad ``side`` / ``value``.
    """
    checks.one_of("side", side, SIDES)
    if not examples:
        checks.fail("got no examples to pad: pass a non-empty list of encoded examples")
    fill = pad_id(value) if hasattr(value, "eos_token_id") else checks.integer(
        "value", value, low=0, fix="pass the tokenizer's pad id or the tokenizer itself")
    keys = list(examples[0])
    unknown = [k for k in keys if k != "input_ids" and k not in _FILL]
    if "input_ids" not in keys or unknown:
        checks.fail(f"examples have keys {keys}: pad() needs 'input_ids' and knows only {['input_ids', *_FILL]}")
    for i, ex in enumerate(examples):
        if list(ex) != keys or any(len(ex[k]) != len(ex["input_ids"]) for k in keys):
            checks.fail(f"example {i} has keys {list(ex)} with lengths {[len(ex[k]) for k in ex]}: every example "
                        f"needs the keys {keys}, each as long as its input_ids")

    def stack(rows: list, fill_value: int) -> torch.Tensor:
        rows = [torch.as_tensor(r, dtype=torch.long) for r in rows]
        return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=fill_value, padding_side=side)

    out = {"input_ids": stack([ex["input_ids"] for ex in examples], fill),
           "attention_mask": stack([[1] * len(ex["input_ids"]) for ex in examples], 0)}
    out.update({k: stack([ex[k] for ex in examples], _FILL[k]) for k in keys if k != "input_ids"})
    return out


# ----------------------------------------------------------------------------------------------- the context
def context_length(model) -> int | None:
    """How many positions ``model`` reads (its config's ``max_position_embeddings``), or None when it does not say.
    A model (or an :class:`lmkit.LM`, or a peft wrapper) is accepted."""
    model = getattr(model, "model", model) if not hasattr(model, "config") else model
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(n) if checks.is_integer(n) and n > 0 else None


def check_fits(model, lengths, what: str = "sequence", fix: str = "shorten it") -> None:
    """Refuse, in one line and before any forward pass, the first of ``lengths`` (token counts) that is longer than
    :func:`context_length` of ``model``: past its context a model's positions are untrained and its scores are
    silently wrong (lm-evaluation-harness cuts the start instead; lmkit says so and lets the caller choose).
    ``what`` names an item (``"pair"``: "pair 3 is 8,301 tokens"), ``fix`` ends the message."""
    limit = context_length(model)
    if limit is None:
        return
    for i, n in enumerate(lengths):
        if n > limit:
            checks.fail(f"{what} {i} is {n:,} tokens but the model reads at most {limit:,}: {fix}")


# ----------------------------------------------------------------------------------------------- scoring
class Scores(NamedTuple):
    """Per completion: ``logprob`` (float32, nats, summed over its tokens), ``n_tokens`` (long), ``greedy`` (bool:
    each of its tokens is the argmax of the distribution that predicts it, the harness's ``is_greedy``)."""

    logprob: torch.Tensor
    n_tokens: torch.Tensor
    greedy: torch.Tensor


def labelled_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the logits are needed, and what they must predict: ``(keep [K], targets [batch, K])``.

    The causal shift of ``model(..., labels=)``: the logits at position ``t`` predict the label at ``t + 1``, so
    ``targets = labels[:, 1:]`` (the first label is never scored: nothing precedes it). ``keep`` holds the positions
    ``t`` where some row has a label at ``t + 1``; ``targets`` are those columns, :data:`IGNORE` where that row has
    none. Passing ``keep`` as ``logits_to_keep`` skips the LM head (576 x 49,152 for SmolLM2) at every prompt
    position (notebook 12).
    """
    targets = labels[:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
    return keep, targets[:, keep]


def completion_logprobs(model, batch: dict, **model_kwargs) -> Scores:
    """Summed log-probability (nats), token count and greedy flag of the labelled tokens of each completion.

    ``batch``: tensors on the model's device, ``input_ids`` and ``labels`` ``[batch, T]`` (labels :data:`IGNORE` on
    the prompt and padding, as :func:`pad` gives), ``attention_mask`` (``[batch, T]``, or an additive
    ``[batch, 1, T, S]`` mask), optionally ``position_ids`` and ``segments`` (``[batch, T]``: the index of the
    completion each token belongs to, -1 for none; :func:`pair_logprobs` puts several completions in one row).
    Without ``segments`` each row is one completion. ``model_kwargs`` go to the forward call (a KV cache).

    One forward pass; the LM head runs only at :func:`labelled_positions`; log-softmax in float32. Returns
    :class:`Scores` with one entry per completion; a completion with no labelled token scores 0 with 0 tokens
    (and counts as greedy). Gradients flow when enabled: the fine-tuning loss (notebook 12,
    :func:`lmkit.finetune.forward_nll`) and DPO (notebook 17, :func:`lmkit.preference.sequence_logps`) train on
    ``logprob``; notebooks 15 and 16 score through :func:`pair_logprobs`. Raises
    :class:`lmkit.checks.CheckError` when a key is missing or ``labels`` and ``input_ids`` differ in shape.
    Equal to TRL's ``DPOTrainer`` log-probabilities (``tests/test_preference.py``) and to
    ``F.cross_entropy(..., ignore_index=-100, reduction="sum")`` negated (``tests/test_finetune.py``).
    """
    missing = [k for k in ("input_ids", "attention_mask", "labels") if k not in batch]
    if missing:
        checks.fail(f"the batch has no {', '.join(missing)}: pass the dict that lmkit.logprobs.pad returns")
    if batch["labels"].shape != batch["input_ids"].shape:
        checks.fail(f"labels have shape {tuple(batch['labels'].shape)} but input_ids {tuple(batch['input_ids'].shape)}"
                    ": pad them together")
    ids = batch["input_ids"]
    reach = int(batch["position_ids"].max()) + 1 if "position_ids" in batch and ids.numel() else ids.shape[1]
    if (limit := context_length(model)) is not None and reach > limit:
        checks.fail(f"the batch reaches {reach:,} positions but the model reads at most {limit:,}: shorten the "
                    f"texts (a max_length of at most {limit:,})")
    keep, targets = labelled_positions(batch["labels"])
    extra = {"position_ids": batch["position_ids"]} if "position_ids" in batch else {}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep,
                   **extra, **model_kwargs).logits
    logp = logits.float().log_softmax(dim=-1)
    scored = targets != IGNORE
    token_logp = logp.gather(2, targets.clamp(min=0).unsqueeze(2)).squeeze(2)
    missed = logp.detach().argmax(dim=-1) != targets
    if "segments" in batch:
        segment = batch["segments"][:, 1:][:, keep]
        n = int(batch["segments"].max()) + 1
    else:
        segment = torch.arange(len(targets), device=targets.device)[:, None].expand_as(targets)
        n = len(targets)
    segment = segment[scored]
    logprob = token_logp.new_zeros(n).index_add(0, segment, token_logp[scored])
    n_tokens = torch.zeros(n, dtype=torch.long, device=targets.device).index_add(
        0, segment, torch.ones_like(segment))
    n_missed = torch.zeros(n, dtype=torch.long, device=targets.device).index_add(0, segment, missed[scored].long())
    return Scores(logprob, n_tokens, n_missed == 0)


# ----------------------------------------------------------------------------------------------- many pairs
def common_prefix(seqs: list[list[int]]) -> int:
    """Length of the longest run of ids that every sequence starts with."""
    n = min(map(len, seqs))
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs):
            return i
    return n


def _packed_row(context: list[int], completions: list[list[int]], start: int) -> dict:
    """One row holding a context once and each completion after it (see :func:`pair_logprobs`).

    Each completion follows its own copy of the context's last token, at that token's position, so the standard
    shift (position ``t`` predicts ``t + 1``) scores it. ``blocks``: 0 for the shared context, ``k + 1`` for the
    ``k``-th copy + completion; ``segments``: ``k`` on the completion's tokens. Positions count from ``start``.
    """
    shared, last = context[:-1], context[-1]
    row = {"input_ids": list(shared), "labels": [IGNORE] * len(shared),
           "position_ids": list(range(start, start + len(shared))), "blocks": [0] * len(shared),
           "segments": [-1] * len(shared)}
    for k, comp in enumerate(completions):
        head = start + len(shared)
        row["input_ids"] += [last] + comp
        row["labels"] += [IGNORE] + comp
        row["position_ids"] += range(head, head + 1 + len(comp))
        row["blocks"] += [k + 1] * (1 + len(comp))
        row["segments"] += [-1] + [k] * len(comp)
    return row


def _block_mask(blocks: torch.Tensor, n_cached: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive ``[batch, 1, T, n_cached + T]`` mask of packed rows: causal, and a token sees the shared context
    (block 0), the cached prefix, and its own block, never another completion. Padding (-1, on the left) sees the
    cached prefix and padding, so that no softmax row is empty."""
    width = blocks.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    allowed = causal & ((blocks[:, None, :] == 0) | (blocks[:, None, :] == blocks[:, :, None]))
    if n_cached:
        allowed = torch.cat([allowed.new_ones(len(blocks), width, n_cached), allowed], dim=2)
    mask = torch.zeros(allowed.shape, dtype=dtype)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


@torch.no_grad()
def pair_logprobs(model, pairs: list[tuple[list[int], list[int]]], pad_with, *, batch_size: int = 8,
                  progress: bool | None = None) -> Scores:
    """:func:`completion_logprobs` of many ``(context_ids, completion_ids)`` pairs (from :func:`encode_completion`),
    without gradients: :class:`Scores` in the order of ``pairs``, each ``[len(pairs)]``, on the CPU.

    Work is shared two ways, and the scores are those of one plain forward pass per pair (the tests compare):

    - consecutive pairs with the same context ids (the choices of a question, notebook 16; the labels of a text,
      notebook 15) share one row: the context once, then each completion after a copy of the context's last
      token, with positions restarting where the context ends and an attention mask that hides the other
      completions (:func:`_packed_row`);
    - the ids that every context starts with (an instruction, few-shot examples) run once, and their KV cache is
      copied into each batch (notebook 08's cache).

    Rows are left-padded by :func:`pad` (``pad_with``: a pad id or the tokenizer), so the completions of every row
    end in the last columns and the LM head runs on few of them; explicit position ids make the padding
    invisible. Longest rows first, ``batch_size`` rows per forward pass. Each completion beyond the first costs one
    token (the copy of the context's last token) in exchange for the context running once. Raises
    :class:`lmkit.checks.CheckError` before any work for a bad ``batch_size``, no pairs, a context or completion with
    no ids, or a pair longer than the model's context (:func:`check_fits`; nothing is cut).
    """
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="rows scored per forward pass, such as 8")
    pairs = [(list(ctx), list(comp)) for ctx, comp in pairs]
    if not pairs:
        checks.fail("got no (context, completion) pairs: pass at least one")
    for i, (ctx, comp) in enumerate(pairs):
        if not ctx or not comp:
            checks.fail(f"pair {i} has a {'context' if not ctx else 'completion'} with no tokens: give it some text")
    check_fits(model, [len(ctx) + len(comp) for ctx, comp in pairs], "pair",
               "shorten its context (keep the end of it), so that context + completion fit")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    dtype = dtype if dtype.is_floating_point else torch.float32
    contexts = [ctx for ctx, _ in pairs]
    n_prefix = min(common_prefix(contexts), min(map(len, contexts)) - 1)  # each row keeps its last context token
    groups: list[list[int]] = []  # consecutive pairs with the same context
    for i, ctx in enumerate(contexts):
        if groups and contexts[groups[-1][0]] == ctx:
            groups[-1].append(i)
        else:
            groups.append([i])
    rows = [(g, _packed_row(contexts[g[0]][n_prefix:], [pairs[i][1] for i in g], n_prefix)) for g in groups]
    rows.sort(key=lambda r: -len(r[1]["input_ids"]))
    prefix_cache = None
    if n_prefix:
        out = model(torch.tensor([contexts[0][:n_prefix]], device=device), use_cache=True, logits_to_keep=1)
        prefix_cache = returned_cache(out)
    logprob, n_tokens = torch.zeros(len(pairs)), torch.zeros(len(pairs), dtype=torch.long)
    greedy = torch.zeros(len(pairs), dtype=torch.bool)
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc="scoring", disable=not show_progress(progress) or len(starts) < 2, leave=False):
        part = rows[start:start + batch_size]
        batch = pad([row for _, row in part], pad_with, side="left")  # rows end together: few logits to keep
        offsets = torch.tensor([0] + [len(g) for g, _ in part[:-1]]).cumsum(0)
        batch["segments"] = torch.where(batch["segments"] >= 0, batch["segments"] + offsets[:, None], -1)
        batch["attention_mask"] = _block_mask(batch.pop("blocks"), n_prefix, dtype)
        kwargs = {"use_cache": False}
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(part))
            kwargs = {**with_cache(model, cache), "use_cache": True}
        scores = completion_logprobs(model, {k: v.to(device) for k, v in batch.items()}, **kwargs)
        index = torch.tensor([i for g, _ in part for i in g])
        logprob[index], n_tokens[index], greedy[index] = (s.cpu() for s in scores)
    return Scores(logprob, n_tokens, greedy)
