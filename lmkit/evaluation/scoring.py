"""Multiple choice scored by log-likelihood (acc, acc_norm) and by a generated answer letter (notebook 14)."""
from __future__ import annotations

import re

import numpy as np
import torch
from tqdm.auto import tqdm

from .items import LETTERS, NORMALIZE, ItemError, check_items, render
from .stats import accuracy_interval

from lmkit.env import show_progress

__all__ = ["encode_pair", "loglikelihoods", "multiple_choice", "by_category", "letter_prompt", "parse_letter",
           "letter_choice"]

def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of ``context`` and of ``continuation`` after it, split as lm-evaluation-harness splits them.

    Trailing spaces of the context move to the continuation; ``context + continuation`` is tokenized as one text
    and the continuation's ids are what follows the context's own ids (``HFLM._encode_pair``). An empty context
    becomes the BOS token (or EOS when there is none), as the harness's ``prefix_token_id``.
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    if not context:
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [prefix], tokenizer(continuation, add_special_tokens=False).input_ids
    whole = tokenizer(context + continuation, add_special_tokens=False).input_ids
    ctx = tokenizer(context, add_special_tokens=False).input_ids
    return ctx, whole[len(ctx):]


def _packed_row(ctx: list[int], conts: list[list[int]]) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """One row holding a context once and every continuation after it: ids, position ids, and per continuation
    its (start, length) in the row. Each continuation restarts its positions where the context ends."""
    ids, pos, spans = list(ctx), list(range(len(ctx))), []
    for cont in conts:
        spans.append((len(ids), len(cont)))
        ids += cont
        pos += range(len(ctx), len(ctx) + len(cont))
    return ids, pos, spans


def _packed_mask(n_ctx: int, spans, width: int, dtype) -> torch.Tensor:
    """Additive ``[width, width]`` mask: the context is causal; each continuation sees the context and its own
    earlier tokens, never another continuation; padding sees only itself (so that no softmax row is empty)."""
    allowed = torch.zeros(width, width, dtype=torch.bool)
    allowed[:n_ctx, :n_ctx] = torch.ones(n_ctx, n_ctx, dtype=torch.bool).tril()
    for start, m in spans:
        allowed[start:start + m, :n_ctx] = True
        allowed[start:start + m, start:start + m] = torch.ones(m, m, dtype=torch.bool).tril()
    end = spans[-1][0] + spans[-1][1] if spans else n_ctx
    allowed[range(end, width), range(end, width)] = True
    mask = torch.zeros(width, width, dtype=dtype)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)


@torch.no_grad()
def loglikelihoods(lm, pairs, *, batch_size: int = 8, progress: bool | None = None) -> list[tuple[float, int, bool]]:
    """``log P(continuation | context)`` for each ``(context, continuation)`` pair, with its token count and
    whether greedy decoding would produce it: a list of ``(logprob, n_tokens, is_greedy)``, nats (notebook 14).

    Ids as :func:`encode_pair` splits them (the harness's split). Consecutive pairs with the same context (the
    choices of one question) share one row: the context once, then every continuation, each with its own position
    ids (restarting where the context ends) and an attention mask that hides the other continuations from it.
    That computes exactly ``log P(continuation | context)`` for each, with the context's tokens run once instead
    of once per choice. Rows are padded on the right and run ``batch_size`` at a time, longest first. The logits at
    position t predict token t + 1: a continuation's first token is predicted at the context's last position.
    """
    encoded = [encode_pair(lm.tokenizer, ctx, cont) for ctx, cont in pairs]
    for (ctx, cont), (_, ids) in zip(pairs, encoded):
        if not ids:
            raise ItemError(f"continuation {cont!r} after {ctx[-30:]!r} has no tokens: give each choice some text")
    groups: list[list[int]] = []  # indices of consecutive pairs that share their context ids
    for i, (ctx, _) in enumerate(encoded):
        if groups and encoded[groups[-1][0]][0] == ctx:
            groups[-1].append(i)
        else:
            groups.append([i])
    rows = [(g, *_packed_row(encoded[g[0]][0], [encoded[i][1] for i in g])) for g in groups]
    rows.sort(key=lambda r: -len(r[1]))
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    dtype = next(lm.model.parameters()).dtype
    dtype = dtype if dtype.is_floating_point else torch.float32
    out: list = [None] * len(encoded)
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc="scoring", disable=not show_progress(progress), leave=False):
        batch = rows[start:start + batch_size]
        width = max(len(r[1]) for r in batch)
        ids = torch.tensor([r[1] + [pad] * (width - len(r[1])) for r in batch], device=lm.device)
        pos = torch.tensor([r[2] + list(range(len(r[2]), len(r[2]) + width - len(r[2]))) for r in batch],
                           device=lm.device)
        mask = torch.stack([_packed_mask(len(encoded[g[0]][0]), spans, width, dtype)
                            for g, _, _, spans in batch])[:, None].to(lm.device)
        # positions whose logits are needed: the context's last, and every continuation token but the last
        wanted = [[len(encoded[g[0]][0]) - 1] + [p for s, m in spans for p in range(s, s + m - 1)]
                  for g, _, _, spans in batch]
        keep = sorted(set().union(*wanted))
        column = {p: c for c, p in enumerate(keep)}
        logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                          logits_to_keep=torch.tensor(keep, device=lm.device)).logits.float()
        for row, (g, _, _, spans) in enumerate(batch):
            last_ctx = len(encoded[g[0]][0]) - 1
            for i, (s, m) in zip(g, spans):
                preds = [column[last_ctx]] + [column[p] for p in range(s, s + m - 1)]
                target = torch.tensor(encoded[i][1], device=logits.device)
                lp = logits[row, preds].log_softmax(-1)
                out[i] = (lp.gather(1, target[:, None]).sum().item(), m, bool((lp.argmax(-1) == target).all()))
    return out


def multiple_choice(lm, items, *, normalize: str = "chars", template: str | None = None, batch_size: int = 16,
                    progress: bool | None = None) -> dict:
    """Score multiple-choice ``items`` by log-likelihood (notebook 14).

    Each choice, exactly as written (items carry their own leading space), is scored as the continuation of the
    context ``render(template, item)`` (the question itself when ``template`` is None).

    - ``acc``: the choice with the largest summed log-probability is right;
    - ``acc_norm``: the same after dividing each by the choice's length: ``"chars"`` (characters, as the harness's
      ``acc_norm``), ``"tokens"`` (the continuation's token count) or ``"none"`` (then ``acc_norm == acc``).

    Returns a dict: ``acc``, ``acc_norm``, their 95% Wilson intervals ``acc_ci``/``acc_norm_ci``, ``n``, and per
    item ``loglikelihoods`` (list of floats per item, nats), ``n_tokens``, ``pred``, ``pred_norm``, ``correct``,
    ``correct_norm`` (bools), ``probs`` (softmax of the log-likelihoods over the choices), ``answer``, ``category``.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize={normalize!r}: use one of {', '.join(map(repr, NORMALIZE))}")
    items = check_items(items)
    contexts = [render(template, it) for it in items]
    pairs = [(ctx, c) for ctx, it in zip(contexts, items) for c in it["choices"]]
    scored = iter(loglikelihoods(lm, pairs, batch_size=batch_size, progress=progress))
    lls, ntoks = [], []
    for it in items:
        rows = [next(scored) for _ in it["choices"]]
        lls.append([r[0] for r in rows])
        ntoks.append([r[1] for r in rows])
    lengths = {"none": lambda it, n: [1.0] * len(n), "chars": lambda it, n: [float(len(c)) for c in it["choices"]],
               "tokens": lambda it, n: [float(k) for k in n]}[normalize]
    pred = [int(np.argmax(ll)) for ll in lls]
    pred_norm = [int(np.argmax(np.array(ll) / lengths(it, n))) for ll, it, n in zip(lls, items, ntoks)]
    answers = [it["answer"] for it in items]
    correct = [p == a for p, a in zip(pred, answers)]
    correct_norm = [p == a for p, a in zip(pred_norm, answers)]
    probs = [torch.tensor(ll).softmax(-1).tolist() for ll in lls]
    n = len(items)
    return {"acc": sum(correct) / n, "acc_norm": sum(correct_norm) / n,
            "acc_ci": accuracy_interval(sum(correct), n), "acc_norm_ci": accuracy_interval(sum(correct_norm), n),
            "n": n, "normalize": normalize, "loglikelihoods": lls, "n_tokens": ntoks, "pred": pred,
            "pred_norm": pred_norm, "correct": correct, "correct_norm": correct_norm, "probs": probs,
            "answer": answers, "category": [it.get("category", "") for it in items]}


def by_category(result: dict, key: str = "correct") -> dict:
    """Accuracy per category from a result of :func:`multiple_choice` or :func:`letter_choice`:
    ``{category: (acc, (low, high), n)}`` with 95% Wilson intervals."""
    out = {}
    for cat in dict.fromkeys(result["category"]):
        hits = [c for c, k in zip(result[key], result["category"]) if k == cat]
        out[cat] = (sum(hits) / len(hits), accuracy_interval(sum(hits), len(hits)), len(hits))
    return out


# ----------------------------------------------------------------------------------------------- generated letter
def letter_prompt(item: dict) -> str:
    """The question followed by its lettered choices and an instruction to answer with the letter only."""
    lines = [f"{LETTERS[k]}. {c.strip()}" for k, c in enumerate(item["choices"])]
    letters = ", ".join(LETTERS[:len(item["choices"])])
    return f"{item['question']}\n" + "\n".join(lines) + f"\nAnswer with one letter ({letters})."


def parse_letter(reply: str, n_choices: int) -> int:
    """Index of the first letter among the first ``n_choices`` that stands as a word of its own in ``reply``
    (``"B"``, ``"B."``, ``"(B) Paris"``, ``"The answer is B"``), or -1 when there is none."""
    m = re.search(rf"\b([{LETTERS[:n_choices]}])\b", reply)
    return LETTERS.index(m.group(1)) if m else -1


@torch.no_grad()
def letter_choice(lm, items, *, chat: bool = True, max_new_tokens: int = 4, batch_size: int = 16,
                  progress: bool | None = None) -> dict:
    """Let the model generate the answer letter (greedy) after :func:`letter_prompt`; the first letter A-H it writes
    (as a word of its own) is its choice, anything else counts as wrong (notebook 14).

    Returns ``acc``, ``acc_ci`` (95% Wilson), ``n``, ``invalid`` (share of replies with no letter), and per item
    ``reply``, ``pred`` (index or -1), ``correct``, ``answer``, ``category``.
    """
    items = check_items(items)
    tok = lm.tokenizer
    texts = [letter_prompt(it) for it in items]
    if chat:
        texts = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
                 for t in texts]
    else:
        texts = [t + "\nAnswer:" for t in texts]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    replies = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="generating", disable=not show_progress(progress), leave=False):
        rows = [tok(t, add_special_tokens=False).input_ids for t in texts[start:start + batch_size]]
        width = max(map(len, rows))
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=lm.device)  # left padding
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=lm.device)
        out = lm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=pad, temperature=None, top_p=None, top_k=None)
        replies += tok.batch_decode(out[:, width:], skip_special_tokens=True)
    preds = [parse_letter(reply, len(it["choices"])) for reply, it in zip(replies, items)]
    correct = [p == it["answer"] for p, it in zip(preds, items)]
    n = len(items)
    return {"acc": sum(correct) / n, "acc_ci": accuracy_interval(sum(correct), n), "n": n,
            "invalid": sum(p < 0 for p in preds) / n, "reply": replies, "pred": preds, "correct": correct,
            "answer": [it["answer"] for it in items], "category": [it.get("category", "") for it in items]}
