"""Serving a Poisson trace on a CPU: static batching against lmkit's continuous batching over a paged KV cache,
and transformers' own continuous batching on the same requests (the serving notebook, to come).

For each offered load (``--rates``, requests per second) one trace of ``--n`` requests is drawn (prompts: the user
turns of ``data/rl`` and ``data/finetune`` in the chat template; budgets 16 to 96 new tokens) and replayed in
wall-clock time, the two policies back to back on the same trace (interleaved, so machine noise hits both alike):

- **static**: ``model.generate`` on left-padded batches of up to ``--batch`` requests, a batch starting when the
  previous one ends (:func:`lmkit.serving.replay_static`);
- **continuous**: :class:`lmkit.serving.Engine` with ``max_batch=--batch`` (:func:`lmkit.serving.replay_continuous`).

Per run: TTFT, TPOT and latency p50/p95, throughput; for the engine also the KV memory the pages held against the
tokens they held, and against a contiguous cache reserved for ``--batch`` sequences of the context. Then
transformers' ``generate_batch`` (continuous batching, all requests given at once, no arrivals) and the engine on the
same requests, all given at once, for their throughput ratio.

    .venv/bin/python benchmarks/serving.py [--rates 0.5 1 2 4] [--n 24] [--batch 8]

Writes benchmarks/results/serving.json and prints a table.
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


def prompts(lm) -> list[list[int]]:
    from lmkit import rl
    from lmkit.finetune.data import format_prompt, load_split

    users = [rl.prompt(i) for i in rl.load_split("validation")[:20]]
    users += [r["prompt"] for r in load_split("train")[:20]]
    tok = lm.tokenizer
    return [tok(format_prompt(tok, u), add_special_tokens=False).input_ids for u in users]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    ap.add_argument("--n", type=int, default=24, help="requests per trace")
    ap.add_argument("--batch", type=int, default=8, help="sequences at once, both policies")
    args = ap.parse_args()
    import torch
    from transformers import GenerationConfig

    import lmkit
    from lmkit.decoding.settings import eos_ids
    from lmkit.serving import Engine, latency_summary, poisson_trace, replay_continuous, replay_static

    lm = lmkit.load(device="cpu")
    pool = prompts(lm)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
               "python": platform.python_version(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
               "command": "benchmarks/serving.py --rates " + " ".join(f"{r:g}" for r in args.rates)
                          + f" --n {args.n} --batch {args.batch}", "runs": []}
    warm = Engine(lm, max_batch=2)
    warm.add(pool[0], 4)
    warm.run()  # first-call costs (kernels, allocator) out of the measurements
    for rate in args.rates:
        trace = poisson_trace(pool, BUDGETS, n=args.n, rate=rate, seed=0)
        static = latency_summary(replay_static(lm, trace, batch_size=args.batch))
        engine = Engine(lm, max_batch=args.batch, block_size=16, max_len=1024)
        served = replay_continuous(engine, trace)
        continuous = latency_summary(served)
        busy = [h for h in engine.history if h["tokens_held"]]
        paged = {"block_size": engine.block_size,
                 "held_over_used": sum(h["blocks_in_use"] * engine.block_size for h in busy)
                 / max(1, sum(h["tokens_held"] for h in busy)),
                 "peak_blocks_tokens": max(h["blocks_in_use"] for h in busy) * engine.block_size,
                 "peak_tokens_held": max(h["tokens_held"] for h in busy),
                 "contiguous_tokens": args.batch * engine.max_len}
        results["runs"].append({"rate": rate, "static": static, "continuous": continuous, "paged": paged})
        print(f"rate {rate:g}/s: throughput static {static['throughput']:.1f}, continuous "
              f"{continuous['throughput']:.1f} tok/s (x{continuous['throughput'] / static['throughput']:.2f}); "
              f"TTFT p95 {static['ttft_p95']:.2f} vs {continuous['ttft_p95']:.2f} s; pages hold "
              f"{paged['held_over_used']:.3f}x the tokens")
    # transformers' continuous batching, offline (every request at t = 0), against the engine given the same
    trace = poisson_trace(pool, BUDGETS, n=args.n, rate=1.0, seed=1)
    ids = [r.prompt_ids for r in trace]
    stop = sorted(eos_ids(lm))
    config = GenerationConfig(max_new_tokens=max(BUDGETS), do_sample=False, eos_token_id=stop,
                              pad_token_id=lm.tokenizer.pad_token_id or stop[0])
    start = time.perf_counter()
    theirs = lm.model.generate_batch(ids, generation_config=config, progress_bar=False)
    theirs_s = time.perf_counter() - start
    theirs_tokens = sum(len(o.generated_tokens) for o in theirs.values())
    engine = Engine(lm, max_batch=args.batch)
    start = time.perf_counter()
    for r in ids:
        engine.add(r, max(BUDGETS))
    ours = engine.run()
    ours_s = time.perf_counter() - start
    ours_tokens = sum(map(len, ours.values()))
    results["offline"] = {"requests": len(ids), "transformers_tokens": theirs_tokens, "transformers_s": theirs_s,
                          "engine_tokens": ours_tokens, "engine_s": ours_s,
                          "engine_over_transformers": (ours_tokens / ours_s) / (theirs_tokens / theirs_s)}
    print(f"offline, {len(ids)} requests at once: transformers generate_batch {theirs_tokens / theirs_s:.1f} tok/s, "
          f"lmkit Engine {ours_tokens / ours_s:.1f} tok/s")
    out = Path(__file__).resolve().parent / "results" / "serving.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
