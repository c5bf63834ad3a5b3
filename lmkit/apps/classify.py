"""Sentiment classification by label likelihood: one forward pass scores every label word; prompts, calibration (notebook 09)."""
from __future__ import annotations

from dataclasses import dataclass, field
import copy
import string

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lmkit.apps.data import LABELS, sentiment_data
from lmkit.env import show_progress
from lmkit.kvcache import returned_cache, with_cache

__all__ = ['continuation_logprobs', 'SentimentPrompt', 'INSTRUCTION', 'standard_prompts', 'CONTENT_FREE', 'label_scores', 'label_prior', 'classify']

# ----------------------------------------------------------------------------------------------- likelihood scoring
def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


def _common_prefix(seqs: list[list[int]]) -> int:
    """Length of the longest run of ids that every sequence starts with."""
    n = min(map(len, seqs))
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs):
            return i
    return n


@torch.no_grad()
def _rows_logprobs(lm, prefix_cache, n_prefix: int, seqs: list[list[int]], keep: list[int]) -> torch.Tensor:
    """Log-softmax at positions ``keep`` of each row, ``[B, len(keep), vocab]``; rows continue a cached prefix.

    Rows are padded on the right: with a causal mask a real token never sees the padding after it, and positions
    are simply ``n_prefix + 0, 1, 2, ...`` for every row (with left padding they would have to be shifted per row).
    The prefix's keys and values are computed once and copied for each batch (the KV cache of notebook 05).
    """
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    width = max(map(len, seqs))
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=lm.device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=lm.device)
    positions = torch.arange(n_prefix, n_prefix + width, device=lm.device).expand(len(seqs), width)
    kwargs = {"use_cache": False}
    if n_prefix:
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(len(seqs))
        kwargs = {**with_cache(lm.model, cache), "use_cache": True}
        mask = torch.cat([torch.ones(len(seqs), n_prefix, dtype=mask.dtype, device=lm.device), mask], dim=1)
    logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                      logits_to_keep=torch.tensor(keep, device=lm.device), **kwargs).logits  # the head only where needed
    return F.log_softmax(logits.float(), dim=-1).cpu()


def continuation_logprobs(lm, contexts: list[str], continuations: list[str], *, batch_size: int = 8,
                          progress: bool | None = None) -> torch.Tensor:
    """``log P(continuation | context)``, summed over the continuation's tokens, ``[len(contexts), len(continuations)]``.

    Context and continuation are tokenized separately and joined as ids, so each label is scored as the same
    tokens whatever precedes it. When every continuation is one token, one forward pass per context gives all of
    them (the next-token distribution at the last position); otherwise each (context, continuation) pair is a row
    and the log-probabilities of its last tokens are added up. The ids that all contexts share at the start (an
    instruction, few-shot examples, a system prompt) go through the model once (notebook 09).
    """
    if isinstance(contexts, str) or isinstance(continuations, str):
        raise ValueError("contexts and continuations must be lists of strings: wrap a single string in [...]")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer (rows scored per forward pass)")
    contexts, continuations = list(contexts), list(continuations)
    if not contexts or not continuations:
        raise ValueError(f"got {len(contexts)} context(s) and {len(continuations)} continuation(s): pass at least one "
                         "of each")
    tok = lm.tokenizer
    ctx_ids = [_ids(tok, c) for c in contexts]
    cont_ids = [_ids(tok, c) for c in continuations]
    for c, ids in zip(contexts, ctx_ids):
        if not ids:
            raise ValueError(f"context {c!r} has no tokens: the first label token needs something to follow")
    for c, ids in zip(continuations, cont_ids):
        if not ids:
            raise ValueError(f"continuation {c!r} has no tokens: use a non-empty label word")
    # every row keeps at least its last context token: the logits there predict the first label token
    n_prefix = min(_common_prefix(ctx_ids), min(map(len, ctx_ids)) - 1)
    prefix_cache = None
    if n_prefix:
        with torch.no_grad():
            out = lm.model(torch.tensor([ctx_ids[0][:n_prefix]], device=lm.device), use_cache=True)
            prefix_cache = returned_cache(out)
    single = all(len(ids) == 1 for ids in cont_ids)
    if single:
        firsts = torch.tensor([ids[0] for ids in cont_ids])
        rows = [((i, None), ctx[n_prefix:]) for i, ctx in enumerate(ctx_ids)]
    else:
        rows = [((i, j), ctx[n_prefix:] + cont) for i, ctx in enumerate(ctx_ids) for j, cont in enumerate(cont_ids)]
    rows.sort(key=lambda r: -len(r[1]))  # similar lengths together: little padding inside a batch
    out = torch.empty(len(contexts), len(continuations))
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc="scoring", disable=not show_progress(progress) or len(starts) < 2, leave=False):
        batch = rows[start:start + batch_size]
        # the logits at position t predict token t + 1: for a row of length L ending with an m-token continuation,
        # positions L-m-1 .. L-2 predict it (m = 0 in the single-token case: only position L-1 is needed)
        spans = [range(len(seq) - 1, len(seq)) if single else range(len(seq) - len(cont_ids[j]) - 1, len(seq) - 1)
                 for (_, j), seq in batch]
        keep = sorted(set().union(*spans))
        column = {pos: c for c, pos in enumerate(keep)}
        logp = _rows_logprobs(lm, prefix_cache, n_prefix, [seq for _, seq in batch], keep)
        for ((i, j), _), span, row in zip(batch, spans, logp):
            cols = [column[pos] for pos in span]
            if single:
                out[i] = row[cols[0], firsts]
            else:
                out[i, j] = row[cols].gather(1, torch.tensor(cont_ids[j])[:, None]).sum()
    return out


# ----------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class SentimentPrompt:
    """How a text becomes the context before the label word (notebook 09).

    - ``template``: the text around ``{text}``; for few-shot plain prompts it follows the examples.
    - ``labels``: label -> the word whose likelihood is scored (mind the leading space in plain text: " positive"
      is one token, "positive" another).
    - ``chat``: put ``instruction`` + template in a user turn of the chat template; the label is then the first
      word of the assistant's reply.
    - ``shots``: ``(text, label)`` examples, shown before the text (plain) or as earlier chat turns (chat).
    """

    name: str
    template: str
    labels: dict = field(default_factory=lambda: {lab: " " + lab for lab in LABELS})
    instruction: str = ""
    chat: bool = False
    shots: tuple = ()

    def context(self, lm, text: str) -> str:
        if "{text}" not in self.template:
            raise ValueError(f"prompt {self.name!r}: template {self.template!r} has no {{text}} slot; add one")
        if not self.chat:
            examples = "".join(self.template.format(text=t) + self.labels[lab] + "\n\n" for t, lab in self.shots)
            return self.instruction + examples + self.template.format(text=text)
        if getattr(lm.tokenizer, "chat_template", None) is None:
            raise ValueError(f"prompt {self.name!r} uses the chat template, but {lm.name!r} has none: "
                             "use chat=False or an instruct model")
        messages = []
        for i, (t, lab) in enumerate(self.shots):
            head = self.instruction if i == 0 else ""
            messages += [{"role": "user", "content": head + self.template.format(text=t)},
                         {"role": "assistant", "content": self.labels[lab]}]
        head = "" if self.shots else self.instruction
        messages.append({"role": "user", "content": head + self.template.format(text=text)})
        return lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


INSTRUCTION = "Classify the sentiment of the review as positive, negative or neutral.\n\n"


def standard_prompts(shots=None) -> dict[str, SentimentPrompt]:
    """The five prompts notebook 09 compares: bare, instruction, chat, few-shot, few-shot chat.

    ``shots``: the few-shot examples as ``(text, label)`` pairs, by default the set's 9 ``"shots"`` rows
    interleaved by label (positive, negative, neutral, positive, ...) so that no label comes last by default.
    """
    if shots is None:
        rows = sentiment_data("shots")
        by = {lab: [r["text"] for r in rows if r["label"] == lab] for lab in LABELS}
        shots = tuple((by[lab][i], lab) for i in range(min(map(len, by.values()))) for lab in LABELS)
    chat_labels = {lab: lab for lab in LABELS}
    return {
        "bare": SentimentPrompt("bare", "{text}\nSentiment:"),
        "instruction": SentimentPrompt("instruction", "Review: {text}\nSentiment:", instruction=INSTRUCTION),
        "chat": SentimentPrompt("chat", "Review: {text}", labels=chat_labels, chat=True,
                                instruction=INSTRUCTION.replace("neutral.", "neutral. Answer with one word.")),
        "few-shot": SentimentPrompt("few-shot", "Review: {text}\nSentiment:", instruction=INSTRUCTION,
                                    shots=tuple(shots)),
        "few-shot chat": SentimentPrompt("few-shot chat", "Review: {text}", labels=chat_labels, chat=True,
                                         instruction=INSTRUCTION.replace("neutral.", "neutral. Answer with one word."),
                                         shots=tuple(shots)),
    }


CONTENT_FREE = ("N/A", "", "[MASK]")


def label_scores(lm, prompt: SentimentPrompt, texts, *, batch_size: int = 8,
                 progress: bool | None = None) -> torch.Tensor:
    """Log-likelihood of each label word after ``prompt`` for each text, ``[len(texts), len(prompt.labels)]``."""
    if isinstance(texts, str):
        texts = [texts]
    contexts = [prompt.context(lm, t) for t in texts]
    return continuation_logprobs(lm, contexts, list(prompt.labels.values()), batch_size=batch_size,
                                 progress=progress)


def label_prior(lm, prompt: SentimentPrompt, content_free=CONTENT_FREE) -> torch.Tensor:
    """The prompt's own preference among labels, ``[n_labels]`` log-probabilities (notebook 09).

    The label distribution for texts that carry no sentiment at all ("N/A", "", "[MASK]"), averaged: the bias of
    the prompt itself (contextual calibration, Zhao et al. 2021, "Calibrate before use").
    """
    probs = label_scores(lm, prompt, list(content_free), progress=False).softmax(-1).mean(0)
    return probs.log()


def classify(lm, prompt: SentimentPrompt, texts, *, calibrate: bool = False, batch_size: int = 8,
             progress: bool | None = None) -> list[str]:
    """The most likely label for each text (notebook 09).

    ``calibrate=True`` first divides each label's probability by the prompt's :func:`label_prior`, so a prompt
    that leans towards one label no longer wins by its lean alone.
    """
    scores = label_scores(lm, prompt, texts, batch_size=batch_size, progress=progress).log_softmax(-1)
    if calibrate:
        scores = scores - label_prior(lm, prompt)
    names = list(prompt.labels)
    return [names[i] for i in scores.argmax(-1).tolist()]
