"""Serving a Poisson trace on a CPU: static batching against lmkit's continuous batching over a paged KV cache,
and transformers' own continuous batching on the same requests (notebook 09, serving many users).

For each offered load (``--rates``, requests per second) ``--seeds`` traces of ``--n`` requests are drawn (prompts:
:func:`lmkit.serving.user_turns` in the chat template, so every prompt opens with the same system prompt, and the 20
instructions with the same sentence; budgets 16 to 96 new tokens) and each is replayed in wall-clock time under
three policies, back to back on the same trace, in an order that rotates with the seed:

- **static (transformers)**: ``model.generate`` (SDPA attention) on left-padded batches of up to ``--batch``
  requests, a batch starting when the previous one ends (:func:`lmkit.serving.replay_static`): what a script that
  batches requests does;
- **static (engine)**: :class:`lmkit.serving.Engine` with static admission (a batch is admitted only when the last
  one is done; early finishers leave the pass): the same kernels as the next line, so the two differ only in
  scheduling (:func:`lmkit.serving.replay_continuous` with ``policy="static"``);
- **continuous**: the engine with ``max_batch=--batch``, requests joining at the first step after they arrive.

Per run: each request's arrival, TTFT, TPOT, latency (to its last token, for static batching too) and output
length (for the notebook's plots and paired comparisons), p50/p95 and throughput; for the continuous run the KV
memory the pages held against the token slots they filled (a shared prefix block counted once) and against a
contiguous cache reserved for ``--batch`` sequences of the context, and the prompt tokens that prefix caching saved.
Then, ``--rounds`` interleaved rounds of transformers' ``generate_batch`` (continuous batching, every request given at
t = 0, each setting warmed up first; its default ``ContinuousBatchingConfig`` and one matched to the engine: 8
requests and 256 tokens per step) and the engine on the same requests, for their throughput ratio with an interval
(:func:`lmkit.stats.compare`); and
``2 * --rounds`` interleaved rounds of reading every prompt of that trace (one new token each) with and without
prefix caching, for the prompt tokens and the seconds it saves.

    .venv/bin/python benchmarks/serving.py [--rates 1 2 4] [--seeds 3] [--n 24] [--batch 8] [--rounds 3] [--threads N]

Writes benchmarks/results/serving.json and prints a table. About 15 minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BUDGETS = [16, 32, 48, 64, 96]
POLICIES = ("static_hf", "static_engine", "continuous")


def prompts(lm) -> list[list[int]]:
    """The ids of :func:`lmkit.serving.user_turns` in the model's chat template."""
    from lmkit.decoding.settings import prompt_ids
    from lmkit.serving import user_turns

    return [prompt_ids(lm, u, chat=True)[0].tolist() for u in user_turns()]


def per_request(served) -> list[dict]:
    return [{"arrival": s.arrival, "ttft": s.ttft, "tpot": s.tpot, "latency": s.latency, "tokens": len(s.output)}
            for s in served]


def paging(engine, batch: int) -> dict:
    """KV memory of the engine's run: blocks in use against the slots they filled, over the steps that held any."""
    busy = [h for h in engine.history if h["slots_filled"]]
    bs = engine.block_size
    return {"block_size": bs,
            "held_over_filled": sum(h["blocks_in_use"] * bs for h in busy) / sum(h["slots_filled"] for h in busy),
            "peak_block_slots": max(h["blocks_in_use"] for h in busy) * bs,
            "peak_slots_filled": max(h["slots_filled"] for h in busy),
            "peak_tokens_held": max(h["tokens_held"] for h in busy),
            "contiguous_slots": batch * engine.max_len,
            "prompt_tokens": sum(len(r.prompt) for r in engine.requests.values()),
            "prefix_hit_tokens": sum(r.prefix_hit_tokens for r in engine.requests.values()),
            "prefill_tokens_computed": sum(h["prefill_tokens"] for h in engine.history),
            "preemptions": sum(r.preempted for r in engine.requests.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    ap.add_argument("--seeds", type=int, default=3, help="traces per load (seeds 0, 1, ...)")
    ap.add_argument("--n", type=int, default=24, help="requests per trace")
    ap.add_argument("--batch", type=int, default=8, help="sequences at once, every policy")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the offline comparison")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice); 1 keeps "
                                                                "the run steady when another process shares the cores")
    args = ap.parse_args()
    if args.rounds < 2:
        ap.error(f"--rounds {args.rounds}: an interval needs at least 2 rounds; pass --rounds 3")
    import torch
    from transformers import GenerationConfig

    import lmkit
    from lmkit.decoding.settings import eos_ids
    from lmkit.serving import Engine, latency_summary, poisson_trace, replay_continuous, replay_static
    from lmkit.stats import compare

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    lm = lmkit.load(device="cpu", attn_implementation="sdpa")
    pool = prompts(lm)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
               "python": platform.python_version(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
               "command": "benchmarks/serving.py --rates " + " ".join(f"{r:g}" for r in args.rates)
                          + f" --seeds {args.seeds} --n {args.n} --batch {args.batch} --rounds {args.rounds}"
                          + (f" --threads {args.threads}" if args.threads is not None else ""),
               "n": args.n, "batch": args.batch, "budgets": BUDGETS, "runs": []}
    warm = Engine(lm, max_batch=2)
    warm.add(pool[0], 4)
    warm.run()  # first-call costs (kernels, allocator) out of the measurements
    replay_static(lm, poisson_trace(pool, [4], n=2, rate=100.0, seed=9), batch_size=2)
    for rate in args.rates:
        for seed in range(args.seeds):
            trace = poisson_trace(pool, BUDGETS, n=args.n, rate=rate, seed=seed)
            run, engine = {}, None
            for p in POLICIES[seed % 3:] + POLICIES[:seed % 3]:  # the order rotates with the seed
                if p == "static_hf":
                    run[p] = replay_static(lm, trace, batch_size=args.batch)
                elif p == "static_engine":
                    run[p] = replay_continuous(Engine(lm, max_batch=args.batch), trace, policy="static")
                else:
                    engine = Engine(lm, max_batch=args.batch)
                    run[p] = replay_continuous(engine, trace)
            same = sum(a.output == b.output for a, b in zip(run["static_hf"], run["continuous"]))
            entry = {"rate": rate, "seed": seed, "order": list(run), "same_output": same,
                     "paged": paging(engine, args.batch)}
            for p in POLICIES:
                entry[p] = {"summary": latency_summary(run[p]), "requests": per_request(run[p])}
            results["runs"].append(entry)
            s, e, c = (entry[p]["summary"] for p in POLICIES)
            print(f"rate {rate:g}/s seed {seed}: throughput static(hf) {s['throughput']:.1f}, static(engine) "
                  f"{e['throughput']:.1f}, continuous {c['throughput']:.1f} tok/s (x{c['throughput'] / s['throughput']:.2f}"
                  f" over static hf); TTFT p95 {s['ttft_p95']:.2f} / {e['ttft_p95']:.2f} / {c['ttft_p95']:.2f} s; pages "
                  f"hold {entry['paged']['held_over_filled']:.3f}x the filled slots; same output {same}/{args.n}",
                  flush=True)
    # transformers' continuous batching, offline (every request at t = 0), against the engine given the same
    trace = poisson_trace(pool, BUDGETS, n=args.n, rate=1.0, seed=1)
    ids = [r.prompt_ids for r in trace]
    stop = sorted(eos_ids(lm))
    config = GenerationConfig(max_new_tokens=max(BUDGETS), do_sample=False, eos_token_id=stop,
                              pad_token_id=lm.tokenizer.pad_token_id or stop[0])

    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    matched = ContinuousBatchingConfig(max_requests_per_batch=args.batch, max_batch_tokens=256)

    def theirs(cb_config=None):
        out = lm.model.generate_batch(ids, generation_config=config, continuous_batching_config=cb_config,
                                      progress_bar=False)
        return sum(len(o.generated_tokens) for o in out.values())

    def ours():
        engine = Engine(lm, max_batch=args.batch)
        for r in ids:
            engine.add(r, max(BUDGETS))
        return sum(map(len, engine.run().values()))

    theirs()  # the first call of each setting builds its paged cache and warms up: not measured
    theirs(matched)
    rounds = []
    for _ in range(args.rounds):
        row = {}
        for name, fn in (("transformers", theirs), ("transformers_matched", lambda: theirs(matched)),
                         ("engine", ours)):
            start = time.perf_counter()
            tokens = fn()
            row[name] = {"tokens": tokens, "seconds": time.perf_counter() - start}
        rounds.append(row)
        print("offline round: " + ", ".join(f"{k} {v['tokens'] / v['seconds']:.1f}" for k, v in row.items())
              + " tok/s", flush=True)
    tput = {k: [r[k]["tokens"] / r[k]["seconds"] for r in rounds] for k in rounds[0]}
    c = compare(tput["engine"], tput["transformers"])
    results["offline"] = {"requests": len(ids), "max_new_tokens": max(BUDGETS), "rounds": rounds,
                          "transformers_matched_config": {"max_requests_per_batch": args.batch,
                                                          "max_batch_tokens": 256},
                          "engine_over_transformers": [e / t for e, t in zip(tput["engine"], tput["transformers"])],
                          "difference_tok_s": {"diff": c.diff, "low": c.low, "high": c.high, "verdict": c.verdict}}
    print(f"offline, {len(ids)} requests at once: engine - transformers = {c.diff:.1f} tok/s "
          f"[{c.low:.1f}, {c.high:.1f}] ({c.verdict})")
    # prefix caching: the same prompts read (one new token each), with and without, in interleaved rounds
    def prefill(caching: bool) -> tuple[float, int]:
        engine = Engine(lm, max_batch=args.batch, prefix_caching=caching)
        for r in ids:
            engine.add(r, 1)
        start = time.perf_counter()
        engine.run()
        return time.perf_counter() - start, sum(h["prefill_tokens"] for h in engine.history)

    prefix = {"with": [], "without": []}
    for _ in range(2 * args.rounds):
        for name, caching in (("with", True), ("without", False)):
            prefix[name].append(prefill(caching))
    c = compare([t for t, _ in prefix["with"]], [t for t, _ in prefix["without"]])
    results["prefix_caching"] = {
        "prompt_tokens": sum(map(len, ids)), "computed_with": prefix["with"][0][1],
        "computed_without": prefix["without"][0][1], "seconds_with": [t for t, _ in prefix["with"]],
        "seconds_without": [t for t, _ in prefix["without"]],
        "difference_s": {"diff": c.diff, "low": c.low, "high": c.high, "verdict": c.verdict}}
    print(f"prefix caching: {prefix['with'][0][1]} of {sum(map(len, ids))} prompt tokens computed (without: "
          f"{prefix['without'][0][1]}); reading every prompt took {c.diff:+.3f} s [{c.low:+.3f}, {c.high:+.3f}] "
          f"with it ({c.verdict})")
    out = Path(__file__).resolve().parent / "results" / "serving.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
