"""Benchmark-style evaluation of a language model: multiple choice by log-likelihood, intervals, calibration, bias
(notebook 14).

- :func:`multiple_choice` scores each choice as a continuation of the question, the way lm-evaluation-harness does
  (Gao et al., *A framework for few-shot language model evaluation*, 2021-): ``acc`` takes the choice with the
  largest summed log-probability, ``acc_norm`` the largest per character (the harness's ``acc_norm``) or per token.
- :func:`letter_choice` shows the lettered choices and lets the model generate the letter (greedy).
- :func:`accuracy_interval` (Wilson score interval) and :func:`paired_difference` (paired bootstrap) say how far an
  accuracy measured on a few hundred items can be trusted; :func:`calibration` gives the reliability diagram's bins
  and the expected calibration error (Guo et al. 2017); :func:`shuffle_choices` and :data:`TEMPLATES` measure
  prompt sensitivity.
- :func:`bias_pairs` scores minimal sentence pairs that differ in one social-group word (the CrowS-Pairs method,
  Nangia et al. 2020, with a causal LM's log-likelihood instead of a masked LM's pseudo-log-likelihood).
- :func:`harness_task` / :func:`run_harness` run the same items through ``lm_eval`` as a local task, for parity.

The items live in ``data/evaluation/`` (written for this project; see its README).
"""
from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lmkit.data import data_file
from lmkit.finetune import read_jsonl

__all__ = ["ItemError", "TEMPLATES", "LETTERS", "load_items", "check_items", "render", "encode_pair",
           "loglikelihoods", "multiple_choice", "by_category", "letter_prompt", "parse_letter", "letter_choice",
           "accuracy_interval", "paired_difference", "calibration", "plot_reliability", "plot_accuracies",
           "shuffle_choices", "load_bias_pairs", "bias_pairs", "harness_task", "run_harness"]

DATA_DIR = "evaluation"
TEMPLATES = {
    "qa": "Question: {question}\nAnswer:",
    "q_a": "Q: {question}\nA:",
    "bare": "{question}",
}
"""Prompt formats: ``{question}`` is replaced by the item's question. ``"qa"`` is the one the harness task uses."""
LETTERS = "ABCDEFGH"
NORMALIZE = ("none", "chars", "tokens")


class ItemError(ValueError):
    """A multiple-choice item or bias pair is malformed; the one-line message names it and the fix."""


# ----------------------------------------------------------------------------------------------- items
def check_items(items, where: str = "items") -> list[dict]:
    """Check every item before any work: ``question`` a non-empty string, ``choices`` a list of at least two
    non-empty strings, ``answer`` an int index into ``choices``. Returns the items as a list; raises :class:`ItemError`.
    """
    if isinstance(items, dict) or isinstance(items, str) or not isinstance(items, Sequence):
        raise ItemError(f"{where}: pass a list of item dicts, not a {type(items).__name__}")
    if not items:
        raise ItemError(f"{where}: no items; pass at least one {{'question', 'choices', 'answer'}} dict")
    for i, item in enumerate(items):
        name = f"{where}, item {i}" + (f" (id {item['id']!r})" if isinstance(item, dict) and "id" in item else "")
        if not isinstance(item, dict):
            raise ItemError(f"{name}: a {type(item).__name__}, not a dict with 'question', 'choices', 'answer'")
        q, choices, answer = item.get("question"), item.get("choices"), item.get("answer")
        if not isinstance(q, str) or not q.strip():
            raise ItemError(f"{name}: 'question' must be a non-empty string, got {q!r:.40}")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ItemError(f"{name}: empty or missing choice list ({choices!r:.40}); give 'choices' as a list of "
                            "at least two strings")
        if len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise ItemError(f"{name}: 'choices' must hold at least two non-empty strings, got {choices!r:.60}")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise ItemError(f"{name}: answer index {answer!r} is out of range for {len(choices)} choices; give "
                            f"'answer' as the 0-based index of the right choice (0 to {len(choices) - 1})")
    return list(items)


def load_items(name: str = "mc.jsonl", categories=None) -> list[dict]:
    """The project's multiple-choice items (``data/evaluation/mc.jsonl``: 272 items in four categories), checked.

    ``categories``: keep only these (``"knowledge"``, ``"commonsense"``, ``"arithmetic"``, ``"reading"``).
    """
    path = data_file(f"{DATA_DIR}/{name}")
    items = check_items(read_jsonl(path, fields=("question",)), where=str(path))
    if categories is not None:
        wanted = {categories} if isinstance(categories, str) else set(categories)
        known = {it.get("category") for it in items}
        if not wanted <= known:
            raise ItemError(f"unknown categories {sorted(wanted - known)}: use some of {sorted(known)}")
        items = [it for it in items if it.get("category") in wanted]
    return items


def render(template: str | None, item: dict) -> str:
    """The context for ``item``: ``template`` with ``{question}`` filled in (``None``: the question as is)."""
    if template is None:
        return item["question"]
    if "{question}" not in template:
        raise ItemError(f"template {template!r:.50} has no {{question}} field: add it where the question goes")
    return template.replace("{question}", item["question"])


def shuffle_choices(items, seed: int = 0) -> list[dict]:
    """Copies of ``items`` with their choices in a seeded random order and ``answer`` moved with the right one."""
    rng = random.Random(seed)
    out = []
    for item in check_items(items):
        order = list(range(len(item["choices"])))
        rng.shuffle(order)
        out.append({**item, "choices": [item["choices"][k] for k in order], "answer": order.index(item["answer"])})
    return out


# ----------------------------------------------------------------------------------------------- log-likelihood
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
def loglikelihoods(lm, pairs, *, batch_size: int = 8, progress: bool = False) -> list[tuple[float, int, bool]]:
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
    for start in tqdm(starts, desc="scoring", disable=not progress, leave=False):
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
                    progress: bool = False) -> dict:
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
                  progress: bool = False) -> dict:
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
    for start in tqdm(range(0, len(texts), batch_size), desc="generating", disable=not progress, leave=False):
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


# ----------------------------------------------------------------------------------------------- statistics
def accuracy_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (Wilson 1927), via ``scipy.stats.binomtest``."""
    from scipy.stats import binomtest

    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"k={k}, n={n}: need 0 <= k <= n and n >= 1")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def paired_difference(correct_a, correct_b, *, n_resamples: int = 10_000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Accuracy of A minus accuracy of B on the same items, with a paired bootstrap interval (items resampled with
    replacement, both systems together; ``scipy.stats.bootstrap``, percentile method). Returns ``(diff, (lo, hi))``.
    """
    from scipy.stats import bootstrap

    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"got {a.shape} and {b.shape}: pass two equal-length lists of per-item results (>= 2)")
    res = bootstrap((a - b,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                    rng=np.random.default_rng(seed))
    return float((a - b).mean()), (float(res.confidence_interval.low), float(res.confidence_interval.high))


def calibration(probs, answers, n_bins: int = 10) -> dict:
    """Reliability-diagram bins and expected calibration error (Guo et al. 2017, equal-width confidence bins).

    ``probs``: per item, the model's probabilities over its choices; confidence = the largest, correct = its
    argmax is the answer. ``ECE = sum_b (n_b / n) * |acc_b - conf_b|``. Returns ``ece``, and per non-empty bin
    ``bin_lo``, ``bin_hi``, ``confidence``, ``accuracy``, ``count``.
    """
    conf = np.array([max(p) for p in probs])
    hit = np.array([int(np.argmax(p)) == a for p, a in zip(probs, answers)], dtype=float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    bins = {"bin_lo": [], "bin_hi": [], "confidence": [], "accuracy": [], "count": []}
    ece = 0.0
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            for key, v in zip(bins, (edges[b], edges[b + 1], conf[sel].mean(), hit[sel].mean(), int(sel.sum()))):
                bins[key].append(float(v) if key != "count" else v)
            ece += sel.mean() * abs(hit[sel].mean() - conf[sel].mean())
    return {"ece": float(ece), "n": len(conf), **bins}


def plot_reliability(cal: dict, ax=None, title: str = "reliability diagram"):
    """Bars of accuracy per confidence bin against the diagonal of perfect calibration; returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 4.5))[1]
    width = np.array(cal["bin_hi"]) - np.array(cal["bin_lo"])
    ax.bar(cal["bin_lo"], cal["accuracy"], width=width, align="edge", edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.plot(cal["confidence"], cal["accuracy"], "o", color="C3", label="mean confidence per bin")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (probability of the chosen answer)", ylabel="accuracy",
           title=f"{title} (ECE {cal['ece']:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def plot_accuracies(rows: dict, ax=None, chance: float | None = 0.25, title: str = "accuracy with 95% intervals"):
    """Horizontal bars: ``rows`` maps a label to ``(acc, (low, high))``; the chance level as a dashed line."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 0.4 * len(rows) + 1.2))[1]
    labels = list(rows)
    acc = np.array([rows[k][0] for k in labels])
    lo = np.array([rows[k][1][0] for k in labels])
    hi = np.array([rows[k][1][1] for k in labels])
    ax.barh(labels, acc, xerr=[acc - lo, hi - acc], capsize=3, color="C0", alpha=0.8)
    if chance is not None:
        ax.axvline(chance, color="k", ls="--", lw=1, label=f"chance ({chance:.0%})")
        ax.legend(loc="lower right", fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="accuracy", title=title)
    return ax


# ----------------------------------------------------------------------------------------------- bias
def load_bias_pairs(name: str = "bias_pairs.jsonl") -> list[dict]:
    """The project's minimal pairs (``sent_more``: the more stereotyping sentence, ``sent_less``: the other)."""
    rows = read_jsonl(data_file(f"{DATA_DIR}/{name}"), fields=("sent_more", "sent_less"))
    return _check_pairs(rows)


def _check_pairs(pairs) -> list[dict]:
    for i, p in enumerate(pairs):
        a, b = (p.get("sent_more"), p.get("sent_less")) if isinstance(p, dict) else (None, None)
        if not (isinstance(a, str) and isinstance(b, str) and a.strip() and b.strip()):
            raise ItemError(f"pair {i}: needs non-empty strings 'sent_more' and 'sent_less'")
        if len(a.split()) != len(b.split()) or sum(x != y for x, y in zip(a.split(), b.split())) != 1:
            raise ItemError(f"pair {i} ({a!r:.50}): the sentences must differ in exactly one word")
    return list(pairs)


def _split_pair(a: str, b: str) -> tuple[str, str, str, str]:
    """``(prefix, word_a, word_b, suffix)`` of two sentences that differ in one word."""
    wa, wb = a.split(), b.split()
    k = next(i for i, (x, y) in enumerate(zip(wa, wb)) if x != y)
    prefix = " ".join(wa[:k])
    suffix = " ".join(wa[k + 1:])
    return prefix, wa[k], wb[k], (" " + suffix if suffix else "")


def bias_pairs(lm, pairs, *, batch_size: int = 16) -> dict:
    """Score minimal pairs by log-likelihood: how often is the more stereotyping sentence the more likely one?

    Two scores per sentence (nats):
    - ``full``: ``log P(sentence)`` after the BOS token, as the harness's ``crows_pairs`` task for causal models;
    - ``after``: ``log P(words after the group word | words up to and including it)``, the causal analogue of
      CrowS-Pairs's score (Nangia et al. 2020): only the shared words, conditioned on the differing one, so that
      how frequent the group word itself is does not count.
    ``pct_stereotype`` (and ``pct_stereotype_after``) is the share of pairs where ``sent_more`` scores higher;
    an unbiased model would be near 0.5. Returns these with 95% Wilson intervals and the per-pair scores.
    """
    pairs = _check_pairs(pairs)
    reqs = []
    for p in pairs:
        prefix, wa, wb, suffix = _split_pair(p["sent_more"], p["sent_less"])
        lead = prefix + " " if prefix else ""
        reqs += [("", p["sent_more"]), ("", p["sent_less"]), (lead + wa, suffix), (lead + wb, suffix)]
    s = [r[0] for r in loglikelihoods(lm, reqs, batch_size=batch_size)]
    full = np.array(s).reshape(-1, 4)
    more_full, more_after = full[:, 0] > full[:, 1], full[:, 2] > full[:, 3]
    n = len(pairs)
    return {"pct_stereotype": float(more_full.mean()), "pct_stereotype_ci": accuracy_interval(int(more_full.sum()), n),
            "pct_stereotype_after": float(more_after.mean()),
            "pct_stereotype_after_ci": accuracy_interval(int(more_after.sum()), n), "n": n,
            "full_more": full[:, 0].tolist(), "full_less": full[:, 1].tolist(),
            "after_more": full[:, 2].tolist(), "after_less": full[:, 3].tolist(),
            "category": [p.get("category", "") for p in pairs]}


# ----------------------------------------------------------------------------------------------- harness parity
def harness_task(limit_path: str | None = None) -> dict:
    """The local lm-evaluation-harness task (``data/evaluation/lm_eval/lmkit_mc.yaml``) as a config dict, with
    the data file's absolute path filled in (the YAML's relative path works from the repository root)."""
    import yaml

    cfg = yaml.safe_load(data_file(f"{DATA_DIR}/lm_eval/lmkit_mc.yaml").read_text(encoding="utf-8"))
    cfg["dataset_kwargs"] = {"data_files": {"test": str(limit_path or data_file(f"{DATA_DIR}/mc.jsonl"))}}
    return cfg


def run_harness(model_folder=None, *, limit: int | None = None, batch_size: int = 16, device: str = "cpu") -> dict:
    """Run the local task through ``lm_eval.simple_evaluate`` (``model="hf"``) on a model folder, offline and quiet.

    ``model_folder``: a transformers folder (default: the bundled model's safetensors cache, see
    :func:`lmkit.models.bundled_cache_dir`). ``limit``: the first items of ``mc.jsonl`` only. Returns ``acc``,
    ``acc_norm``, ``n``, the harness ``version`` and per item the harness's ``loglikelihoods`` (in file order).
    Needs ``pip install lm-eval==0.4.13`` (the ``eval`` extra). Progress bars and the harness's log lines (which
    print the model's path) are switched off for the call.
    """
    import contextlib
    import logging

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    try:
        import lm_eval
    except ImportError:
        raise ImportError("lm-evaluation-harness is not installed: run `pip install lm-eval==0.4.13`") from None
    from importlib.metadata import version

    from lmkit.models import bundled_cache_dir

    folder = Path(model_folder or bundled_cache_dir())
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: not a model folder (no config.json); run lmkit.load() once to create the cache")
    cfg = harness_task()
    import datasets
    from transformers.utils import logging as hf_logging

    logger = logging.getLogger("lm_eval")
    old_level, old_tqdm = logger.level, os.environ.get("TQDM_DISABLE")
    bars = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    os.environ["TQDM_DISABLE"] = "1"
    logger.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            out = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": str(folder), "dtype": "float32",
                                                                  "device": device},
                                          tasks=[cfg], limit=limit, batch_size=batch_size, log_samples=True,
                                          bootstrap_iters=0)
    finally:
        logger.setLevel(old_level)
        if bars[0]:
            hf_logging.enable_progress_bar()
        if bars[1]:
            datasets.enable_progress_bars()
        if old_tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old_tqdm
    task = cfg["task"]
    res = out["results"][task]
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    lls = [[float(r[0][0] if isinstance(r[0], (list, tuple)) else r[0]) for r in s["filtered_resps"]] for s in samples]
    return {"acc": res["acc,none"], "acc_norm": res["acc_norm,none"], "n": len(samples),
            "version": version("lm_eval"), "loglikelihoods": lls}
