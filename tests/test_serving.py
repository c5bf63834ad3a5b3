"""The serving engine: continuous batching over a paged KV cache gives each request what it would get alone."""
from __future__ import annotations

import random

import pytest
import torch

from lmkit.checks import CheckError
from lmkit.serving import BlockAllocator, Engine, block_hashes


def _alone(lm, prompt, max_new_tokens):
    """model.generate, greedy, on one unpadded prompt: the reference every request must match."""
    ids = torch.tensor([prompt])
    out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                            do_sample=False, temperature=None, top_p=None, top_k=None,
                            pad_token_id=lm.tokenizer.eos_token_id or 0)
    return out[0, len(prompt):].tolist()


def _trace(rng, vocab, n, shared=None):
    prompts = []
    for _ in range(n):
        body = [rng.randrange(3, vocab) for _ in range(rng.randint(1, 40))]
        prompts.append((shared or []) + body)
    return prompts, [rng.randint(1, 12) for _ in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_request_matches_generating_alone_whatever_the_arrivals(tiny_lm, seed):
    rng = random.Random(seed)
    vocab = tiny_lm.model.config.vocab_size
    prompts, budgets = _trace(rng, vocab, 14)
    engine = Engine(tiny_lm, max_batch=4, block_size=4, num_blocks=64, max_tokens_per_step=24, max_len=128)
    ids, pending = {}, list(range(len(prompts)))
    while pending or engine.has_unfinished:  # requests arrive between steps, a random few at a time
        for _ in range(rng.randint(0, 3)):
            if pending:
                i = pending.pop(0)
                ids[engine.add(prompts[i], budgets[i])] = i
        engine.step()
    for rid, i in ids.items():
        assert engine.requests[rid].output == _alone(tiny_lm, prompts[i], budgets[i]), f"request {i}"
    engine.allocator.check_no_leak()
    assert max(h["running"] for h in engine.history) <= 4
    assert max(h["prefill_tokens"] + h["decode_tokens"] for h in engine.history) <= 24
    assert any(h["prefill_tokens"] and h["decode_tokens"] for h in engine.history)  # prefill mixed with decoding


def test_a_small_pool_preempts_and_still_matches(tiny_lm):
    rng = random.Random(5)
    prompts, budgets = _trace(rng, tiny_lm.model.config.vocab_size, 8)
    engine = Engine(tiny_lm, max_batch=6, block_size=4, num_blocks=16, max_tokens_per_step=64, max_len=64)
    rids = [engine.add(p, b) for p, b in zip(prompts, budgets)]
    out = engine.run()
    assert sum(engine.requests[r].preempted for r in rids) > 0  # the pool was too small for everyone at once
    for r, p, b in zip(rids, prompts, budgets):
        assert out[r] == _alone(tiny_lm, p, b)
    engine.allocator.check_no_leak()


def test_prefix_caching_shares_blocks_and_keeps_outputs(tiny_lm):
    rng = random.Random(7)
    vocab = tiny_lm.model.config.vocab_size
    system = [rng.randrange(3, vocab) for _ in range(20)]
    prompts, budgets = _trace(rng, vocab, 6, shared=system)
    results = {}
    for caching in (True, False):
        engine = Engine(tiny_lm, max_batch=2, block_size=4, num_blocks=64, max_len=128, prefix_caching=caching)
        rids = [engine.add(p, b) for p, b in zip(prompts, budgets)]
        results[caching] = (engine.run(), engine)
        engine.allocator.check_no_leak()
    (shared_out, shared), (plain_out, plain) = results[True], results[False]
    assert shared_out == plain_out
    assert [shared_out[r] for r in rids] == [_alone(tiny_lm, p, b) for p, b in zip(prompts, budgets)]
    # the first pair computes the 5 blocks of the system prompt; the four later requests find them cached
    assert sum(shared.requests[r].prefix_hit_tokens for r in rids) == 4 * 20
    assert sum(h["prefill_tokens"] for h in plain.history) - sum(h["prefill_tokens"] for h in shared.history) == 80


def test_block_allocator_book_keeping():
    pool = BlockAllocator(4, 2)
    a, b = pool.allocate(), pool.allocate()
    assert (a, b, pool.in_use, pool.n_free) == (0, 1, 2, 2)
    keys = block_hashes([1, 2, 3, 4, 5], 2)
    assert len(keys) == 2 and keys != block_hashes([9, 9, 3, 4], 2)  # chained: the same block after another prefix
    pool.register(a, keys[0])
    pool.release([a, b])
    assert pool.cached == 1 and pool.in_use == 0 and pool.n_free == 4
    assert pool.lookup(keys) == [a] and pool.in_use == 1 and pool.cached == 0  # a hit, then a miss
    pool.release([a])
    got = [pool.allocate() for _ in range(4)]  # the free ones first, then the cached one is evicted
    assert got[-1] == a and pool.lookup(keys) == []
    with pytest.raises(MemoryError, match="all 4 KV blocks are held"):
        pool.allocate()
    pool.release(got)
    pool.check_no_leak()
    with pytest.raises(RuntimeError, match="released more often"):
        pool.release([0])


def test_engine_refuses_bad_requests_before_any_work(tiny_lm):
    engine = Engine(tiny_lm, max_batch=2, block_size=4, max_len=32)
    vocab = tiny_lm.model.config.vocab_size
    for bad, message in ((([], 4), "prompt_ids=\\[\\]"), (([1, 2], 0), "max_new_tokens=0"),
                         (([vocab + 5], 3), f"prompt_ids={vocab + 5} must be token ids in this model.s vocabulary"),
                         (([1] * 40, 3), "40 tokens and the context is 32"), ((["a"], 3), "prompt_ids=")):
        with pytest.raises(CheckError, match=message):
            engine.add(*bad)
    with pytest.raises(CheckError, match="temperature=-1"):
        engine.add([1, 2], 3, temperature=-1)
    assert not engine.requests and not engine.has_unfinished
    with pytest.raises(CheckError, match="max_tokens_per_step=1"):
        Engine(tiny_lm, max_batch=2, max_tokens_per_step=1)


def test_sampling_repeats_with_its_seed(tiny_lm):
    outs = []
    for _ in range(2):
        engine = Engine(tiny_lm, max_batch=2, block_size=4, max_len=64)
        rid = engine.add([5, 6, 7], 10, temperature=1.0, seed=3)
        other = engine.add([8, 9], 10, temperature=1.0, seed=4)
        out = engine.run()
        outs.append((out[rid], out[other]))
    assert outs[0] == outs[1] and outs[0][0] != outs[0][1]


def test_abort_frees_the_blocks_and_leaves_the_others_unchanged(tiny_lm):
    engine = Engine(tiny_lm, max_batch=2, block_size=4, num_blocks=32, max_len=64)
    keep = engine.add([5, 6, 7, 8, 9], 8)
    running = engine.add([10, 11, 12], 8)
    queued = engine.add([13, 14], 8)  # waits: max_batch is 2
    engine.step()
    engine.step()
    assert engine.abort(running) and engine.abort(queued) and not engine.abort(running)
    assert engine.requests[running].finish_reason == engine.requests[queued].finish_reason == "abort"
    out = engine.run()
    assert out[keep] == _alone(tiny_lm, [5, 6, 7, 8, 9], 8) and out[queued] == []
    engine.allocator.check_no_leak()
    with pytest.raises(CheckError, match="request_id=99"):
        engine.abort(99)


def test_trace_replays_give_each_request_its_own_reply(tiny_lm):
    from lmkit.serving import trace as tr

    rng = random.Random(3)
    vocab = tiny_lm.model.config.vocab_size
    prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(2, 20))] for _ in range(5)]
    requests = tr.poisson_trace(prompts, [3, 6, 9], n=8, rate=200.0, seed=1)
    assert requests == tr.poisson_trace(prompts, [3, 6, 9], n=8, rate=200.0, seed=1)
    assert all(b.arrival > a.arrival for a, b in zip(requests, requests[1:]))
    expected = [_alone(tiny_lm, r.prompt_ids, r.max_new_tokens) for r in requests]
    continuous = tr.replay_continuous(Engine(tiny_lm, max_batch=4, block_size=4, max_len=64), requests)
    static = tr.replay_static(tiny_lm, requests, batch_size=4)
    assert [s.output for s in continuous] == expected
    assert [s.output for s in static] == expected
    for served in (continuous, static):
        assert all(s.arrival <= s.first_token <= s.done for s in served)
        summary = tr.latency_summary(served)
        assert summary["tokens"] == sum(map(len, expected)) and summary["throughput"] > 0
        assert summary["ttft_p50"] <= summary["ttft_p95"] and summary["latency_p95"] >= summary["ttft_p95"]
    with pytest.raises(CheckError, match="rate=0"):
        tr.poisson_trace(prompts, [3], n=2, rate=0)


def test_static_admission_waits_for_the_whole_batch_and_static_batches_say_their_steps(tiny_lm):
    from lmkit.serving import trace as tr

    rng = random.Random(4)
    vocab = tiny_lm.model.config.vocab_size
    prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(2, 20))] for _ in range(5)]
    requests = tr.poisson_trace(prompts, [2, 9], n=6, rate=500.0, seed=2)  # all arrive within milliseconds
    expected = [_alone(tiny_lm, r.prompt_ids, r.max_new_tokens) for r in requests]
    engine = Engine(tiny_lm, max_batch=3, block_size=4, max_len=64)
    served = tr.replay_continuous(engine, requests, policy="static")
    assert [s.output for s in served] == expected
    # static admission: no request is added while another runs, so no step both decodes and reads a new prompt
    assert not any(h["prefill_tokens"] and h["decode_tokens"] for h in engine.history)
    assert max(h["running"] + h["waiting"] for h in engine.history) <= 3
    static = tr.replay_static(tiny_lm, requests, batch_size=3)
    for s in static:
        members = [o for o in static if o.batch == s.batch]
        assert s.batch_steps >= max(len(o.output) for o in members)
        assert len({(o.first_token, o.returned, o.batch_steps) for o in members}) == 1  # one batch, one clock
        assert s.first_token <= s.done <= s.returned
        for o in members:  # a longer reply ends at a later step
            assert (len(o.output) > len(s.output)) <= (o.done > s.done)
    with pytest.raises(CheckError, match="policy='batch'"):
        tr.replay_continuous(engine, requests, policy="batch")


def test_slots_filled_counts_a_shared_block_once(tiny_lm):
    rng = random.Random(8)
    vocab = tiny_lm.model.config.vocab_size
    system = [rng.randrange(3, vocab) for _ in range(8)]  # two full blocks of 4
    engine = Engine(tiny_lm, max_batch=4, block_size=4, num_blocks=64, max_len=64)
    engine.add(system + [5, 6, 7], 6)
    engine.step()  # the first prompt is read, and its two full blocks are named
    engine.add(system + [9, 10], 6)
    engine.step()  # the second takes the two blocks and reads its last 2 tokens
    first, second = engine.requests[0], engine.requests[1]
    assert first.blocks[:2] == second.blocks[:2] and second.prefix_hit_tokens == 8
    last = engine.history[-1]
    assert last["tokens_held"] == first.n_cached + second.n_cached
    assert last["slots_filled"] == last["tokens_held"] - 8  # the shared 8 counted once
    assert last["blocks_in_use"] * 4 >= last["slots_filled"]
    engine.run()
    engine.allocator.check_no_leak()


def test_user_turns_are_the_workbook_prompts():
    from lmkit.serving import user_turns

    turns = user_turns()
    assert len(turns) == 40 and len(set(turns)) == 40 and all(isinstance(t, str) and t.strip() for t in turns)


def test_a_request_refused_for_want_of_blocks_counts_its_prefix_hits_once(tiny_lm):
    rng = random.Random(11)
    vocab = tiny_lm.model.config.vocab_size
    shared = [rng.randrange(3, vocab) for _ in range(8)]  # two full blocks of 4
    long_a = shared + [rng.randrange(3, vocab) for _ in range(34)]  # 42 tokens: 11 of the 16 blocks
    long_b = shared + [rng.randrange(3, vocab) for _ in range(24)]  # 32 tokens: 8 blocks, 2 of them shared
    engine = Engine(tiny_lm, max_batch=2, block_size=4, num_blocks=16, max_len=64)
    a = engine.add(long_a, 20)
    engine.step()  # A's prompt is read and its full blocks named
    b = engine.add(long_b, 4)
    steps_waiting = 0
    while engine.requests[b].first_token is None:
        engine.step()
        steps_waiting += engine.requests[b] in engine.waiting
    engine.run()
    assert steps_waiting >= 2  # B was refused several times while A held the pool
    assert engine.requests[b].prefix_hit_tokens == 8  # counted at its admission, not at every refusal
    assert engine.requests[b].output == _alone(tiny_lm, long_b, 4) and engine.requests[a].output == \
        _alone(tiny_lm, long_a, 20)
    last = engine.history[-1]
    assert last["seconds"] > 0 and set(last) >= {"reserved", "lengths", "slots_filled"}
    busy = [h for h in engine.history if h["lengths"]]
    assert all(h["reserved"] >= sum(h["lengths"]) for h in busy)  # a reservation covers what is held
    engine.allocator.check_no_leak()
