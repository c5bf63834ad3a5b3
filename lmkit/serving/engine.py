"""Continuous batching over a paged KV cache, for the bundled Llama on a CPU (the serving notebook).

Orca (Yu et al. 2022, "Orca: A Distributed Serving System for Transformer-Based Generative Models") schedules at the
level of one decoding step instead of one batch: at every step, sequences that finished leave and waiting ones join,
so the batch stays full while requests arrive and end at different times. Each step runs ONE forward pass over a
flat list of tokens from every scheduled sequence, of any lengths (no padding):

- every running sequence in its decode phase adds its one newest token;
- sequences still reading their prompt add the next chunk of it (chunked prefill, as in Sarathi, Agrawal et al.
  2023, and vLLM): the step's tokens are capped at ``max_tokens_per_step``, decode tokens first, so a long prompt
  that arrives does not stall everyone's next token for a whole prefill;
- waiting requests are admitted in arrival order while there are fewer than ``max_batch`` running and KV blocks to
  hold their prompt.

The matrix products run on all the step's tokens at once. Attention reads each sequence's keys and values from the
:class:`~lmkit.serving.paged.PagedKVCache` through its block table: the decoding sequences in one call, padded to the
longest with the padding masked out; each prompt chunk on its own, causal from where its cache ends. When the pool
runs out of blocks, the most recently admitted sequence is preempted: its blocks are given back and it waits to be
recomputed (vLLM's recompute preemption), which keeps greedy outputs unchanged.

Greedy output is token-identical to ``model.generate`` on each prompt alone (up to float rounding near ties):
``tests/test_serving.py`` asserts it on a tiny random Llama with random arrivals.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lmkit import checks
from lmkit.layers import apply_rotary, head_dim, rope_cos_sin
from lmkit.serving.paged import PagedKVCache, block_hashes

__all__ = ["Request", "Engine"]


@dataclass
class Request:
    """One request: its ``prompt`` ids, its ``output`` so far, its block table and how many of its tokens have keys
    and values in the cache (``n_cached``). ``finish_reason``: ``"stop"`` (an end-of-sequence token, kept in
    ``output``), ``"length"`` (``max_new_tokens`` or the context), ``"abort"`` (:meth:`Engine.abort`) or None while
    it runs. Timestamps
    (``time.perf_counter()``): ``added``, ``first_token``, ``finished``."""

    id: int
    prompt: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    generator: torch.Generator | None = None
    output: list[int] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)
    n_cached: int = 0
    n_registered: int = 0
    prefix_hit_tokens: int = 0
    preempted: int = 0
    finish_reason: str | None = None
    added: float = 0.0
    first_token: float | None = None
    finished: float | None = None

    @property
    def tokens(self) -> list[int]:
        return self.prompt + self.output


class Engine:
    """A continuous-batching engine with a paged KV cache over a transformers Llama (``lm.model``) (the serving
    notebook).

    - ``max_batch``: sequences running at once; ``block_size``: token slots per KV block; ``num_blocks``: the pool
      (default: enough for ``max_batch`` sequences of ``max_len`` tokens, what a contiguous cache would reserve);
      ``max_tokens_per_step``: the token budget of one forward pass (decode tokens first, then prompt chunks);
      ``max_len``: the context a sequence may reach (prompt plus output); ``prefix_caching``: share full prompt
      blocks between requests with the same prefix.
    - :meth:`add` queues a request and returns its id; :meth:`abort` drops one; :meth:`step` runs one forward pass
      and returns the ``(request_id, token_id)`` pairs it produced; :meth:`run` steps until every request is done
      and returns each one's output ids. ``requests``: every request by id; ``history``: one dict per step, after
      its pass (``decode_tokens``, ``prefill_tokens``, ``sequences``, ``running``, ``waiting``, ``blocks_in_use``,
      ``tokens_held``: computed tokens of the running sequences, a shared prefix once per sequence;
      ``slots_filled``: the same tokens with each shared block counted once; ``lengths``: each running
      sequence's computed tokens; ``reserved``: the slots a cache reserving prompt + ``max_new_tokens`` per running
      sequence would hold; ``seconds``: the forward pass's wall time).

    Errors (:class:`lmkit.checks.CheckError`, before any work): bad sizes; in :meth:`add`, an empty or non-integer
    prompt, ids outside the vocabulary, ``max_new_tokens`` < 1, a prompt that leaves no room under ``max_len``, a
    negative temperature.
    """

    def __init__(self, lm, *, max_batch: int = 8, block_size: int = 16, num_blocks: int | None = None,
                 max_tokens_per_step: int = 256, max_len: int = 1024, prefix_caching: bool = True):
        self.max_batch = checks.integer("max_batch", max_batch, low=1, fix="sequences at once, such as 8")
        self.block_size = checks.integer("block_size", block_size, low=1, fix="token slots per block, such as 16")
        self.max_len = checks.integer("max_len", max_len, low=2, fix="the longest prompt plus output, such as 1024")
        self.max_tokens_per_step = checks.integer("max_tokens_per_step", max_tokens_per_step, low=self.max_batch,
                                                  fix="at least max_batch, so every running sequence can decode")
        if num_blocks is None:
            num_blocks = self.max_batch * math.ceil(self.max_len / self.block_size)
        num_blocks = checks.integer("num_blocks", num_blocks, low=math.ceil(self.max_len / self.block_size),
                                    fix="at least enough blocks for one sequence of max_len tokens")
        self.prefix_caching = checks.boolean("prefix_caching", prefix_caching)
        self.lm, self.model = lm, lm.model
        cfg = self.model.config
        self.vocab_size = int(cfg.vocab_size)
        self.hd, self.n_head, self.n_kv = head_dim(cfg), cfg.num_attention_heads, cfg.num_key_value_heads
        self.max_len = min(self.max_len, int(getattr(cfg, "max_position_embeddings", self.max_len)))
        weight = self.model.get_input_embeddings().weight
        self.device, self.dtype = weight.device, weight.dtype
        self.cache = PagedKVCache(cfg.num_hidden_layers, self.n_kv, self.hd, num_blocks=num_blocks,
                                  block_size=self.block_size, dtype=self.dtype, device=self.device)
        self.allocator = self.cache.allocator
        from lmkit.decoding.settings import eos_ids

        self.stop_ids = eos_ids(lm)
        self.requests: dict[int, Request] = {}
        self.waiting: list[Request] = []
        self.running: list[Request] = []
        self.history: list[dict] = []
        self._next_id = 0

    # ------------------------------------------------------------------------------------------- requests
    def add(self, prompt_ids, max_new_tokens: int, *, temperature: float = 0.0, seed: int | None = None) -> int:
        """Queue a request; returns its id. ``temperature`` 0 is greedy; above 0, sampling from the softmax of the
        logits over ``temperature`` with a generator seeded by ``seed``."""
        if isinstance(prompt_ids, torch.Tensor):
            prompt_ids = prompt_ids.flatten().tolist()
        if not isinstance(prompt_ids, (list, tuple)) or not prompt_ids:
            checks.fail(f"prompt_ids={checks.show(prompt_ids, 40)}: pass a non-empty list of token ids, such as "
                        "tokenizer(text).input_ids")
        prompt_ids = [checks.integer("prompt_ids", t, low=0, high=self.vocab_size - 1,
                                     must=f"token ids in this model's vocabulary of {self.vocab_size}",
                                     fix="pass ids from this model's tokenizer") for t in prompt_ids]
        max_new_tokens = checks.integer("max_new_tokens", max_new_tokens, low=1, fix="ask for at least one token")
        if len(prompt_ids) >= self.max_len:
            checks.fail(f"the prompt has {len(prompt_ids)} tokens and the context is {self.max_len}: shorten the "
                        "prompt, or build the engine with a larger max_len")
        temperature = checks.real("temperature", temperature, low=0, fix="0 for greedy, such as 0.7 to sample")
        generator = None
        if temperature > 0:
            generator = torch.Generator(device="cpu").manual_seed(checks.seed("seed", seed if seed is not None
                                                                               else self._next_id))
        request = Request(self._next_id, list(prompt_ids), max_new_tokens, temperature, generator,
                          added=time.perf_counter())
        self.requests[request.id] = request
        self.waiting.append(request)
        self._next_id += 1
        return request.id

    def abort(self, request_id: int) -> bool:
        """Stop a request now (its client left): it leaves the queue or the batch, its KV blocks go back, and its
        ``finish_reason`` is ``"abort"``. False if it had already finished; an unknown id raises CheckError."""
        request = self.requests.get(request_id)
        if request is None:
            checks.fail(f"request_id={request_id!r} is not a request of this engine: pass an id that add returned")
        if request.finish_reason is not None:
            return False
        for queue in (self.waiting, self.running):
            if request in queue:
                queue.remove(request)
        self.allocator.release(request.blocks)
        request.blocks, request.finish_reason, request.finished = [], "abort", time.perf_counter()
        return True

    @property
    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def run(self) -> dict[int, list[int]]:
        """Step until nothing waits or runs; every request's output ids (the stop token included), by id."""
        while self.has_unfinished:
            self.step()
        return {rid: list(r.output) for rid, r in self.requests.items()}

    # ------------------------------------------------------------------------------------------- scheduling
    def _grow(self, request: Request, n_tokens: int) -> bool:
        """Give ``request`` blocks for ``n_tokens`` positions; False (and nothing taken) if the pool is short."""
        need = math.ceil(n_tokens / self.block_size) - len(request.blocks)
        if need <= 0:
            return True
        if need > self.allocator.n_free:
            return False
        request.blocks += [self.allocator.allocate() for _ in range(need)]
        return True

    def _preempt(self, request: Request) -> None:
        self.allocator.release(request.blocks)
        request.blocks, request.n_cached, request.n_registered = [], 0, 0
        request.preempted += 1
        self.running.remove(request)
        self.waiting.insert(0, request)

    def _admit(self, request: Request, budget: int) -> bool:
        """Move the first waiting request into the batch, with blocks for the prompt tokens this step reads (at most
        ``budget``); False (nothing taken) if the pool cannot hold them."""
        if self.prefix_caching:
            tokens = request.tokens
            keys = block_hashes(tokens, self.block_size)[:(len(tokens) - 1) // self.block_size]  # leave one to compute
            request.blocks = self.allocator.lookup(keys)
            request.n_cached = request.n_registered = len(request.blocks) * self.block_size
        if not self._grow(request, min(len(request.tokens), request.n_cached + budget)):
            self.allocator.release(request.blocks)
            request.blocks, request.n_cached, request.n_registered = [], 0, 0
            return False
        request.prefix_hit_tokens += request.n_cached  # counted once the request is in
        self.waiting.remove(request)
        self.running.append(request)
        return True

    def _schedule(self) -> list[tuple[Request, int]]:
        """This step's ``(request, tokens to compute)``: decode tokens first, then prompt chunks, then admissions."""
        budget, plan = self.max_tokens_per_step, []
        for request in list(self.running):  # decoders: one token each, blocks on demand, preempting if short
            if len(request.tokens) - request.n_cached != 1 or request not in self.running:
                continue
            while not self._grow(request, request.n_cached + 1):
                victim = self.running[-1]
                self._preempt(victim)
                if victim is request:
                    break
            if request in self.running:
                plan.append((request, 1))
                budget -= 1
        for request in self.running:  # prompts being read, in admission order
            pending = len(request.tokens) - request.n_cached
            if pending > 1 and budget > 0:
                n = min(pending, budget)
                if self._grow(request, request.n_cached + n):
                    plan.append((request, n))
                    budget -= n
        while self.waiting and len(self.running) < self.max_batch and budget > 0:
            request = self.waiting[0]
            if not self._admit(request, budget):
                break
            n = min(len(request.tokens) - request.n_cached, budget)
            plan.append((request, n))
            budget -= n
        return plan

    # ------------------------------------------------------------------------------------------- the forward pass
    @torch.no_grad()
    def _forward(self, plan: list[tuple[Request, int]]) -> torch.Tensor:
        """One pass over the plan's tokens, flat; writes their keys and values; the logits at each chunk's last
        token ``[len(plan), vocab]``."""
        ids, positions, spans, all_slots = [], [], [], []
        start = 0
        for request, n in plan:
            pos = torch.arange(request.n_cached, request.n_cached + n, device=self.device)
            ids += request.tokens[request.n_cached:request.n_cached + n]
            positions.append(pos)
            spans.append((start, start + n, request.n_cached))
            all_slots.append(self.cache.slots(request.blocks, torch.arange(request.n_cached + n, device=self.device)))
            start += n
        ids_t = torch.tensor(ids, device=self.device)
        pos_t = torch.cat(positions)
        new_slots = torch.cat([s[c:] for s, (_, _, c) in zip(all_slots, spans)])
        decoders = [i for i, (a, b, _) in enumerate(spans) if b - a == 1]
        chunks = [i for i, (a, b, _) in enumerate(spans) if b - a > 1]
        if decoders:  # their slots, padded to the longest: [B, Lmax], and which of them are real: [B, 1, 1, Lmax]
            longest = max(len(all_slots[i]) for i in decoders)
            pad_slots = torch.zeros(len(decoders), longest, dtype=torch.long, device=self.device)
            pad_mask = torch.zeros(len(decoders), 1, 1, longest, dtype=torch.bool, device=self.device)
            for row, i in enumerate(decoders):
                pad_slots[row, :len(all_slots[i])] = all_slots[i]
                pad_mask[row, ..., :len(all_slots[i])] = True
        inner = self.model.model
        x = inner.embed_tokens(ids_t)  # [N, d]
        cos, sin = rope_cos_sin(pos_t, frequencies=inner.rotary_emb.inv_freq)  # [N, hd]
        N, group = len(ids), self.n_head // self.n_kv
        for li, layer in enumerate(inner.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = apply_rotary(attn.q_proj(h).view(N, self.n_head, self.hd).transpose(0, 1), cos, sin)  # [H, N, hd]
            k = apply_rotary(attn.k_proj(h).view(N, self.n_kv, self.hd).transpose(0, 1), cos, sin)
            v = attn.v_proj(h).view(N, self.n_kv, self.hd)
            self.cache.write(li, new_slots, k.transpose(0, 1).to(self.dtype), v.to(self.dtype))
            out = torch.empty(self.n_head, N, self.hd, dtype=x.dtype, device=self.device)
            if decoders:  # one token each: one padded call for all of them, padding keys masked out
                keys, values = self.cache.gather(li, pad_slots.flatten())
                keys = keys.view(len(decoders), -1, self.n_kv, self.hd).permute(0, 2, 1, 3)  # [B, kv, Lmax, hd]
                values = values.view(len(decoders), -1, self.n_kv, self.hd).permute(0, 2, 1, 3)
                rows = torch.tensor([spans[i][0] for i in decoders], device=self.device)
                queries = q[:, rows].transpose(0, 1).unsqueeze(2)  # [B, H, 1, hd]
                out[:, rows] = F.scaled_dot_product_attention(
                    queries, keys.repeat_interleave(group, dim=1), values.repeat_interleave(group, dim=1),
                    attn_mask=pad_mask, scale=self.hd ** -0.5).squeeze(2).transpose(0, 1)
            for i in chunks:  # prompt chunks: each on its own, causal from where its cache ends
                (a, b, cached), slots = spans[i], all_slots[i]
                keys, values = self.cache.gather(li, slots)  # [L, kv, hd], positions 0 .. cached + n - 1
                keys = keys.transpose(0, 1).repeat_interleave(group, dim=0)  # [H, L, hd]
                values = values.transpose(0, 1).repeat_interleave(group, dim=0)
                if cached == 0:
                    out[:, a:b] = F.scaled_dot_product_attention(q[:, a:b], keys, values, is_causal=True,
                                                                 scale=self.hd ** -0.5)
                else:
                    visible = torch.arange(len(slots), device=self.device)[None, :] <= \
                        torch.arange(cached, cached + b - a, device=self.device)[:, None]  # causal, offset
                    out[:, a:b] = F.scaled_dot_product_attention(q[:, a:b], keys, values, attn_mask=visible,
                                                                 scale=self.hd ** -0.5)
            x = x + attn.o_proj(out.transpose(0, 1).reshape(N, self.n_head * self.hd))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        last = torch.tensor([b - 1 for _, b, _ in spans], device=self.device)
        return self.model.lm_head(inner.norm(x[last])).float()

    def _pick(self, request: Request, logits: torch.Tensor) -> int:
        if request.temperature == 0:
            return int(logits.argmax())
        probs = torch.softmax(logits / request.temperature, dim=-1)
        return int(torch.multinomial(probs.cpu(), 1, generator=request.generator))

    def _slots_filled(self) -> int:
        """Token slots of the blocks in use that hold a key and value, a shared prefix block counted once: the
        tokens the cache really holds (``tokens_held`` counts a shared prefix once per sequence)."""
        filled: dict[int, int] = {}
        for request in self.running:
            for j, block in enumerate(request.blocks):
                n = min(self.block_size, max(0, request.n_cached - j * self.block_size))
                filled[block] = max(filled.get(block, 0), n)
        return sum(filled.values())

    def step(self) -> list[tuple[int, int]]:
        """Schedule, run one forward pass, and return the ``(request_id, token_id)`` pairs it produced (a sequence
        whose prompt chunk did not reach its end produces none)."""
        plan = self._schedule()
        if not plan:
            if self.waiting:
                raise MemoryError(f"request {self.waiting[0].id} cannot be admitted: its prompt needs more KV "
                                  "blocks than the pool holds; build the engine with more num_blocks")
            return []
        started = time.perf_counter()
        logits = self._forward(plan)
        events, now = [], time.perf_counter()
        for (request, n), row in zip(plan, logits):
            request.n_cached += n
            if self.prefix_caching:  # name the prompt's full blocks that are now computed
                full = min(request.n_cached, len(request.prompt)) // self.block_size
                if full > request.n_registered // self.block_size:
                    keys = block_hashes(request.prompt[:full * self.block_size], self.block_size)
                    for j in range(request.n_registered // self.block_size, full):
                        self.allocator.register(request.blocks[j], keys[j])
                    request.n_registered = full * self.block_size
            if request.n_cached < len(request.tokens):
                continue  # a prompt chunk short of the end: no token yet
            token = self._pick(request, row)
            request.output.append(token)
            request.first_token = request.first_token or now
            events.append((request.id, token))
            if token in self.stop_ids:
                request.finish_reason = "stop"
            elif len(request.output) >= request.max_new_tokens or len(request.tokens) >= self.max_len:
                request.finish_reason = "length"
            if request.finish_reason:
                request.finished = now
                self.allocator.release(request.blocks)
                request.blocks = []
                self.running.remove(request)
        self.history.append({"decode_tokens": sum(n for _, n in plan if n == 1),
                             "prefill_tokens": sum(n for _, n in plan if n > 1), "sequences": len(plan),
                             "running": len(self.running), "waiting": len(self.waiting),
                             "blocks_in_use": self.allocator.in_use,
                             "tokens_held": sum(r.n_cached for r in self.running),
                             "slots_filled": self._slots_filled(),
                             "lengths": [r.n_cached for r in self.running],
                             "reserved": sum(min(len(r.prompt) + r.max_new_tokens, self.max_len)
                                             for r in self.running),
                             "seconds": now - started})
        return events
