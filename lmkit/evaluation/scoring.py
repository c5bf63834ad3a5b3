"""Multiple choice scored by log-likelihood (acc, acc_norm) and by a generated answer letter (notebook 16)."""
from __future__ import annotations

import re

import numpy as np
import torch
from tqdm.auto import tqdm

from .items import LETTERS, NORMALIZE, ItemError, check_items, render
from .stats import accuracy_interval

from lmkit import checks
from lmkit.env import show_progress
from lmkit.logprobs import context_length, encode_completion, pad, pad_id, pair_logprobs, special_tokens_in

__all__ = ["encode_pair", "loglikelihoods", "multiple_choice", "by_category", "letter_prompt", "parse_letter",
           "letter_tokens", "letter_logprobs", "letter_choice"]

def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of ``context`` and of ``continuation`` after it, split as lm-evaluation-harness splits them
    (notebook 16): :func:`lmkit.logprobs.encode_completion` with ``rule="harness"``.

    Trailing spaces of the context move to the continuation; ``context + continuation`` is tokenized as one text
    and the continuation's ids are what follows the context's own ids (``HFLM._encode_pair``). An empty context
    becomes the BOS token (or EOS when there is none), as the harness's ``prefix_token_id``.
    """
    return encode_completion(tokenizer, context, continuation, rule="harness")


def loglikelihoods(lm, pairs, *, batch_size: int = 8, progress: bool | None = None,
                   rule: str = "harness") -> list[tuple[float, int, bool]]:
    """``log P(continuation | context)`` for each ``(context, continuation)`` pair, with its token count and
    whether greedy decoding would produce it: a list of ``(logprob, n_tokens, is_greedy)``, nats (notebook 16).

    Ids as :func:`encode_pair` splits them (the harness's split; ``rule="apart"``: context and continuation
    tokenized on their own, the context keeping its special tokens, as for a chat prompt), scored by :func:`lmkit.logprobs.pair_logprobs`:
    consecutive pairs with the same context (the choices of one question) share one row, the context once and
    then every continuation, each with its own position ids (restarting where the context ends) and an attention
    mask that hides the other continuations from it. That computes exactly ``log P(continuation | context)`` for
    each, with the context's tokens run once instead of once per choice. Rows are padded on the left (so that the
    continuations end together) and run ``batch_size`` at a time, longest first. The logits at position t predict
    token t + 1.

    Texts are read as text: ``"<|im_end|>"`` inside an item is scored as those characters, not as the special token.
    Nothing is cut: a pair longer than the model's context (lm-evaluation-harness would drop the start of the
    context) is refused.

    Raises :class:`ItemError` (a ValueError) before any work when ``pairs`` is not a list of two-string tuples or
    a continuation has no tokens, and :class:`lmkit.checks.CheckError` when a pair is longer than the model's
    context.
    """
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="rows scored per forward pass, such as 8")
    if progress is not None:
        checks.boolean("progress", progress, fix="pass True, False or None (lmkit.env.PROGRESS)")
    ok = isinstance(pairs, (list, tuple)) and len(pairs) > 0
    for i, pair in enumerate(pairs if ok else []):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            checks.fail(f"pairs[{i}]={checks.show(pair, 60)} is not a (context, continuation) pair of strings: pass "
                        "e.g. [('The capital of France is', ' Paris')]", ItemError)
    if not ok:
        checks.fail(f"pairs={checks.show(pairs, 60)} must be a non-empty list of (context, continuation) pairs: pass "
                    "e.g. [('The capital of France is', ' Paris')]", ItemError)
    checks.one_of("rule", rule, ("harness", "apart"))
    encoded = [encode_completion(lm.tokenizer, ctx, cont, rule=rule) for ctx, cont in pairs]
    for (ctx, cont), (_, ids) in zip(pairs, encoded):
        if not ids:
            raise ItemError(f"continuation {cont!r} after {ctx[-30:]!r} has no tokens: give each choice some text")
    scores = pair_logprobs(lm.model, encoded, lm.tokenizer, batch_size=batch_size, progress=progress)
    return list(zip(scores.logprob.tolist(), scores.n_tokens.tolist(), scores.greedy.tolist()))


def multiple_choice(lm, items, *, normalize: str = "chars", template: str | None = None, batch_size: int = 16,
                    progress: bool | None = None, chat: bool = False) -> dict:
    """Score multiple-choice ``items`` by log-likelihood (notebook 16).

    Each choice, exactly as written (items carry their own leading space), is scored as the continuation of the
    context ``render(template, item)`` (the question itself when ``template`` is None). With ``chat=True`` that
    context is the user's turn of the chat template, followed by the assistant's turn, and each choice is scored
    without its leading space as the start of the assistant's reply (context and choice tokenized apart, as at
    generation time); an item that writes a special token as text is then refused (:class:`ItemError`).

    - ``acc``: the choice with the largest summed log-probability is right;
    - ``acc_norm``: the same after dividing each by the choice's length: ``"chars"`` (characters, as the harness's
      ``acc_norm``), ``"tokens"`` (the continuation's token count) or ``"none"`` (then ``acc_norm == acc``).

    Returns a dict: ``acc``, ``acc_norm``, their 95% Wilson intervals ``acc_ci``/``acc_norm_ci``, ``n``, and per
    item ``loglikelihoods`` (list of floats per item, nats), ``n_tokens``, ``pred``, ``pred_norm``, ``correct``,
    ``correct_norm`` (bools), ``probs`` (softmax of the log-likelihoods over the choices), ``answer``, ``category``.
    """
    checks.one_of("normalize", normalize, NORMALIZE)
    checks.boolean("chat", chat)
    items = check_items(items)
    contexts = [render(template, it) for it in items]
    if chat:
        for i, it in enumerate(items):
            if found := special_tokens_in(lm.tokenizer, " ".join([it["question"], *it["choices"]])):
                checks.fail(f"item {i} writes the special token {found[0]!r} as text, which the chat template would "
                            "make a control token: remove it, or pass chat=False", ItemError)
        contexts = [lm.tokenizer.apply_chat_template([{"role": "user", "content": c}], tokenize=False,
                                                     add_generation_prompt=True) for c in contexts]
    pairs = [(ctx, c.lstrip() if chat else c) for ctx, it in zip(contexts, items) for c in it["choices"]]
    scored = iter(loglikelihoods(lm, pairs, batch_size=batch_size, progress=progress,
                                 rule="apart" if chat else "harness"))
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
    if not (isinstance(result, dict) and "category" in result):
        checks.fail(f"result={checks.show(result, 50)} has no 'category': pass what multiple_choice or letter_choice "
                    "returned")
    checks.one_of("key", key, [k for k in ("correct", "correct_norm") if k in result])
    out = {}
    for cat in dict.fromkeys(result["category"]):
        hits = [c for c, k in zip(result[key], result["category"]) if k == cat]
        out[cat] = (sum(hits) / len(hits), accuracy_interval(sum(hits), len(hits)), len(hits))
    return out


# ----------------------------------------------------------------------------------------------- generated letter
def _check_letters(item: dict, name: str = "the item") -> None:
    """One line when ``item`` has more choices than :data:`LETTERS` can name."""
    if len(item["choices"]) > len(LETTERS):
        checks.fail(f"{name} has {len(item['choices'])} choices but letters go up to {len(LETTERS)} (A-{LETTERS[-1]}; "
                    "a ninth, I, reads as a word): score it with multiple_choice, which takes any number", ItemError)


def letter_prompt(item: dict) -> str:
    """The question followed by its lettered choices and an instruction to answer with the letter only.

    Raises :class:`ItemError` for a malformed item or more than ``len(LETTERS)`` (8) choices."""
    item = check_items([item], where="item")[0]
    _check_letters(item)
    lines = [f"{LETTERS[k]}. {c.strip()}" for k, c in enumerate(item["choices"])]
    letters = ", ".join(LETTERS[:len(item["choices"])])
    return f"{item['question']}\n" + "\n".join(lines) + f"\nAnswer with one letter ({letters})."


def parse_letter(reply: str, n_choices: int) -> int:
    """Index of the answer letter in a generated ``reply``, or -1 when it gives none (notebook 16).

    A letter among the first ``n_choices`` counts when it stands as an answer: at the start of the reply, alone or
    closed by punctuation (``"B"``, ``"B."``, ``"B)"``, ``"B:"``, ``"(B) Paris"``), or right after the word
    "answer" (``"Answer: B"``, ``"The answer is (B)"``). A capital letter that opens a sentence as a word
    (``"A dog is ..."``: the article) is not an answer; nor is a letter later in the text.
    """
    letters = LETTERS[:n_choices]
    patterns = (rf"^\s*\(([{letters}])\)",  # (B) ...
                rf"^\s*([{letters}])\s*(?:[.):,]|$)",  # B / B. / B) / B:
                rf"\b[Aa]nswer\b\s*(?:is\s*)?:?\s*\(?([{letters}])\b(?![ \t]+[a-z])")  # Answer: B / the answer is B
    for pattern in patterns:
        if m := re.search(pattern, reply):
            return LETTERS.index(m.group(1))
    return -1


def _letter_prompts(lm, items, chat: bool, room: int = 0) -> tuple[list[dict], list[list[int]]]:
    """Checked items and the token ids of their lettered prompts (:func:`letter_prompt`), in the chat template's
    user turn followed by the assistant's turn (``chat=True``), or as text followed by ``"\\nAnswer:"``."""
    checks.boolean("chat", chat)
    items = check_items(items)
    tok = lm.tokenizer
    for i, it in enumerate(items):
        _check_letters(it, f"item {i}")
        if chat and (found := special_tokens_in(tok, " ".join([it["question"], *it["choices"]]))):
            checks.fail(f"item {i} writes the special token {found[0]!r} as text, which the chat template would make "
                        "a control token: remove it, or pass chat=False to read it as text", ItemError)
    texts = [letter_prompt(it) for it in items]
    if chat:
        texts = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
                 for t in texts]
    else:
        texts = [t + "\nAnswer:" for t in texts]
    encoded = [tok(t, add_special_tokens=False, split_special_tokens=not chat).input_ids for t in texts]
    limit = context_length(lm.model)
    for i, ids in enumerate(encoded):
        if limit is not None and len(ids) + room > limit:
            checks.fail(f"item {i}'s prompt is {len(ids):,} tokens (+{room} to write), but the model reads at most "
                        f"{limit:,}: shorten the question", ItemError)
    return items, encoded


def letter_tokens(tokenizer, n_choices: int, chat: bool = True) -> list[list[int]]:
    """Token ids of the answer letters as the model would write them next: ``"A"`` at the start of the assistant's
    turn (``chat=True``), ``" A"`` after ``"Answer:"`` (``chat=False``); one list per letter (notebook 16)."""
    return [tokenizer(("" if chat else " ") + c, add_special_tokens=False).input_ids for c in LETTERS[:n_choices]]


def _letter_result(lls: list[list[float]], items: list[dict]) -> dict:
    pred = [int(np.argmax(ll)) for ll in lls]
    correct = [p == it["answer"] for p, it in zip(pred, items)]
    n = len(items)
    return {"acc": sum(correct) / n, "acc_ci": accuracy_interval(sum(correct), n), "n": n, "loglikelihoods": lls,
            "probs": [torch.tensor(ll).softmax(-1).tolist() for ll in lls], "pred": pred, "correct": correct,
            "answer": [it["answer"] for it in items], "category": [it.get("category", "") for it in items]}


def letter_logprobs(lm, items, *, chat: bool = True, batch_size: int = 16, progress: bool | None = None) -> dict:
    """Multiple-choice format (MCF) scored without generating: after :func:`letter_prompt`, the log-probability
    of each answer letter as the next token(s) (:func:`letter_tokens`); the most likely letter is the choice
    (notebook 16; the "MCF" scoring of lm-evaluation-harness's MMLU tasks and of OLMES, Gu et al. 2024).

    Scored by :func:`lmkit.logprobs.pair_logprobs`: one row per item, the prompt once and each letter after it; the
    chat template's system turn, shared by every prompt, runs once. Returns ``acc``, ``acc_ci`` (95% Wilson),
    ``n``, and per item ``loglikelihoods`` (nats, one per letter), ``probs`` (softmax over the letters), ``pred``,
    ``correct``, ``answer``, ``category``. Raises :class:`ItemError` before any work as :func:`letter_choice` does.
    """
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="rows scored per forward pass, such as 16")
    items, encoded = _letter_prompts(lm, items, chat)
    pairs = [(ids, letter) for ids, it in zip(encoded, items)
             for letter in letter_tokens(lm.tokenizer, len(it["choices"]), chat)]
    scores = iter(pair_logprobs(lm.model, pairs, lm.tokenizer, batch_size=batch_size, progress=progress).logprob.tolist())
    return _letter_result([[next(scores) for _ in it["choices"]] for it in items], items)


@torch.no_grad()
def letter_choice(lm, items, *, chat: bool = True, max_new_tokens: int = 4, batch_size: int = 32,
                  progress: bool | None = None) -> dict:
    """Let the model generate the answer letter (greedy) after :func:`letter_prompt`; the letter that
    :func:`parse_letter` reads in the reply is its choice, a reply without one counts as wrong (notebook 16).

    Returns ``acc``, ``acc_ci`` (95% Wilson), ``n``, ``invalid`` (share of replies with no letter), and per item
    ``reply``, ``pred`` (index or -1), ``correct``, ``answer``, ``category``, ``first_token`` (the id of the
    reply's first token). The first generation step is the
    next-token distribution after the prompt, so the same run also gives :func:`letter_logprobs`'s scores (read
    from that step's logits when each letter is one token): ``by_logprob``, a dict as :func:`letter_logprobs`
    returns (or None when a letter takes several tokens).

    At most ``len(LETTERS)`` (8, A-H) choices per item: a ninth letter would be ``I``, which a reply uses as a
    word. With ``chat=False`` the prompt is read as text (a ``"<|im_end|>"`` in an item is those characters); with
    ``chat=True`` an item that writes a special token is refused, since the chat template would make it a control
    token. Raises :class:`ItemError` for these before any work, and when a prompt does not fit the model's context.
    """
    max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, fix="the letter needs at least one token")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="prompts generated at once, such as 32")
    if progress is not None:
        checks.boolean("progress", progress, fix="pass True, False or None (lmkit.env.PROGRESS)")
    items, encoded = _letter_prompts(lm, items, chat, room=max_new_tokens)
    tok = lm.tokenizer
    letter_ids = [letter_tokens(tok, len(it["choices"]), chat) for it in items]
    one_token = all(len(ids) == 1 for row in letter_ids for ids in row)
    replies, lls, first_token = [], [], []
    starts = range(0, len(encoded), batch_size)
    for start in tqdm(starts, desc="generating", disable=not show_progress(progress), leave=False):
        rows = [{"input_ids": ids} for ids in encoded[start:start + batch_size]]
        batch = {k: v.to(lm.device) for k, v in pad(rows, tok, side="left").items()}  # every row ends at the edge
        out = lm.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id(tok),
                                temperature=None, top_p=None, top_k=None, output_logits=True,
                                return_dict_in_generate=True)
        new = out.sequences[:, batch["input_ids"].shape[1]:]
        replies += tok.batch_decode(new, skip_special_tokens=True)
        first_token += new[:, 0].tolist()
        if one_token:
            first = out.logits[0].float().log_softmax(-1).cpu()  # the step after the prompt: [rows, vocab]
            lls += [[first[r, ids[0]].item() for ids in letter_ids[start + r]] for r in range(len(rows))]
    preds = [parse_letter(reply, len(it["choices"])) for reply, it in zip(replies, items)]
    correct = [p == it["answer"] for p, it in zip(preds, items)]
    n = len(items)
    return {"acc": sum(correct) / n, "acc_ci": accuracy_interval(sum(correct), n), "n": n,
            "invalid": sum(p < 0 for p in preds) / n, "reply": replies, "pred": preds, "correct": correct,
            "answer": [it["answer"] for it in items], "category": [it.get("category", "") for it in items],
            "first_token": first_token, "by_logprob": _letter_result(lls, items) if one_token else None}
