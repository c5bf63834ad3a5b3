"""Batched greedy decoding for the safety measurements: many prompts at once, left-padded, each row's output the
one it would get alone (taught in the safety notebook)."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from lmkit import checks
from lmkit.decoding.settings import eos_ids, prompt_ids
from lmkit.env import show_progress
from lmkit.logprobs import check_fits, pad, pad_id

__all__ = ["greedy_ids", "chat_messages", "replies"]


@torch.inference_mode()
def greedy_ids(lm, prompts: list[list[int]], max_new_tokens: int, *, batch_size: int = 16,
               progress: bool | None = None, desc: str = "greedy") -> list[list[int]]:
    """The greedy continuation of each prompt, given as token ids: one id list per prompt, in order (taught in the
    safety notebook).

    ``prompts``: lists of token ids, each at least one id. Each continuation has ``max_new_tokens`` ids, or fewer
    when the model writes an end-of-text id (:func:`lmkit.decoding.settings.eos_ids`; that id is cut off).
    Prompts run ``batch_size`` at a time through ``model.generate(do_sample=False)``, longest first so that a batch
    holds similar lengths, left-padded by :func:`lmkit.logprobs.pad` with the attention mask; transformers then
    counts each row's positions from its first real token, so a row's ids are those of decoding it alone (up to
    float rounding: a tie between the top two logits can break the other way; the tests compare on a tiny model).

    Errors (one line, before any forward pass): no prompts, an empty prompt, ``max_new_tokens`` or ``batch_size``
    not an integer >= 1, a prompt plus its continuation longer than the model's context.
    """
    max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, fix="ask for at least one new token")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="prompts decoded at once, such as 16")
    rows = [list(map(int, p)) for p in prompts]
    if not rows:
        checks.fail("got no prompts: pass at least one list of token ids")
    empty = next((i for i, r in enumerate(rows) if not r), None)
    if empty is not None:
        checks.fail(f"prompt {empty} has no token ids: give every prompt at least one token")
    check_fits(lm.model, [len(r) + max_new_tokens for r in rows], "prompt",
               "shorten the prompt or ask for fewer new tokens")
    tok, stops = lm.tokenizer, eos_ids(lm)
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    out: list[list[int]] = [[] for _ in rows]
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc=desc, disable=not show_progress(progress) or len(starts) < 2, leave=False):
        part = order[start:start + batch_size]
        batch = {k: v.to(lm.device) for k, v in pad([{"input_ids": rows[i]} for i in part], tok, side="left").items()}
        gen = lm.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                top_p=None, top_k=None, pad_token_id=pad_id(tok))
        for i, row in zip(part, gen[:, batch["input_ids"].shape[1]:].tolist()):
            end = next((j for j, t in enumerate(row) if t in stops), len(row))
            out[i] = row[:end]
    return out


def chat_messages(prompt, system: str | None = None) -> list[dict]:
    """``prompt`` (a user turn as a string, or a list of ``{"role", "content"}`` messages) as chat messages, with
    ``system`` as the system turn when given (it replaces the template's default one) (taught in the safety
    notebook)."""
    if system is not None:
        checks.text("system", system, fix="pass a system prompt, or None for the template's default")
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system is not None:
        messages = [{"role": "system", "content": system}] + [m for m in messages if m.get("role") != "system"]
    return messages


def replies(lm, prompts, *, system: str | None = None, max_new_tokens: int = 48, batch_size: int = 16,
            progress: bool | None = None) -> list[str]:
    """The model's greedy reply to each prompt through its chat template, decoded and stripped, batched by
    :func:`greedy_ids` (taught in the safety notebook).

    ``prompts``: a list of user turns (strings) or of message lists (``[{"role": ..., "content": ...}]``);
    ``system``: a system prompt for every one (None: the template's default, or the one a message list carries).
    Each prompt is encoded by :func:`lmkit.decoding.settings.prompt_ids` with ``chat=True``, so a message that
    writes a special token as text is refused there. Errors: an empty list, a prompt that is not a string or a
    message list, the checks of :func:`greedy_ids`.
    """
    if isinstance(prompts, (str, dict)) or not isinstance(prompts, (list, tuple)) or not prompts:
        checks.fail(f"prompts={checks.show(prompts, 60)} must be a non-empty list of user turns (strings) or of "
                    "message lists: wrap one prompt in a list")
    ids = [prompt_ids(lm, chat_messages(p, system), chat=True)[0].tolist() for p in prompts]
    out = greedy_ids(lm, ids, max_new_tokens, batch_size=batch_size, progress=progress, desc="replies")
    return [lm.tokenizer.decode(r, skip_special_tokens=True).strip() for r in out]
