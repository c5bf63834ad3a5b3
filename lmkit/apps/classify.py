"""Sentiment classification by label likelihood: one forward pass scores every label word; prompts, calibration (notebook 15)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lmkit import checks
from lmkit.apps.data import LABELS, sentiment_data
from lmkit.logprobs import common_prefix, encode_completion, pair_logprobs

__all__ = ['continuation_logprobs', 'SentimentPrompt', 'INSTRUCTION', 'standard_prompts', 'CONTENT_FREE', 'label_scores', 'label_prior', 'classify']

# ----------------------------------------------------------------------------------------------- likelihood scoring
_common_prefix = common_prefix  # the name the tests use


def continuation_logprobs(lm, contexts: list[str], continuations: list[str], *, batch_size: int = 8,
                          progress: bool | None = None) -> torch.Tensor:
    """``log P(continuation | context)`` in nats, summed over the continuation's tokens, for every context and every
    continuation: a float32 tensor ``[len(contexts), len(continuations)]`` (notebook 15).

    Context and continuation are tokenized apart and joined as ids (:func:`lmkit.logprobs.encode_completion` with
    ``rule="apart"``), so each label is scored as the same tokens whatever precedes it. Scored by
    :func:`lmkit.logprobs.pair_logprobs`: the labels of one context share one row (the context runs once; for
    one-token labels that is the next-token distribution at its last position), and the ids that all contexts
    share at the start (an instruction, few-shot examples, a system prompt) go through the model once, as a KV
    cache. ``batch_size``: contexts per forward pass.

    Raises ValueError before any work for a single string instead of a list, an empty list, a bad ``batch_size``,
    or a context or continuation with no tokens.
    """
    if isinstance(contexts, str) or isinstance(continuations, str):
        checks.fail("contexts and continuations must be lists of strings: wrap a single string in [...]")
    batch_size = checks.integer("batch_size", batch_size, low=1, must="a positive integer",
                                fix="rows scored per forward pass, such as 8")
    contexts, continuations = list(contexts), list(continuations)
    if not contexts or not continuations:
        checks.fail(f"got {len(contexts)} context(s) and {len(continuations)} continuation(s): pass at least one "
                    "of each")
    pairs = [encode_completion(lm.tokenizer, c, k, rule="apart") for c in contexts for k in continuations]
    for i, c in enumerate(contexts):
        if not pairs[i * len(continuations)][0]:
            checks.fail(f"context {c!r} has no tokens: the first label token needs something to follow")
    for j, k in enumerate(continuations):
        if not pairs[j][1]:
            checks.fail(f"continuation {k!r} has no tokens: use a non-empty label word")
    scores = pair_logprobs(lm.model, pairs, lm.tokenizer, batch_size=batch_size, progress=progress)
    return scores.logprob.view(len(contexts), len(continuations))


# ----------------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class SentimentPrompt:
    """How a text becomes the context before the label word (notebook 15).

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
    """The five prompts notebook 15 compares: bare, instruction, chat, few-shot, few-shot chat.

    ``shots``: the few-shot examples as ``(text, label)`` pairs, by default the set's 9 ``"shots"`` rows
    interleaved by label (positive, negative, neutral, positive, ...), so no label's examples come in one block;
    *neutral* comes last (notebook 15 measures other orders).
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
    """The prompt's own preference among labels, ``[n_labels]`` log-probabilities (notebook 15).

    The label distribution for texts that carry no sentiment at all ("N/A", "", "[MASK]"), averaged: the bias of
    the prompt itself (contextual calibration, Zhao et al. 2021, "Calibrate before use").
    """
    probs = label_scores(lm, prompt, list(content_free), progress=False).softmax(-1).mean(0)
    return probs.log()


def classify(lm, prompt: SentimentPrompt, texts, *, calibrate: bool = False, batch_size: int = 8,
             progress: bool | None = None) -> list[str]:
    """The most likely label for each text (notebook 15).

    ``calibrate=True`` first divides each label's probability by the prompt's :func:`label_prior`, so a prompt
    that leans towards one label no longer wins by its lean alone.
    """
    scores = label_scores(lm, prompt, texts, batch_size=batch_size, progress=progress).log_softmax(-1)
    if calibrate:
        scores = scores - label_prior(lm, prompt)
    names = list(prompt.labels)
    return [names[i] for i in scores.argmax(-1).tolist()]
