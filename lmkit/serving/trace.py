"""Replaying a trace of requests against a server-side batching policy, and the latencies each user saw (the
serving notebook; ``benchmarks/serving.py``).

- :func:`poisson_trace`: requests arriving as a Poisson process (exponential gaps at ``rate`` per second), each with
  a prompt and a budget of new tokens drawn from the given pools.
- :func:`replay_continuous`: the trace in wall-clock time against an :class:`~lmkit.serving.Engine` (continuous
  batching): requests join at the first step after they arrive; ``policy="static"`` keeps the engine's kernels and
  admits a new batch only when the last one is done.
- :func:`replay_static`: the same trace with static batching, ``model.generate`` on left-padded batches: a batch
  starts when the previous one has finished, with every request that has arrived by then (at most ``batch_size``),
  and runs until its longest member is done; every member gets its first token after the batch's prefill, its last
  one at the step that produced it (``done``, as if streamed), and the whole reply when the batch ends
  (``returned``).
- :func:`latency_summary`: time to first token (TTFT), time per output token after the first (TPOT), end-to-end
  latency, their p50 and p95, and throughput (generated tokens over the makespan).

Times are seconds from the trace's start (``time.perf_counter``). Greedy decoding throughout.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from lmkit import checks

__all__ = ["TraceRequest", "Served", "user_turns", "poisson_trace", "replay_continuous", "replay_static",
           "latency_summary"]


@dataclass
class TraceRequest:
    """One request of a trace: when it arrives (seconds from the start), its prompt ids and its budget."""

    arrival: float
    prompt_ids: list[int]
    max_new_tokens: int


@dataclass
class Served:
    """What one request saw: ``arrival``, ``first_token`` and ``done`` (its last token; seconds from the start), its
    ``output`` ids; under static batching (:func:`replay_static`) also which ``batch`` it rode in, how many decoding
    steps that batch ran (``batch_steps``), whoever needed them, and when the batch ``returned`` (a server that does
    not stream hands every member's reply over then)."""

    arrival: float
    first_token: float
    done: float
    output: list[int]
    batch: int | None = None
    batch_steps: int | None = None
    returned: float | None = None

    @property
    def ttft(self) -> float:
        return self.first_token - self.arrival

    @property
    def tpot(self) -> float:
        return (self.done - self.first_token) / (len(self.output) - 1) if len(self.output) > 1 else float("nan")

    @property
    def latency(self) -> float:
        return self.done - self.arrival


def user_turns() -> list[str]:
    """40 user turns written for the workbook, for traces: 20 one-step arithmetic word problems (``data/rl``, the
    validation split, with :func:`lmkit.rl.prompt`'s instruction) and 20 instructions (``data/finetune``, train).
    In the chat template they all open with the same system prompt, which prefix caching can share."""
    from lmkit import rl
    from lmkit.finetune.data import load_split

    return [rl.prompt(i) for i in rl.load_split("validation")[:20]] + [r["prompt"] for r in load_split("train")[:20]]


def poisson_trace(prompts, budgets, *, n: int, rate: float, seed: int = 0) -> list[TraceRequest]:
    """``n`` requests arriving at ``rate`` per second on average (exponential gaps), each with a prompt drawn from
    ``prompts`` (lists of ids) and a budget from ``budgets`` (integers >= 1), with ``random.Random(seed)``."""
    n = checks.integer("n", n, low=1, fix="how many requests, such as 32")
    rate = checks.real("rate", rate, low=0, low_open=True, fix="requests per second, such as 2.0")
    if not prompts or not budgets:
        checks.fail("prompts and budgets must be non-empty: pass lists of prompt ids and of token budgets")
    budgets = [checks.integer("budgets", b, low=1, fix="each budget at least 1 token") for b in budgets]
    rng, t, out = random.Random(seed), 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append(TraceRequest(t, list(rng.choice(prompts)), rng.choice(budgets)))
    return out


def replay_continuous(engine, trace: list[TraceRequest], *, policy: str = "continuous") -> list[Served]:
    """Replay ``trace`` in wall-clock time against ``engine`` (an idle :class:`~lmkit.serving.Engine`); sleep when
    nothing runs and the next request has not arrived.

    ``policy="continuous"``: add each request at the first step after its arrival. ``policy="static"``: the same
    kernels with static admission, a control for the scheduling alone: requests are added only when the engine is
    idle, at most ``engine.max_batch`` of those that have arrived, and the next batch waits for the last member of
    this one (members that finish early leave the pass, so the padding waste of :func:`replay_static` is not in it).
    """
    policy = checks.one_of("policy", policy, ("continuous", "static"))
    order = sorted(range(len(trace)), key=lambda i: trace[i].arrival)
    start, pending, ids = time.perf_counter(), list(order), {}
    while pending or engine.has_unfinished:
        now = time.perf_counter() - start
        room = engine.max_batch if policy == "static" and not engine.has_unfinished else 0
        while pending and trace[pending[0]].arrival <= now and (policy == "continuous" or room > 0):
            i = pending.pop(0)
            room -= 1
            ids[engine.add(trace[i].prompt_ids, trace[i].max_new_tokens)] = i
        if engine.has_unfinished:
            engine.step()
        elif pending:
            time.sleep(max(0.0, trace[pending[0]].arrival - (time.perf_counter() - start)))
    served = [None] * len(trace)
    for rid, i in ids.items():
        r = engine.requests[rid]
        served[i] = Served(trace[i].arrival, r.first_token - start, r.finished - start, list(r.output))
    return served


class _Clock:
    """A stopping criterion that never stops, only records when each decoding step ends."""

    def __init__(self):
        self.times = []

    def __call__(self, input_ids, scores, **kwargs):
        self.times.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def replay_static(lm, trace: list[TraceRequest], *, batch_size: int = 8) -> list[Served]:
    """Replay ``trace`` with static batching: ``lm.model.generate`` (greedy) on left-padded batches of at most
    ``batch_size`` requests that have arrived when the previous batch ends; a batch runs until all its members have
    stopped or reached the largest budget among them. Each member's reply is cut at its own stop token or budget; its
    ``done`` is the end of the step that produced its last token (as if the batch streamed), its ``returned`` the
    end of the batch."""
    from transformers import StoppingCriteriaList

    from lmkit.decoding.settings import eos_ids
    from lmkit.logprobs import pad, pad_id

    batch_size = checks.integer("batch_size", batch_size, low=1, fix="requests per batch, such as 8")
    stops, tok = eos_ids(lm), lm.tokenizer
    order = sorted(range(len(trace)), key=lambda i: trace[i].arrival)
    served, start, number = [None] * len(trace), time.perf_counter(), 0
    while order:
        now = time.perf_counter() - start
        if trace[order[0]].arrival > now:
            time.sleep(trace[order[0]].arrival - now)
            now = time.perf_counter() - start
        batch = [i for i in order if trace[i].arrival <= now][:batch_size]
        order = [i for i in order if i not in batch]
        inputs = pad([{"input_ids": trace[i].prompt_ids} for i in batch], tok, side="left")
        clock = _Clock()
        with torch.no_grad():
            out = lm.model.generate(**inputs, max_new_tokens=max(trace[i].max_new_tokens for i in batch),
                                    do_sample=False, temperature=None, top_p=None, top_k=None,
                                    pad_token_id=pad_id(tok), stopping_criteria=StoppingCriteriaList([clock]))
        returned = time.perf_counter() - start
        first = clock.times[0] - start
        for row, i in zip(out[:, inputs["input_ids"].shape[1]:].tolist(), batch):
            row = row[:trace[i].max_new_tokens]
            end = next((k for k, t in enumerate(row) if t in stops), None)
            row = row if end is None else row[:end + 1]
            served[i] = Served(trace[i].arrival, first, clock.times[len(row) - 1] - start, row, number,
                               len(clock.times), returned)
        number += 1
    return served


def latency_summary(served: list[Served]) -> dict:
    """p50 and p95 of TTFT, TPOT and latency (seconds), generated tokens, the makespan (first arrival to last
    reply) and the throughput (tokens per second over the makespan)."""
    if not served:
        checks.fail("served is empty: replay a trace first")
    out = {}
    for name in ("ttft", "tpot", "latency"):
        values = np.array([getattr(s, name) for s in served], dtype=float)
        values = values[~np.isnan(values)]
        out[f"{name}_p50"] = float(np.percentile(values, 50)) if len(values) else float("nan")
        out[f"{name}_p95"] = float(np.percentile(values, 95)) if len(values) else float("nan")
    tokens = sum(len(s.output) for s in served)
    makespan = max(s.done for s in served) - min(s.arrival for s in served)
    out.update(tokens=tokens, makespan=makespan, throughput=tokens / makespan)
    return out
