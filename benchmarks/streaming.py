"""Cost of streaming: lmkit.generate.stream vs model.generate, as a ratio within one run (issue 5; notebook 06).

Both produce the same tokens (greedy, or sampled with the same seed; EOS is switched off so every run makes exactly
``--tokens`` tokens). Runs are interleaved (generate, stream, stream, generate, ...) so that the load of a shared
machine hits both alike; the figure is the median over repeats of the per-repeat ratio of wall times.

    .venv/bin/python benchmarks/streaming.py [--tokens 64] [--repeats 7]

Writes benchmarks/results/streaming.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import lmkit
from lmkit import generate as G
from lmkit.files import atomic_write_text

PROMPT = "The history of the printing press begins"
MODES = {"greedy": dict(), "sampling": dict(do_sample=True, temperature=0.8, top_k=50, top_p=0.95, seed=0)}


def time_generate(lm, ids, tokens: int, settings: dict) -> tuple[float, list[int]]:
    s = G.check_settings(lm, max_new_tokens=tokens, **settings)
    start = time.perf_counter()
    if s.seed is not None:
        torch.manual_seed(s.seed)
    with torch.inference_mode():
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), **s.generate_kwargs())
    return time.perf_counter() - start, out[0, ids.shape[1]:].tolist()


def time_stream(lm, tokens: int, settings: dict, n_alternatives: int) -> tuple[float, list[int]]:
    start = time.perf_counter()
    new = [step.id for step in G.stream(lm, PROMPT, max_new_tokens=tokens, n_alternatives=n_alternatives,
                                        **settings)]
    return time.perf_counter() - start, new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    lm = lmkit.load(device="cpu")
    lm.model.generation_config.eos_token_id = None  # exactly --tokens new tokens in every run
    ids = lm.encode(PROMPT)
    time_generate(lm, ids, 4, {})  # warm-up: first-call costs out of the measurement
    time_stream(lm, 4, {}, 10)

    rows = []
    for mode, settings in MODES.items():
        for n_alt, label in ((10, "stream (10 alternatives/step)"), (0, "stream (no alternatives)")):
            gen_t, str_t, ratios = [], [], []
            for r in range(args.repeats):
                first_gen = r % 2 == 0  # alternate the order: ABBA
                if first_gen:
                    tg, ref = time_generate(lm, ids, args.tokens, settings)
                ts, ours = time_stream(lm, args.tokens, settings, n_alt)
                if not first_gen:
                    tg, ref = time_generate(lm, ids, args.tokens, settings)
                assert ours == ref, f"{mode}: stream and model.generate disagree"
                gen_t.append(tg)
                str_t.append(ts)
                ratios.append(ts / tg)
            rows.append(dict(mode=mode, variant=label, tokens=args.tokens, repeats=args.repeats,
                             generate_tok_s=args.tokens / statistics.median(gen_t),
                             stream_tok_s=args.tokens / statistics.median(str_t),
                             ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios)))
            print(f"{mode:8} {label:30} generate {rows[-1]['generate_tok_s']:5.1f} tok/s   stream "
                  f"{rows[-1]['stream_tok_s']:5.1f} tok/s   stream/generate time {rows[-1]['ratio_median']:.3f} "
                  f"(min {rows[-1]['ratio_min']:.3f}, max {rows[-1]['ratio_max']:.3f})", flush=True)

    result = dict(benchmark="streaming", model=lm.name, device=str(lm.device), dtype=str(lm.dtype),
                  attn=lm.model.config._attn_implementation, torch=torch.__version__, threads=torch.get_num_threads(),
                  cpu_count=os.cpu_count(), platform=platform.platform(terse=True), prompt=PROMPT,
                  load_avg=os.getloadavg()[0], rows=rows, date=time.strftime("%Y-%m-%d %H:%M"))
    out = Path(__file__).parent / "results" / "streaming.json"
    atomic_write_text(out, json.dumps(result, indent=1))
    print()
    print(f"| mode | variant | generate tok/s | stream tok/s | stream/generate time (median of {args.repeats}) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['variant']} | {r['generate_tok_s']:.1f} | {r['stream_tok_s']:.1f} | "
              f"{r['ratio_median']:.3f} ({r['ratio_min']:.3f}-{r['ratio_max']:.3f}) |")
    print(f"\nwritten {out} (load average at the end: {result['load_avg']:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
