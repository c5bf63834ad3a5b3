"""The task's own metric: would greedy decoding write the expected answer, and the greedy answers themselves
(notebook 12)."""
from __future__ import annotations

import torch

from lmkit.finetune.data import collate, encode_example, format_prompt
from lmkit.finetune.loss import shared_prefix_logprobs
from lmkit.logprobs import pad, pad_id

__all__ = ["greedy_exact_match", "greedy_answers"]


@torch.no_grad()
def greedy_exact_match(lm, records: list[dict], *, batch_size: int = 16, max_length: int = 256) -> list[bool]:
    """For each record: would greedy decoding write exactly ``completion`` then stop? One forward pass each (notebook 12).

    Greedy decoding emits the answer iff, fed the answer so far, the arg-max at every answer position (and at the
    end-of-turn after it) is the answer's next token: so teacher forcing checks it without generating. That is the
    ``greedy`` flag of :func:`lmkit.logprobs.completion_logprobs` (the harness's ``is_greedy``), one per record, with
    the prompt prefix that every record shares computed once (:func:`lmkit.finetune.shared_prefix_logprobs`).
    (A different tokenization of the same string would count as wrong; greedy decoding follows the tokenizer's own.)
    """
    model, tok = lm.model, lm.tokenizer
    model.eval()
    hits = []
    for i in range(0, len(records), batch_size):
        ex = [encode_example(tok, r["prompt"], r["completion"], max_length) for r in records[i:i + batch_size]]
        batch = {k: v.to(lm.device) for k, v in collate(ex, pad_id(tok)).items()}
        hits.extend(shared_prefix_logprobs(model, batch).greedy.tolist())
    return hits


@torch.no_grad()
def greedy_answers(lm, prompts: list[str], *, max_new_tokens: int = 16, batch_size: int = 16) -> list[str]:
    """Greedy answers to each prompt in its chat template, batched with left padding (notebook 12).

    (``lmkit.apps.answer_question`` is another thing: one question, optionally with a passage to read.)
    """
    tok, out = lm.tokenizer, []
    for i in range(0, len(prompts), batch_size):
        rows = [{"input_ids": tok(format_prompt(tok, p), add_special_tokens=False).input_ids}
                for p in prompts[i:i + batch_size]]
        enc = {k: v.to(lm.device) for k, v in pad(rows, tok, side="left").items()}  # every row ends at the edge
        gen = lm.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id(tok))
        out.extend(t.strip() for t in tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return out
