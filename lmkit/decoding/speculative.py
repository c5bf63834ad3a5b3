"""Speculative decoding: a cheap draft proposes, the model verifies several tokens in one pass (notebook 07).

Sources: Leviathan, Kalman & Matias 2023, "Fast inference from transformers via speculative decoding"; Chen et al.
2023, "Accelerating large language model decoding with speculative sampling". transformers ships the same idea as
``model.generate(assistant_model=...)`` and, with the prompt itself as the draft, ``prompt_lookup_num_tokens=``.

One round:

1. the draft proposes ``k`` tokens, one cheap forward pass each;
2. the target runs ONE forward pass over the last accepted token and the ``k`` proposals, which gives its own
   distribution at each of the ``k + 1`` positions (the first round's pass is also the prefill of the prompt);
3. greedy: keep the longest prefix of proposals that equal the target's argmax, then add the target's own token at
   the first disagreement (or after all ``k``). Sampling: accept proposal ``x`` with probability
   ``min(1, p(x) / q(x))`` (``p`` target, ``q`` draft, both after the same logits processors); at the first
   rejection draw from ``norm(max(0, p - q))``; after ``k`` acceptances draw from ``p``. Either way each output
   token has exactly the target's distribution;
4. both KV caches are rolled back to the tokens that were kept (``DynamicCache.crop``).

So greedy output is token-identical to plain greedy decoding, and every round makes between 1 and ``k + 1``
tokens for one target pass. The round is written as three functions, :func:`propose`, :func:`verify_greedy` and
:func:`verify_sampled`. A constrained output (``json_schema=`` / ``regex=``) works too: its grammar is one of the
logits processors, which both the draft and the target apply, and it follows whatever prefix it is called on.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from lmkit import checks
from lmkit.decoding.grammar import for_settings
from lmkit.decoding.loop import finished
from lmkit.decoding.settings import (SettingsError, check_settings, context_length, eos_ids, processors,
                                     prompt_ids)
from lmkit.transformers_compat import with_cache
from lmkit.models import LM

__all__ = ["SpeculativeResult", "speculative", "early_exit_draft", "propose", "verify_greedy", "verify_sampled",
           "accept_or_resample", "expected_tokens_per_pass"]


@dataclass(frozen=True)
class SpeculativeResult:
    """What :func:`speculative` returns (notebook 07).

    ``ids``: the new token ids (prompt excluded); ``text``: their decode without special tokens;
    ``target_passes``: forward passes of the target (the prefill included); ``draft_passes``: the draft's;
    ``proposed``: draft tokens proposed (what the draft paid for); ``verified``: proposals the target judged, the
    first rejection included (a round stops at its first rejection, so the proposals after it are never judged);
    ``accepted``: proposals kept (none after an EOS or a complete constrained output: those are thrown away);
    ``seconds``: wall time of the call; ``finish_reason``: ``"eos"``, ``"grammar"``, ``"length"`` or ``"context"``
    (:data:`lmkit.decoding.loop.FINISH_REASONS`).
    """

    ids: list[int]
    text: str
    target_passes: int
    draft_passes: int
    proposed: int
    verified: int
    accepted: int
    seconds: float
    finish_reason: str = "length"

    @property
    def acceptance_rate(self) -> float:
        """Accepted / verified proposals: the per-proposal acceptance probability alpha of Leviathan et al. (2023),
        which :func:`expected_tokens_per_pass` takes (NaN when nothing was verified).

        Dividing by ``proposed`` instead would count the proposals after a round's first rejection, which the
        target never judged, and would make alpha look smaller the larger ``k`` is."""
        return self.accepted / self.verified if self.verified else float("nan")

    @property
    def tokens_per_pass(self) -> float:
        """New tokens per target forward pass (1.0 for plain decoding)."""
        return len(self.ids) / self.target_passes if self.target_passes else float("nan")


def early_exit_draft(lm, n_layers: int):
    """A self-speculative draft: the first ``n_layers`` decoder layers of ``lm`` with its final norm and head.

    The draft is a model of ``lm``'s own class whose modules ARE the target's (no copy: the same parameter
    tensors), wrapped as an :class:`lmkit.models.LM`, so it also works as transformers' ``assistant_model=``.
    Its next-token guess is the target's "logit lens" read after ``n_layers`` layers (notebook 04). Needs a
    Llama-style model (``model.model.layers``, ``.norm``, ``.rotary_emb``, ``.lm_head``). Notebook 07.
    """
    inner = getattr(lm.model, "model", None)
    if not all(hasattr(inner, a) for a in ("layers", "norm", "embed_tokens", "rotary_emb")) or not hasattr(
            lm.model, "lm_head"):
        checks.fail(f"early_exit_draft needs a Llama-style model (model.model.layers, .norm, .lm_head), not "
                    f"{type(lm.model).__name__}: pass another causal LM that shares the tokenizer as the draft",
                    SettingsError)
    total = len(inner.layers)
    checks.integer("n_layers", n_layers, low=1, high=total, error=SettingsError,
                   fix=f"the draft keeps that many of the target's {total} layers, e.g. {max(1, total // 4)}")
    config = copy.deepcopy(lm.model.config)
    config.num_hidden_layers = n_layers
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = config.layer_types[:n_layers]
    with torch.device("meta"):
        shell = type(lm.model)(config)
    shell.model.embed_tokens, shell.model.norm = inner.embed_tokens, inner.norm
    shell.model.rotary_emb, shell.lm_head = inner.rotary_emb, lm.model.lm_head
    shell.model.layers = torch.nn.ModuleList(list(inner.layers[:n_layers]))
    shell.generation_config = copy.deepcopy(lm.model.generation_config)
    assert not any(t.is_meta for t in [*shell.parameters(), *shell.buffers()]), "a module was not shared"
    return LM(model=shell.eval(), tokenizer=lm.tokenizer, device=lm.device, name=f"{lm.name} [:{n_layers} layers]")


def _draft_model(lm, draft):
    """The draft's model, after checking that it speaks the target's vocabulary."""
    model = getattr(draft, "model", draft) if not isinstance(draft, torch.nn.Module) else draft
    if not callable(model) or not hasattr(model, "config"):
        checks.fail(f"draft must be an lmkit LM or a causal LM module, not {type(draft).__name__}: "
              "e.g. early_exit_draft(lm, 8)", SettingsError)
    n_target, n_draft = lm.model.config.vocab_size, getattr(model.config, "vocab_size", None)
    tok = getattr(draft, "tokenizer", None)
    same_tok = tok is None or tok is lm.tokenizer or tok.get_vocab() == lm.tokenizer.get_vocab()
    if n_draft != n_target or not same_tok:
        checks.fail(f"the draft's vocabulary ({n_draft} ids{'' if same_tok else ', another tokenizer'}) differs from "
                    f"the target's ({n_target}): use a draft with the same tokenizer, e.g. early_exit_draft(lm, 8)",
                    SettingsError)
    return model


def accept_or_resample(p: torch.Tensor, q: torch.Tensor, token: int, u: float | None = None) -> tuple[bool, int]:
    """The speculative sampling rule for one proposal (Leviathan et al. 2023, Algorithm 1; notebook 07).

    ``p``, ``q``: ``[V]`` target and draft probabilities; ``token`` was drawn from ``q``. Accept it when
    ``u < min(1, p[token] / q[token])`` with ``u ~ U(0, 1)``; otherwise return a draw from
    ``norm(max(0, p - q))``. The result is distributed exactly as ``p``.
    """
    u = float(torch.rand(())) if u is None else u
    if u < min(1.0, float(p[token]) / max(float(q[token]), 1e-30)):
        return True, int(token)
    residual = (p - q).clamp(min=0)
    residual = residual / residual.sum() if residual.sum() > 0 else p
    return False, int(torch.multinomial(residual, 1))


def _forward(model, cache, ids: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Run ``ids`` [1, t] after what ``cache`` holds; the float32 logits of the last ``n_keep`` positions [n, V]."""
    length = cache.get_seq_length() + ids.shape[1]
    out = model(input_ids=ids, attention_mask=torch.ones(1, length, dtype=torch.long, device=ids.device),
                use_cache=True, logits_to_keep=n_keep, **with_cache(model, cache))
    return out.logits[0, -n_keep:].float()


def _roll_back(cache, length: int) -> None:
    """Drop the cached keys and values after the first ``length`` positions (``DynamicCache.crop(-n)``)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def _choose(procs, seq: torch.Tensor, logits: torch.Tensor, sample: bool):
    """Process ``logits`` [V] for the sequence ``seq`` [1, t]; the token and (sampling) its distribution."""
    scores = procs(seq, logits[None].clone())[0]
    if not sample:
        return int(scores.argmax()), None
    probs = torch.softmax(scores, -1)
    return int(torch.multinomial(probs, 1)), probs


def propose(draft, cache, seq: torch.Tensor, k: int, procs, do_sample: bool) -> tuple[torch.Tensor, list]:
    """Step 1 of a round: the draft extends ``seq`` ``[1, t]`` by ``k`` tokens, one cached forward pass each.

    Returns ``(seq + proposals [1, t + k], qs)``: ``qs[i]`` is the draft's processed distribution ``[V]`` that
    proposal ``i`` was drawn from (``None`` when greedy). ``cache`` is the draft's KV cache, extended in place.
    """
    cur, qs = seq, []
    for _ in range(k):
        logits = _forward(draft, cache, cur[:, cache.get_seq_length():], 1)[-1]
        token, q = _choose(procs, cur, logits, do_sample)
        cur, qs = torch.cat([cur, cur.new_tensor([[token]])], 1), qs + [q]
    return cur, qs


def verify_greedy(procs, cur: torch.Tensor, base: int, logits: torch.Tensor) -> list[int]:
    """Step 3, greedy: the longest prefix of the proposals ``cur[0, base:]`` that equal the target's argmax, then
    the target's own token (at the first disagreement, or after all ``k``). ``logits``: the target's ``[k + 1, V]``
    at positions ``base - 1 .. base + k - 1``. Returns the kept token ids (between 1 and ``k + 1``)."""
    k, kept = cur.shape[1] - base, []
    for i in range(k + 1):
        token = int(procs(cur[:, :base + i], logits[i][None].clone())[0].argmax())
        kept.append(token)
        if i == k or token != int(cur[0, base + i]):
            break
    return kept


def verify_sampled(procs, cur: torch.Tensor, base: int, logits: torch.Tensor, qs: list) -> list[int]:
    """Step 3, sampling: accept each proposal with probability ``min(1, p/q)`` (:func:`accept_or_resample`), stop
    at the first rejection with a draw from the residual, or draw from ``p`` after all ``k`` were accepted
    (Leviathan et al. 2023, Algorithm 1). Arguments as in :func:`verify_greedy`, plus the draft's ``qs``."""
    k, kept = cur.shape[1] - base, []
    for i in range(k + 1):
        p = torch.softmax(procs(cur[:, :base + i], logits[i][None].clone())[0], -1)
        if i == k:
            kept.append(int(torch.multinomial(p, 1)))
            break
        ok, token = accept_or_resample(p, qs[i], int(cur[0, base + i]))
        kept.append(token)
        if not ok:
            break
    return kept


def _end(kept: list[int], seq: torch.Tensor, procs, eos: set[int]) -> list[int]:
    """``kept`` cut after its first EOS, or after the token that completes a constrained output."""
    for j, token in enumerate(kept):
        if token in eos or finished(procs, torch.cat([seq, seq.new_tensor([kept[:j + 1]])], 1)):
            return kept[:j + 1]
    return kept


def speculative(lm, prompt, draft, num_draft_tokens: int = 4, **settings):
    """Speculative decoding of ``prompt`` with ``draft`` proposing ``num_draft_tokens`` per round (notebook 07).

    ``draft``: an :class:`lmkit.models.LM` (e.g. :func:`early_exit_draft`) or a causal LM module with the
    target's vocabulary. ``settings`` as in :func:`lmkit.generate.stream` (``max_new_tokens, do_sample,
    temperature, top_k, top_p, min_p, repetition_penalty, seed, chat, json_schema, regex``); greedy unless
    ``do_sample=True``. Greedy output is token-identical to :func:`lmkit.generate.generate`, constrained or not;
    sampled output follows the target's processed distribution exactly (seeded, it is reproducible but not
    identical to ``model.generate``'s draws). Returns a :class:`SpeculativeResult`. Bad input
    (``num_draft_tokens < 1``, another vocabulary, beams) raises :class:`lmkit.decoding.settings.SettingsError` in
    one line before any model work.
    """
    from transformers import DynamicCache

    checks.integer("num_draft_tokens", num_draft_tokens, low=1, error=SettingsError,
                   fix="the draft proposes that many tokens per round, e.g. 4")
    s = check_settings(lm, **settings)
    if s.num_beams != 1 or s.num_return_sequences != 1:
        checks.fail("speculative() follows one sequence: drop num_beams/num_return_sequences, or use generate()",
                    SettingsError)
    dmodel = _draft_model(lm, draft)
    seq = prompt_ids(lm, prompt, s.chat)
    n_prompt, eos = seq.shape[1], eos_ids(lm)
    procs = processors(s, for_settings(lm, s, n_prompt))
    max_new = min(s.max_new_tokens, context_length(lm) - n_prompt)
    t_cache, d_cache = DynamicCache(config=lm.model.config), DynamicCache(config=dmodel.config)
    counts = dict(target_passes=0, draft_passes=0, proposed=0, verified=0, accepted=0)
    start, reason = time.perf_counter(), None
    if s.seed is not None:
        torch.manual_seed(s.seed)
    with torch.inference_mode():
        while seq.shape[1] - n_prompt < max_new:
            base, k = seq.shape[1], min(num_draft_tokens, max_new - (seq.shape[1] - n_prompt) - 1)
            cur, qs = propose(dmodel, d_cache, seq, k, procs, s.do_sample)  # 1. the draft proposes k tokens
            counts["draft_passes"] += k
            counts["proposed"] += k
            # 2. one target pass over everything it has not seen: k + 1 distributions
            t_logits = _forward(lm.model, t_cache, cur[:, t_cache.get_seq_length():], k + 1)
            counts["target_passes"] += 1
            # 3. the longest agreeing prefix, then the target's own token
            kept = (verify_sampled(procs, cur, base, t_logits, qs) if s.do_sample
                    else verify_greedy(procs, cur, base, t_logits))
            ended = _end(kept, seq, procs, eos)
            # count only proposals that were used: after an accepted EOS (or a complete grammar) none are
            counts["accepted"] += min(len(kept) - 1, len(ended))
            counts["verified"] += min(len(kept), k, len(ended))  # the accepted ones, plus the first rejected one
            seq = torch.cat([seq, seq.new_tensor([ended])], 1)
            _roll_back(t_cache, seq.shape[1] - 1)  # 4. keep what was accepted; the new token is not in yet
            _roll_back(d_cache, seq.shape[1] - 1)
            if ended[-1] in eos:
                reason = "eos"
            elif len(ended) < len(kept) or finished(procs, seq):
                reason = "grammar"
            if reason:
                break
    new = seq[0, n_prompt:n_prompt + max_new].tolist()
    if reason is None:
        reason = "length" if max_new == s.max_new_tokens else "context"
    return SpeculativeResult(ids=new, text=lm.tokenizer.decode(new, skip_special_tokens=True),
                             seconds=time.perf_counter() - start, finish_reason=reason, **counts)


def expected_tokens_per_pass(alpha: float, k: int) -> float:
    """Expected tokens per target pass when each proposal is accepted independently with probability ``alpha``.

    ``(1 - alpha**(k+1)) / (1 - alpha)`` (Leviathan et al. 2023, eq. 1); ``k + 1`` when ``alpha == 1``.
    """
    return float(k + 1) if alpha >= 1 else (1 - alpha ** (k + 1)) / (1 - alpha)

