"""lmkit.profile: timing statistics, memory figures, ceilings, bytes/FLOPs formulas and the KV cache (notebook 08)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lmkit import profile as P
from lmkit.transformers_compat import returned_cache, with_cache


# ----------------------------------------------------------------------------------------------- statistics
def test_percentile_matches_numpy():
    rng = np.random.default_rng(0)
    values = rng.exponential(size=37).tolist()
    for q in (0, 10, 50, 90, 100, 33.3):
        assert P.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError, match="no values"):
        P.percentile([], 50)
    with pytest.raises(ValueError, match="q=150"):
        P.percentile([1.0], 150)


def test_timing_statistics():
    t = P.Timing([0.4, 0.1, 0.3, 0.2, 10.0], "x")
    assert t.median == 0.3
    assert t.min == 0.1
    assert t.p10 == pytest.approx(np.percentile(t.times, 10))
    assert t.p90 == pytest.approx(np.percentile(t.times, 90))
    assert t.spread == pytest.approx((t.p90 - t.p10) / 0.3)
    assert "median 300.0 ms" in repr(t) and "n=5" in repr(t)


def test_time_fn_warms_up_and_repeats(monkeypatch):
    clock = [100.0]  # a clock that only the timed function moves: each call takes a known time
    durations = iter([50.0, 60.0, 1.0, 2.0, 3.0, 4.0])  # two warm-up calls, then four repeats
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    calls = []

    def fn():
        calls.append(clock[0])
        clock[0] += next(durations)

    t = P.time_fn(fn, repeats=4, warmup=2)
    assert len(calls) == 6
    assert t.times == [1.0, 2.0, 3.0, 4.0]  # each repeat's own duration; the warm-ups are not timed


def test_time_fn_measures_sleep():
    t = P.time_fn(lambda: time.sleep(0.02), repeats=3, warmup=0)
    assert t.min >= 0.02  # a sleep never returns early; no upper bound (shared machine)


def test_time_fn_rejects_bad_counts():
    with pytest.raises(ValueError, match="repeats=0"):
        P.time_fn(lambda: None, repeats=0)
    with pytest.raises(ValueError, match="warmup=-1"):
        P.time_fn(lambda: None, warmup=-1)


def test_interleave_runs_round_robin():
    order = []
    res = P.interleave({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1,
                       progress=False)
    assert order == ["a", "b"] + ["a", "b"] * 3
    assert set(res) == {"a", "b"} and all(len(t.times) == 3 and t.label == k for k, t in res.items())
    with pytest.raises(ValueError, match="no configurations"):
        P.interleave({})


# ----------------------------------------------------------------------------------------------- memory
def test_peak_memory_sees_an_allocation():
    def grow():  # 64 MiB of fresh pages, touched, freed on return: no sleep, no sampler to wait for
        import mmap  # mmap, not torch: an allocator may hand back pages that earlier tests freed but kept resident

        n = 64 * 2**20
        buf = mmap.mmap(-1, n)
        for i in range(0, n, mmap.PAGESIZE):
            buf[i] = 1
        buf.close()

    with P.PeakMemory() as mem:
        grow()
    assert mem.start > 0 and mem.peak >= mem.start
    assert mem.delta >= 60 * 2**20  # the kernel's peak-RSS counter saw every page
    assert mem.method == ("hwm" if P.hwm_supported() else "sample")


def test_peak_memory_grows_with_the_allocation():
    deltas = []
    for mib in (16, 128):
        # release=True: freed heap pages left resident by earlier tests in this worker would otherwise serve the
        # allocation without any RSS growth (a delta of 0 was seen when this file followed the real-model tests)
        with P.PeakMemory(release=True) as mem:
            x = torch.ones(mib * 2**20 // 4)
            del x
        deltas.append(mem.delta)
    assert deltas[1] > deltas[0]
    if P.hwm_supported():  # RSS grows by the pages newly touched: free heap pages already resident are reused,
        # so a delta can fall short of the allocation (14.6 of 16 MiB seen in CI); three quarters must show
        assert deltas[0] >= 12 * 2**20 and deltas[1] >= 96 * 2**20


@pytest.mark.skipif(not P.hwm_supported(), reason="needs Linux's /proc/self/clear_refs")
def test_peak_memory_nested_blocks_keep_the_outer_peak():
    with P.PeakMemory(release=True) as outer:
        x = torch.ones(96 * 2**20 // 4)
        del x
        with P.PeakMemory(release=True) as inner:  # its reset of the kernel counter must not hide the 96 MiB from `outer`
            y = torch.ones(16 * 2**20 // 4)
            del y
    assert 12 * 2**20 <= inner.delta < 90 * 2**20  # 12: already-resident free heap pages may serve part of 16 MiB
    assert outer.delta >= 95 * 2**20


def test_peak_memory_sampler_fallback():
    with P.PeakMemory(method="sample", interval=0.001) as mem:
        x = torch.ones(64 * 2**20 // 4)
        deadline = time.perf_counter() + 5
        while mem.peak - mem.start < 32 * 2**20 and time.perf_counter() < deadline:
            time.sleep(0.01)  # hold the allocation until the thread has sampled it (or give up after 5 s)
        del x
    assert mem.method == "sample" and mem.delta >= 32 * 2**20
    with pytest.raises(ValueError, match="method='bogus'"):
        P.PeakMemory(method="bogus")


# ----------------------------------------------------------------------------------------------- ceilings
def test_memory_bandwidth_counts_read_and_write():
    bw, t = P.memory_bandwidth(8 * 2**20, repeats=3)
    assert bw == pytest.approx(2 * 8 * 2**20 / t.median)
    assert bw > 1e8  # any machine copies faster than 100 MB/s
    with pytest.raises(ValueError, match="n_bytes=1000"):
        P.memory_bandwidth(1000)


def test_memory_bandwidth_read_counts_the_bytes_read_once():
    bw, t = P.memory_bandwidth(8 * 2**20, repeats=3, kind="read")
    assert t.label == "read (sum)" and len(t.times) == 3
    assert bw == pytest.approx(8 * 2**20 / t.median)  # read only: one pass over the buffer, nothing written
    assert bw > 1e8
    with pytest.raises(ValueError, match="kind='write'"):
        P.memory_bandwidth(8 * 2**20, kind="write")


def test_matmul_throughput_counts_2n3():
    flops, t = P.matmul_throughput(torch.float32, n=128, repeats=3)
    assert flops == pytest.approx(2 * 128**3 / t.median)
    auto, t_auto = P.matmul_throughput(torch.float32, max_n=256, repeats=2)
    assert auto > 0 and ("128" in t_auto.label or "256" in t_auto.label)
    with pytest.raises(ValueError, match="n=0"):
        P.matmul_throughput(n=0)


# ----------------------------------------------------------------------------------------------- bytes, FLOPs, KV
def test_weight_bytes_counts_tied_weights_once(tiny_lm):
    import copy

    m = copy.deepcopy(tiny_lm.model)  # a copy: casting the shared model to bf16 and back would round its weights
    assert m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr()
    n = sum(p.numel() for p in m.parameters())
    assert P.weight_bytes(m) == 4 * n
    assert P.weight_bytes(m.to(torch.bfloat16)) == 2 * n


def test_weight_bytes_of_dynamic_int8(tiny_lm):
    import copy

    m = tiny_lm.model
    q = P.quantize_int8(copy.deepcopy(m))
    linear_w = sum(mod.in_features * mod.out_features for mod in m.modules() if isinstance(mod, torch.nn.Linear))
    # the int8 model stores every Linear weight in 1 byte instead of 4 (the embedding stays fp32)
    assert P.weight_bytes(m) - P.weight_bytes(q) >= 3 * linear_w - 4 * m.config.vocab_size * m.config.hidden_size
    assert P.weight_bytes(q) < P.weight_bytes(m)
    assert P.matmul_params(q) == P.matmul_params(m)
    # tied fp32: the embedding is the head, read in full; int8: the fp32 table beside the int8 head is only looked up
    c = m.config
    assert P.lookup_only_bytes(m) == 0
    assert P.lookup_only_bytes(q) == (c.vocab_size - 1) * c.hidden_size * 4
    assert P.decode_bytes(q, 0) == P.weight_bytes(q) - P.lookup_only_bytes(q)


def test_matmul_params_and_decode_flops(tiny_lm):
    m, c = tiny_lm.model, tiny_lm.model.config
    norms = sum(p.numel() for name, p in m.named_parameters() if "norm" in name)
    assert P.matmul_params(m) == sum(p.numel() for p in m.parameters()) - norms  # tied: embedding == head
    head_dim = c.hidden_size // c.num_attention_heads
    assert P.decode_flops(m, 10) - P.decode_flops(m, 0) == 4 * c.num_hidden_layers * c.num_attention_heads * head_dim * 10


def test_prefill_flops_count_the_output_head_once_as_generate_runs_it(tiny_lm):
    m, c = tiny_lm.model, tiny_lm.model.config
    head = c.vocab_size * c.hidden_size
    layers_only = P.decode_flops(m, 8) - 2 * head  # one token through every layer, attention over 8 keys
    assert P.prefill_flops(m, 16) == 16 * layers_only + 2 * head
    assert P.prefill_flops(m, 16, all_logits=True) == 16 * P.decode_flops(m, 8)
    assert P.prefill_flops(m, 0) == 0
    with pytest.raises(ValueError, match="prompt_tokens=-1"):
        P.prefill_flops(m, -1)
    # generate() really computes the logits of the last position only, during the prefill too
    ids = torch.randint(3, c.vocab_size, (1, 6))
    shapes = []
    hook = m.lm_head.register_forward_hook(lambda mod, args, out: shapes.append(tuple(out.shape)))
    try:
        m.generate(ids, max_new_tokens=1, do_sample=False)
    finally:
        hook.remove()
    assert shapes == [(1, 1, c.vocab_size)], shapes


def test_kv_formula_matches_a_real_cache(tiny_lm):
    m, c = tiny_lm.model, tiny_lm.model.config
    for batch, T in [(1, 1), (1, 7), (3, 12)]:
        ids = torch.randint(0, c.vocab_size, (batch, T))
        with torch.inference_mode():
            cache = returned_cache(m(ids, use_cache=True))
        head_dim = c.hidden_size // c.num_attention_heads
        expected = c.num_hidden_layers * 2 * c.num_key_value_heads * head_dim * T * batch * 4
        assert P.cache_bytes(cache) == P.kv_cache_bytes(c, T, batch=batch) == expected


def test_kv_cache_grows_by_the_formula_per_generated_token(tiny_lm):
    m, c = tiny_lm.model, tiny_lm.model.config
    ids = torch.randint(3, c.vocab_size, (1, 5))
    with torch.inference_mode():
        out = m(ids, use_cache=True)
        sizes = [P.cache_bytes(returned_cache(out))]
        for _ in range(4):
            out = m(out.logits[:, -1:].argmax(-1), **with_cache(m, returned_cache(out)), use_cache=True)
            sizes.append(P.cache_bytes(returned_cache(out)))
    steps = np.diff(sizes)
    assert (steps == P.kv_cache_bytes(c, 1)).all()


def test_kv_formula_rejects_bad_input(tiny_lm):
    with pytest.raises(ValueError, match="tokens=-1"):
        P.kv_cache_bytes(tiny_lm.model.config, -1)
    with pytest.raises(ValueError, match="not a transformers Cache"):
        P.cache_bytes(object())


def test_bounds(tiny_lm):
    m = tiny_lm.model
    bw = 10e9
    assert P.decode_bound(bw, m, 0) == pytest.approx(bw / P.weight_bytes(m))
    # a longer context reads a larger cache: slower; a batch shares the weights: faster in total
    assert P.decode_bound(bw, m, 100) < P.decode_bound(bw, m, 0)
    assert P.decode_bound(bw, m, 10, batch=4) > P.decode_bound(bw, m, 10)
    assert P.prefill_bound(1e9, bw, m, 64) >= P.prefill_bound(1e9, bw, m, 8)
    assert P.share_of_bound(5, 10) == 0.5


def test_roofline_point_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    p = P.RooflinePoint("decode", flops=2e8, bytes=4e8, per_s=10)
    assert p.intensity == 0.5 and p.flops_per_s == 2e9
    assert p.share(peak_flops=100e9, bandwidth=20e9) == pytest.approx(2e9 / (0.5 * 20e9))
    assert p.share(peak_flops=1e9, bandwidth=20e9) == pytest.approx(2.0)  # above a too-low roof: > 1
    ax = P.plot_roofline({"fp32": 50e9}, 20e9, [p])
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert len(ax.get_lines()) == 3  # memory slope, one roof, one point
    with pytest.raises(ValueError, match="at least one peak"):
        P.plot_roofline({}, 1e9)


# ----------------------------------------------------------------------------------------------- generation
def test_time_generation_on_tiny_model(tiny_lm):
    ids = torch.tensor([[5, 6, 7, 8]])
    s = P.time_generation(tiny_lm, ids, 6, memory=True)
    assert s.new_tokens == 6 and len(s.latencies) == 5 and s.batch == 1 and s.prompt_tokens == 4
    assert all(b >= a for a, b in zip(s.stamps, s.stamps[1:]))  # time moves forward
    assert s.total_s >= s.stamps[-1] > 0
    assert s.decode_tok_s == pytest.approx(5 / (s.stamps[-1] - s.stamps[0]))
    assert s.p50_s <= s.p90_s
    assert s.peak_bytes > 0
    # the timed run generates exactly what greedy model.generate does
    ref = tiny_lm.model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert s.tokens == ref[:, 4:].tolist()


def test_time_generation_batch(tiny_lm):
    ids = torch.tensor([[5, 6, 7], [9, 10, 11]])
    s = P.time_generation(tiny_lm.model, ids, 4, attention_mask=torch.ones_like(ids))
    assert s.batch == 2 and s.new_tokens == 4 and len(s.tokens) == 2
    assert s.decode_tok_s == pytest.approx(2 * 3 / (s.stamps[-1] - s.stamps[0]))
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        P.time_generation(tiny_lm, ids, 0)


def test_time_steps_and_compare_generation(tiny_lm):
    s = P.time_steps(iter(range(5)))
    assert s.new_tokens == 5 and s.tokens == list(range(5))
    with pytest.raises(ValueError, match="no token"):
        P.time_steps(iter([]))
    ids = torch.tensor([[5, 6, 7]])
    df = P.compare_generation({"cache": (tiny_lm.model, {}), "no cache": (tiny_lm.model, {"use_cache": False})},
                              ids, 3, repeats=2, warmup=0, progress=False)
    assert list(df.index) == ["cache", "no cache"]
    assert (df["decode tok/s"] > 0).all() and (df["p10 tok/s"] <= df["p90 tok/s"]).all()
    assert all(len(v) == 2 for v in df.attrs["runs"].values())


def test_decode_step_does_the_same_work_each_call(tiny_lm):
    ids = torch.tensor([[5, 6, 7, 8]])
    step = P.decode_step(tiny_lm, ids)
    first = step()
    second = step()
    assert returned_cache(first).get_seq_length() == returned_cache(second).get_seq_length() == 5
    assert torch.allclose(first.logits, second.logits)
    with torch.inference_mode():
        full = tiny_lm.model(torch.cat([ids, tiny_lm.model(ids).logits[:, -1:].argmax(-1)], 1)).logits[:, -1]
    assert torch.allclose(second.logits[:, -1], full, atol=1e-5)  # the step equals a full forward's last position


# ----------------------------------------------------------------------------------------------- profiler
def test_top_operators_and_breakdown(tiny_lm):
    step = P.decode_step(tiny_lm, torch.tensor([[5, 6, 7]]))
    df = P.top_operators(step, row_limit=5)
    assert len(df) == 5 and list(df.columns)[:3] == ["operator", "calls", "self ms"]
    assert (df["self ms"].diff().dropna() <= 0).all()  # sorted by self time
    assert df.attrs["wall_ms"] > 0
    bd = P.step_breakdown(step)
    assert bd["ops"] > 10 and bd["matmul"] > 0 and bd["wall"] > 0
    assert bd["matmul"] + bd["other ops"] + bd["outside ops"] >= bd["wall"] * 0.999
    med = P.step_breakdown(step, repeats=3)
    assert med["unprofiled wall"] > 0 and med["ops"] == bd["ops"]
    with pytest.raises(ValueError, match="repeats=0"):
        P.step_breakdown(step, repeats=0)
    assert P.op_dispatch_cost(repeats=200) > 0


@pytest.mark.integration
def test_real_model_kv_and_weights(real_lm):
    m, c = real_lm.model, real_lm.model.config
    assert P.weight_bytes(m) == 4 * sum(p.numel() for p in m.parameters())  # ≈ 538 MB in fp32
    assert P.kv_cache_bytes(c, 1) == 30 * 2 * 3 * 64 * 4  # 46,080 bytes per token
    with torch.inference_mode():
        cache = returned_cache(m(real_lm.encode("To be, or not to be"), use_cache=True))
    assert P.cache_bytes(cache) == P.kv_cache_bytes(c, cache.get_seq_length())


# ----------------------------------------------------------------------------------------------- lean decode loop
@pytest.mark.parametrize("static", [True, False])
def test_lean_decoder_matches_generate(tiny_lm, static):
    ids = torch.tensor([[5, 6, 7, 8]])
    ref = tiny_lm.model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False)[:, 4:].tolist()
    dec = P.LeanDecoder(tiny_lm, static=static)
    s = dec(ids, 6)
    assert s.tokens == ref and s.new_tokens == 6 and s.prompt_tokens == 4 and dec.compile_s == 0
    assert s.decode_tok_s > 0 and all(b >= a for a, b in zip(s.stamps, s.stamps[1:]))
    assert dec(ids, 6).tokens == ref  # a fresh cache every call


def test_lean_decoder_freezes_only_its_own_compile(tiny_lm, monkeypatch):
    import torch._inductor.config as inductor_config
    import torch._inductor.freezing as freezing

    frozen, freeze = [], freezing.freeze
    monkeypatch.setattr(freezing, "freeze", lambda *a, **k: frozen.append(1) or freeze(*a, **k))
    before = inductor_config.freezing
    ids = torch.tensor([[5, 6, 7, 8]])
    ref = tiny_lm.model.generate(ids, max_new_tokens=3, min_new_tokens=3, do_sample=False)[:, 4:].tolist()
    torch._dynamo.reset()
    try:
        dec = P.LeanDecoder(tiny_lm, compile=True, freeze=True)
        assert inductor_config.freezing == before  # building it changes no process-wide setting
        with torch.inference_mode():
            assert dec(ids, 3).tokens == ref
    finally:
        torch._dynamo.reset()
    assert frozen, "freeze=True did not freeze the compiled step"
    assert inductor_config.freezing == before  # nor does compiling and running it


def test_lean_decoder_rejects_bad_input(tiny_lm):
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        P.LeanDecoder(tiny_lm)(torch.tensor([[5, 6]]), 0)
    with pytest.raises(ValueError, match="exceed the static cache of 4"):
        P.LeanDecoder(tiny_lm, context_length=4)(torch.tensor([[5, 6, 7]]), 3)
    with pytest.raises(ValueError, match="compile=True needs static=True"):
        P.LeanDecoder(tiny_lm, static=False, compile=True)


# ----------------------------------------------------------------------------------------------- exercises
def test_exercise_05_1_kv_bytes(tiny_lm, monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    c = tiny_lm.model.config
    right = P.kv_cache_bytes(c, 2048, batch=4, dtype=torch.bfloat16)
    assert exercises.check("08.1", right, config=c)
    assert not exercises.check("08.1", right * 2, config=c)  # fp32 values
    assert not exercises.check("08.1", right * c.num_attention_heads // c.num_key_value_heads, config=c)  # no GQA


def test_exercise_05_2_decode_bound(tiny_lm, monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    import copy

    m = tiny_lm.model
    bf = P.decode_bound(20e9, copy.deepcopy(m).to(torch.bfloat16), 256)  # a copy: never round the shared model
    assert exercises.check("08.2", bf, model=m, bandwidth=20e9)
    assert not exercises.check("08.2", bf / 2, model=m, bandwidth=20e9)  # fp32 bytes
    assert not exercises.check("08.2", 20e9 / (2 * P.weight_bytes(m)), model=m, bandwidth=20e9)


def test_exercise_05_3_seven_b(monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    bw = 25e9
    q4_1 = 7e9 * (4 + 32 / 32) / 8  # Q4_1: 5 bits per weight (4-bit values + an fp16 scale and minimum per 32)
    assert exercises.check("08.3", (bw / 28e9, bw / 14e9, bw / q4_1), bandwidth=bw)
    assert not exercises.check("08.3", (bw / 28e9, bw / 14e9, bw / 3.5e9), bandwidth=bw)  # 4 bits, no scales
    assert not exercises.check("08.3", (bw / 28e9, bw / 14e9, bw / 7e9), bandwidth=bw)
    assert not exercises.check("08.3", 1.0, bandwidth=bw)


def test_exercise_08_4_plateau(monkeypatch):
    import pandas as pd

    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    sweep = pd.DataFrame({"dtype": ["float32"] * 4 + ["bfloat16"], "n": [64, 256, 1024, 2048, 64],
                          "GFLOP/s": [40.0, 95.0, 100.0, 98.0, 500.0]})
    assert exercises.check("08.4", 256, sweep=sweep)
    assert not exercises.check("08.4", 1024, sweep=sweep)  # the peak's size, not the first within 90% of it
    assert not exercises.check("08.4", 64, sweep=sweep)  # bf16's rows do not count


def test_matmul_sweep_interleaves_sizes_and_counts_2n3():
    df = P.matmul_sweep((torch.float32,), (16, 64), repeats=3, min_time=0.002)
    assert list(df["n"]) == [16, 64] and (df["dtype"] == "float32").all()
    t = df.attrs["timings"][("float32", 64)]
    assert len(t.times) == 3
    assert df.loc[df["n"] == 64, "GFLOP/s"].item() == pytest.approx(2 * 64**3 / t.median / 1e9)
    assert (df["p10 GFLOP/s"] <= df["GFLOP/s"]).all() and (df["GFLOP/s"] <= df["p90 GFLOP/s"]).all()
    assert (df["products per sample"] >= 1).all()
    # a size whose one product exceeds max_time ends that dtype's sweep
    assert list(P.matmul_sweep((torch.float32,), (16, 64, 128), repeats=1, max_time=0.0)["n"]) == [16]
    with pytest.raises(ValueError, match="repeats"):
        P.matmul_sweep(repeats=0)
    with pytest.raises(ValueError, match="size"):
        P.matmul_sweep(sizes=(0,))


def test_compare_configs_and_timings_use_the_paired_rounds():
    from lmkit.profile.generation import GenerationStats

    def stats(tok_s):
        return SimpleNamespace(decode_tok_s=tok_s, ttft_s=0.01, p50_s=1 / tok_s, p90_s=1 / tok_s, total_s=1.0)

    fast = iter([30.0, 20.0, 40.0, 25.0])
    slow = iter([29.0, 19.0, 39.0, 24.0])  # 1 tok/s slower in every round, whatever the round's load
    table = P.compare_runs({"fast": lambda: stats(next(fast)), "slow": lambda: stats(next(slow))},
                           repeats=4, warmup=0, progress=False)
    c = P.compare_configs(table, "fast", "slow")
    assert c.verdict == "higher" and c.diff == pytest.approx(1.0) and c.paired and c.n_a == 4
    vs = P.compare_table(table, "slow")
    assert list(vs.index) == ["fast"] and vs.loc["fast", "verdict"] == "higher" and vs.loc["fast", "CI low"] > 0
    same = P.compare_runs({"a": lambda: stats(20.0), "b": lambda: stats(20.0)}, repeats=3, warmup=0, progress=False)
    assert P.compare_configs(same, "a", "b").verdict == "cannot be told apart"
    with pytest.raises(ValueError, match="'nope' is not in the table"):
        P.compare_configs(table, "fast", "nope")
    with pytest.raises(ValueError, match="quantity"):
        P.compare_configs(table, "fast", "slow", quantity="speed")
    with pytest.raises(ValueError, match="attrs"):
        P.compare_configs({}, "fast", "slow")
    a, b = P.Timing([1.0, 2.0, 3.0], "a"), P.Timing([1.1, 2.1, 3.1], "b")
    assert P.compare_timings(a, b).verdict == "lower"
    assert P.compare_timings(a, b, scale=1e3).diff == pytest.approx(-100.0)
    with pytest.raises(ValueError, match="same interleave"):
        P.compare_timings(a, P.Timing([1.0, 2.0], "b"))
    assert {"decode_tok_s", "ttft_s", "p50_s", "p90_s", "total_s"} <= set(dir(GenerationStats))  # as the real stats


def test_matvec_bandwidth_counts_the_weight_bytes():
    bw, t = P.matvec_bandwidth(4096, 256, repeats=3)
    assert bw == pytest.approx(4096 * 256 * 4 / t.median) and bw > 1e8
    assert "matrix-vector" in t.label


def test_compare_runs_interleaves_and_tabulates():
    order = []

    def fake(name, gap):
        def run():
            order.append(name)
            return P.GenerationStats([0.1 + gap * i for i in range(5)])
        return run

    df = P.compare_runs({"fast": fake("fast", 0.01), "slow": fake("slow", 0.1)}, repeats=3, warmup=1, progress=False)
    assert order == ["fast", "slow"] + ["fast", "slow"] * 3
    assert df.loc["fast", "decode tok/s"] == pytest.approx(100) and df.loc["slow", "decode tok/s"] == pytest.approx(10)
    assert df.loc["fast", "ttft ms"] == pytest.approx(100)
    with pytest.raises(ValueError, match="no functions"):
        P.compare_runs({})


def test_time_llama_cpp_with_a_fake_engine():
    class FakeLlama:
        def tokenize(self, text):
            return list(text)

        def __call__(self, prompt, max_tokens, **kw):
            assert kw["temperature"] == 0.0 and kw["stream"]
            for i in range(max_tokens):
                time.sleep(0.001)
                yield {"choices": [{"text": str(i), "finish_reason": None}]}
            yield {"choices": [{"text": "", "finish_reason": "length"}]}  # as llama-cpp-python ends a stream

    s = P.time_llama_cpp(FakeLlama(), "abc", 5)
    assert s.new_tokens == 5 and s.prompt_tokens == 3 and s.decode_tok_s > 0


# ----------------------------------------------------------------------------------------------- native code in a child
FAKE_LLAMA = '''
import os, signal, time

MODE = os.environ.get("FAKE_LLAMA_MODE", "ok")


class Llama:
    def __init__(self, model_path, n_threads=None, n_ctx=512, verbose=False):
        if MODE == "crash_on_load":
            os.kill(os.getpid(), signal.SIGSEGV)
        self.calls = 0

    def tokenize(self, text):
        return list(text)

    def __call__(self, prompt, max_tokens, **kw):
        self.calls += 1
        if MODE == "sigill" or MODE == "sigill_second" and self.calls == 2:
            os.kill(os.getpid(), signal.SIGILL)  # as a wheel built for AMX does on an older CPU
        if MODE == "hang":
            time.sleep(60)
        for i in range(max_tokens):
            time.sleep(0.001)
            yield {"choices": [{"text": str(i), "finish_reason": None}]}
        yield {"choices": [{"text": "", "finish_reason": "length"}]}
'''


@pytest.fixture
def fake_llama_cpp(tmp_path, monkeypatch):
    """A stand-in ``llama_cpp`` package on sys.path (the spawned child inherits it); mode set per test."""
    pkg = tmp_path / "fakelib" / "llama_cpp"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_LLAMA)
    monkeypatch.syspath_prepend(str(tmp_path / "fakelib"))
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")

    def start(mode="ok", **kw):
        monkeypatch.setenv("FAKE_LLAMA_MODE", mode)
        return P.LlamaCpp(model, **kw)

    return start


def test_llama_cpp_in_a_child_times_like_in_process(fake_llama_cpp):
    with fake_llama_cpp("ok") as llm:
        s = P.time_llama_cpp(llm, "abcd", 6)
        assert s.new_tokens == 6 and s.prompt_tokens == 4 and s.decode_tok_s > 0 and llm.worker.alive


@pytest.mark.parametrize("mode, signal_name, code", [("sigill", "SIGILL", 132), ("sigill_second", "SIGILL", 132)])
def test_a_native_crash_is_one_line_with_the_fix_and_earlier_results_stay(fake_llama_cpp, mode, signal_name, code):
    llm = fake_llama_cpp(mode)
    calls = []

    def torch_run():
        calls.append(1)
        return P.GenerationStats([0.1, 0.2, 0.3])

    df = P.compare_runs({"torch": torch_run, "llama.cpp": lambda: P.time_llama_cpp(llm, "abc", 4)},
                        repeats=3, warmup=1, progress=False)
    assert list(df.index) == ["torch"] and len(calls) == 4  # every round of the survivor was measured
    assert df.loc["torch", "decode tok/s"] == pytest.approx(10)
    message = df.attrs["failed"]["llama.cpp"]
    assert f"{signal_name} (exit code {code})" in message and '-DGGML_NATIVE=OFF' in message and "\n" not in message
    with pytest.raises(P.ChildCrashed, match="earlier"):  # the worker stays dead, and says so
        llm("abc", 2)
    llm.close()


def test_a_crash_while_loading_and_a_hang_are_one_line(fake_llama_cpp):
    with pytest.raises(P.ChildCrashed, match=r"llama\.cpp ended its process while starting: SIGSEGV \(exit code 139\)"):
        fake_llama_cpp("crash_on_load")
    llm = fake_llama_cpp("hang", timeout=3)
    start = time.perf_counter()
    with pytest.raises(P.ChildCrashed, match=r"gave no answer within 3 s .* larger timeout") as err:
        llm("abc", 2)
    assert time.perf_counter() - start < 20 and not llm.worker.alive and "\n" not in str(err.value)


def test_describe_exit():
    assert P.isolated.describe_exit(-4, {4: "rebuild"}) == "SIGILL (exit code 132): rebuild"
    assert P.isolated.describe_exit(-11) == "SIGSEGV (exit code 139)"
    assert P.isolated.describe_exit(3) == "exit code 3"


def test_timed_greedy_stamps_every_token_and_checks_its_count():
    fed = []

    def prefill():
        return torch.tensor([[7], [8]])

    def step(ids, i):
        fed.append((ids.tolist(), i))
        return ids + 1

    s = P.timed_greedy(prefill, step, 4, prompt_shape=(2, 5))
    assert s.tokens == [[7, 8, 9, 10], [8, 9, 10, 11]] and s.new_tokens == 4 and (s.batch, s.prompt_tokens) == (2, 5)
    assert [i for _, i in fed] == [0, 1, 2] and fed[0][0] == [[7], [8]]
    assert s.stamps == sorted(s.stamps) and s.total_s == s.stamps[-1]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="generate at least 1 token"):
            P.timed_greedy(prefill, step, bad, prompt_shape=(2, 5))


def test_peak_memory_release_first_then_measures(tmp_path):
    with P.PeakMemory(release=True) as m:
        block = torch.ones(8 * 2**20 // 4)  # 8 MiB, touched
        block += 1
    assert m.release and m.peak >= m.start and m.delta >= 0
    if P.hwm_supported():
        assert m.delta >= 0.75 * block.nbytes


# ------------------------------------------------------------ every count and number goes through lmkit.checks
@pytest.mark.parametrize("bad", [True, 2.7, float("nan")])
def test_profile_counts_refuse_bools_fractions_and_nan_in_one_line(tiny_lm, bad):
    cfg = tiny_lm.model.config
    calls = {
        "tokens": lambda: P.kv_cache_bytes(cfg, bad),
        "batch": lambda: P.kv_cache_bytes(cfg, 4, batch=bad),
        "prompt_tokens": lambda: P.prefill_flops(tiny_lm.model, bad),
        "repeats": lambda: P.time_fn(lambda: None, repeats=bad),
        "warmup": lambda: P.time_fn(lambda: None, warmup=bad),
        "n": lambda: P.matmul_throughput(n=bad),
        "max_new_tokens": lambda: P.time_generation(tiny_lm, "the cat", max_new_tokens=bad),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=f"{name}=") as err:
            call()
        assert "\n" not in str(err.value)
    if isinstance(bad, float) and bad != bad:  # NaN is not a percentile either
        with pytest.raises(ValueError, match="q=nan"):
            P.percentile([1.0, 2.0], bad)
