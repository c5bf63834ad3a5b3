"""Generation speed of the bundled model against this machine's decode roofline (issue 6; notebook 05).

In ONE process, with every comparison interleaved round by round (the machine may be shared):
- the machine's ceilings: memory bandwidth (a large copy) and fp32/bf16 matmul throughput;
- threads: 1 against the default (on a busy machine fewer threads can be much faster); the faster is kept;
- ``lmkit.generate.stream`` against ``model.generate`` (time per token, ratio), when lmkit.generate exists;
- configurations (fp32 eager/sdpa, static cache, bf16, dynamic int8, optionally ``torch.compile``): decode tok/s,
  their decode roofline and the share of it reached; the best configuration;
- llama.cpp on the same GGUF file, when ``llama_cpp`` is installed;
- the cached-load time, read from benchmarks/results/load.json (written by benchmarks/load.py) when present.

    .venv/bin/python benchmarks/generation.py [--new-tokens 64] [--repeats 3] [--compile] [--quick]

Writes benchmarks/results/generation.json and prints a table.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import lmkit
from lmkit import profile as P

PROMPT = "The history of the printing press begins in"
RESULTS = Path(__file__).with_name("results")


def pick_threads(lm, ids, repeats: int) -> dict:
    default = torch.get_num_threads()
    step = P.decode_step(lm, ids)

    def run(n):
        def f():
            torch.set_num_threads(n)
            step()
        return f

    candidates = sorted({1, default})
    times = P.interleave({n: run(n) for n in candidates}, repeats=repeats, warmup=0, progress=False)
    best = min(candidates, key=lambda n: times[n].median)
    torch.set_num_threads(best)
    return {"default": default, "best": best,
            "decode_step_ms": {str(n): 1e3 * times[n].median for n in candidates}}


def stream_vs_generate(lm, ids, n_new: int, repeats: int) -> dict | None:
    if importlib.util.find_spec("lmkit.generate") is None:
        return None
    from lmkit import generate as G

    ratios = []
    for _ in range(repeats):
        g = P.time_generation(lm, ids, n_new)
        s = P.time_steps(G.stream(lm, PROMPT, max_new_tokens=n_new))
        ratios.append((s.stamps[-1] / s.new_tokens) / (g.stamps[-1] / g.new_tokens))
    return {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "what": "wall time per token, lmkit.generate.stream / model.generate (greedy)"}


def llama_cpp_speed(n_new: int, threads: int, repeats: int) -> float | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    from llama_cpp import Llama

    from lmkit.models import bundled_gguf

    llm = Llama(model_path=str(bundled_gguf()), n_threads=threads, n_ctx=512, verbose=False)
    speeds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = llm(PROMPT, max_tokens=n_new, temperature=0.0)
        speeds.append(out["usage"]["completion_tokens"] / (time.perf_counter() - start))
    return statistics.median(speeds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile + static cache (slow to compile)")
    ap.add_argument("--no-int8", action="store_true", help="skip dynamic int8 (slow to quantize on a busy machine)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 4 tokens, 1 round, fp32 only")
    args = ap.parse_args()
    if args.quick:
        args.new_tokens, args.repeats, args.no_int8 = 4, 1, True
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
                     "torch": torch.__version__, "new_tokens": args.new_tokens, "repeats": args.repeats,
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    lm = lmkit.load(attn_implementation="sdpa")
    ids = lm.encode(PROMPT)
    results["threads"] = pick_threads(lm, ids, args.repeats)
    bandwidth, bw_t = P.memory_bandwidth(256 * 2**20, repeats=5)
    fp32, _ = P.matmul_throughput(torch.float32, repeats=3)
    bf16, _ = P.matmul_throughput(torch.bfloat16, repeats=3)
    results["bandwidth_GBps"] = bandwidth / 1e9
    results["bandwidth_spread"] = bw_t.spread
    results["matmul_GFLOPs"] = {"fp32": fp32 / 1e9, "bf16": bf16 / 1e9}
    results["stream_vs_generate"] = stream_vs_generate(lm, ids, args.new_tokens, args.repeats)

    model = lm.model
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    configs = {"fp32 sdpa (model.generate)": (model, {}), "fp32 eager": (eager, {})}
    if not args.quick:
        configs["fp32 sdpa static cache"] = (model, {"cache_implementation": "static"})
        configs["bf16 sdpa"] = (copy.deepcopy(model).to(torch.bfloat16), {})
    if not args.no_int8 and not torch.cuda.is_available():
        configs["int8 dynamic sdpa"] = (P.quantize_int8(copy.deepcopy(model)), {})
    if args.compile:
        compiled = copy.deepcopy(model)
        compiled.forward = torch.compile(compiled.forward, dynamic=False)
        start = time.perf_counter()
        P.time_generation(compiled, ids, 4, cache_implementation="static")
        results["compile_s"] = time.perf_counter() - start
        configs["fp32 sdpa static + compile"] = (compiled, {"cache_implementation": "static"})
    table = P.compare_generation(configs, ids, args.new_tokens, repeats=args.repeats, progress=False)
    context = ids.shape[1] + args.new_tokens // 2
    rows = {}
    for name, (m, _) in configs.items():
        kv_dtype = next(m.parameters()).dtype
        bound = P.decode_bound(bandwidth, m, context, kv_dtype=kv_dtype)
        rows[name] = {"decode_tok_s": table.loc[name, "decode tok/s"], "p10_tok_s": table.loc[name, "p10 tok/s"],
                      "p90_tok_s": table.loc[name, "p90 tok/s"], "ttft_ms": table.loc[name, "ttft ms"],
                      "weights_MB": table.loc[name, "weights MB"], "bound_tok_s": bound,
                      "share_of_bound": table.loc[name, "decode tok/s"] / bound}
    results["configs"] = rows
    best = max(rows, key=lambda k: rows[k]["decode_tok_s"])
    results["best"] = {"config": best, **rows[best]}
    llama = llama_cpp_speed(args.new_tokens, results["threads"]["best"], args.repeats)
    results["llama_cpp_tok_s"] = llama
    if llama:
        results["best_vs_llama_cpp"] = rows[best]["decode_tok_s"] / llama
    load_json = RESULTS / "load.json"
    if load_json.exists():
        load = json.loads(load_json.read_text())
        results["cached_load_s"] = {"load": load.get("warm_load_s_median"),
                                    "process": load.get("warm_process_s_median"), "source": "benchmarks/load.py"}

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "generation.json"
    out.write_text(json.dumps(results, indent=1, default=float) + "\n")

    print(f"machine: {results['machine']}, load average {results['load_average']}, torch {torch.__version__}")
    t = results["threads"]
    print(f"threads: {t['best']} kept (decode step ms by threads: "
          + ", ".join(f"{k}: {v:.0f}" for k, v in t["decode_step_ms"].items()) + ")")
    print(f"ceilings: bandwidth {bandwidth / 1e9:.1f} GB/s (copy), matmul fp32 {fp32 / 1e9:.1f} GFLOP/s, "
          f"bf16 {bf16 / 1e9:.2f} GFLOP/s")
    print(f"\n{'configuration':<30}{'tok/s':>8}{'p10':>7}{'p90':>7}{'TTFT ms':>9}{'MB':>6}{'bound':>8}{'share':>7}")
    for name, r in rows.items():
        print(f"{name:<30}{r['decode_tok_s']:>8.2f}{r['p10_tok_s']:>7.2f}{r['p90_tok_s']:>7.2f}{r['ttft_ms']:>9.0f}"
              f"{r['weights_MB']:>6.0f}{r['bound_tok_s']:>8.1f}{r['share_of_bound']:>7.0%}")
    print(f"\nbest: {best}, {rows[best]['decode_tok_s']:.2f} tok/s = {rows[best]['share_of_bound']:.0%} of its "
          "decode roofline (goal 60%)")
    sv = results["stream_vs_generate"]
    print("stream / generate per token: " + (f"{sv['ratio_median']:.3f} (min {sv['ratio_min']:.3f}, max "
                                             f"{sv['ratio_max']:.3f})" if sv else "lmkit.generate not available"))
    if "compile_s" in results:
        print(f"torch.compile: {results['compile_s']:.0f} s to compile")
    print("llama.cpp: " + (f"{llama:.1f} tok/s; best torch / llama.cpp = {results['best_vs_llama_cpp']:.2f}"
                           if llama else "llama_cpp not installed, skipped"))
    if "cached_load_s" in results:
        c = results["cached_load_s"]
        print(f"cached load: lmkit.load() {c['load']:.2f} s, whole fresh process {c['process']:.2f} s (load.json)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
