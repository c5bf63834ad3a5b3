"""Generation speed of the bundled model against this machine's decode roofline and llama.cpp (issue 6; notebook 08).

In ONE process, with every comparison interleaved round by round (the machine may be shared):
- threads: 1 against the default; the faster is kept for every torch configuration;
- the machine's ceilings with every core: memory bandwidth (a large copy) and matmul throughput; then the
  bandwidth a matrix-vector product reaches on a weight as large as the model's layers, with the thread count kept;
- ``lmkit.generate.stream`` against ``model.generate`` (time per token, ratio);
- configurations: ``model.generate`` (eager, sdpa, static cache), the lean decode loop (``P.LeanDecoder``: dynamic
  or static cache; fp32, bf16, dynamic int8), the hand-written decoder (``lmkit.fastdecode.FastDecoder``, int4
  weights, eager) and, with ``--compile``, the lean loop with ``torch.compile`` and the hand-written decoder
  compiled in fp32, bf16 and int4 (compile times reported apart from the steady-state speed); decode tok/s, the
  decode roofline of each (its own bytes per token), the share;
- the speed of the matrix products of one step alone, per weight format of the hand-written decoder;
- llama.cpp (``n_threads`` = the default thread count, one per core) on the same Q4_1 GGUF file, interleaved with
  the rest, when installed; then again in rounds of its own with the best torch configuration, both at that
  thread count (the ratio). It runs in a child process (``lmkit.profile.LlamaCpp``): if its native code dies
  (e.g. SIGILL from a build for another CPU), the crash and its fix are recorded as ``llama_cpp_error`` and
  every other figure is still written;
- where a decode step of the best eager configuration goes (``torch.profiler``): matrix products, other operators,
  time outside operators, against the time the weights take to stream at the copy bandwidth;
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
from lmkit import fastdecode as FD
from lmkit import profile as P
from lmkit.files import atomic_write_text

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
    times = P.interleave({n: run(n) for n in candidates}, repeats=max(repeats, 3), warmup=1, progress=False)
    best = min(candidates, key=lambda n: times[n].median)
    torch.set_num_threads(best)
    return {"default": default, "best": best,
            "decode_step_ms": {str(n): 1e3 * times[n].median for n in candidates}}


def stream_vs_generate(lm, ids, n_new: int, repeats: int) -> dict | None:
    if importlib.util.find_spec("lmkit.generate") is None:
        return None
    from lmkit import generate as G

    P.time_steps(G.stream(lm, PROMPT, max_new_tokens=4))  # warm-up
    ratios = []
    for r in range(repeats):  # ABBA order: generate first in even rounds, stream first in odd ones
        if r % 2 == 0:
            g = P.time_generation(lm, ids, n_new)
        s = P.time_steps(G.stream(lm, PROMPT, max_new_tokens=n_new))
        if r % 2 == 1:
            g = P.time_generation(lm, ids, n_new)
        ratios.append((s.stamps[-1] / s.new_tokens) / (g.stamps[-1] / g.new_tokens))
    return {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "what": "wall time per token, lmkit.generate.stream / model.generate (greedy, sdpa)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the lean loop (minutes)")
    ap.add_argument("--no-int8", action="store_true", help="skip dynamic int8")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 4 tokens, 1 round, fp32 only")
    args = ap.parse_args()
    if args.quick:
        args.new_tokens, args.repeats, args.no_int8 = 4, 1, True
    n_new = args.new_tokens
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                f"{'cuda' if torch.cuda.is_available() else 'cpu'}, "
                                f"{torch.backends.cpu.get_cpu_capability()}",
                     "torch": torch.__version__, "new_tokens": n_new, "repeats": args.repeats,
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "load_average_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    lm = lmkit.load(attn_implementation="sdpa")
    ids = lm.encode(PROMPT)
    results["threads"] = pick_threads(lm, ids, args.repeats)
    threads = results["threads"]["best"]
    torch.set_num_threads(results["threads"]["default"])  # the machine's ceilings: every core
    bandwidth, bw_t = P.memory_bandwidth(256 * 2**20, repeats=5)
    fp32, _ = P.matmul_throughput(torch.float32, repeats=3)
    bf16, _ = P.matmul_throughput(torch.bfloat16, repeats=3)
    torch.set_num_threads(threads)  # everything after: the thread count that decodes fastest
    results["bandwidth_GBps"] = bandwidth / 1e9
    results["bandwidth_spread"] = bw_t.spread
    cfg = lm.model.config
    rows_all = cfg.num_hidden_layers * (2 * cfg.intermediate_size)  # gate+up of every layer stacked: ~106 MB fp32
    results["matvec_GBps"] = {"fp32": P.matvec_bandwidth(rows_all, cfg.hidden_size)[0] / 1e9,
                              "bf16": P.matvec_bandwidth(rows_all, cfg.hidden_size, torch.bfloat16)[0] / 1e9}
    results["matmul_GFLOPs"] = {"fp32": fp32 / 1e9, "bf16": bf16 / 1e9}
    results["stream_vs_generate"] = stream_vs_generate(lm, ids, n_new, args.repeats)

    model = lm.model
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    models = {"fp32": model}
    runs = {"generate fp32 eager": lambda: P.time_generation(eager, ids, n_new),
            "generate fp32 sdpa": lambda: P.time_generation(model, ids, n_new)}
    lean_dyn, lean_static = P.LeanDecoder(model, static=False), P.LeanDecoder(model, static=True)
    runs["lean fp32 dynamic cache"] = lambda: lean_dyn(ids, n_new)
    runs["lean fp32 static cache"] = lambda: lean_static(ids, n_new)
    if not args.quick:
        runs["generate fp32 sdpa static cache"] = lambda: P.time_generation(model, ids, n_new,
                                                                            cache_implementation="static")
        models["bf16"] = copy.deepcopy(model).to(torch.bfloat16)
        lean_bf16 = P.LeanDecoder(models["bf16"], static=True)
        runs["lean bf16 static cache"] = lambda: lean_bf16(ids, n_new)
    if not args.no_int8 and not torch.cuda.is_available():
        start = time.perf_counter()
        models["int8"] = P.quantize_int8(copy.deepcopy(model))
        results["int8_quantize_s"] = time.perf_counter() - start
        lean_int8 = P.LeanDecoder(models["int8"], static=True)
        runs["lean int8 static cache"] = lambda: lean_int8(ids, n_new)
    compile_s = {}
    if args.compile:
        for freeze in (False, True):
            name = "lean fp32 static + compile" + (" (freezing)" if freeze else "")
            m = copy.deepcopy(model)
            dec = P.LeanDecoder(m, static=True, compile=True, freeze=freeze)
            dec(ids, n_new)  # compiles the decode step (the prefill stays eager)
            compile_s[name] = dec.compile_s
            models[name] = m
            runs[name] = (lambda d: lambda: d(ids, n_new))(dec)
            print(f"{name}: first call (compilation) {dec.compile_s:.0f} s", flush=True)
    # the hand-written decoder (lmkit.fastdecode): eager int4 always; compiled fp32, bf16 and int4 with --compile
    fast_cfgs = {"fast fp32": dict(weights=None, dtype=torch.float32),
                 "fast bf16": dict(weights=None, dtype=torch.bfloat16), "fast int4": dict(weights="int4")}
    if torch.cuda.is_available():
        del fast_cfgs["fast int4"]
    fast_decs = {}
    for name, kw in fast_cfgs.items():
        if name == "fast int4" or args.compile:
            fast_decs[f"{name} eager"] = FD.FastDecoder(model, context_length=ids.shape[1] + n_new, **kw)
        if args.compile and not args.quick:
            dec = FD.FastDecoder(model, context_length=ids.shape[1] + n_new, compile=True, **kw)
            dec(ids, n_new)
            compile_s[f"{name} compiled"] = dec.compile_s
            fast_decs[f"{name} compiled"] = dec
            print(f"{name} compiled: first call (compilation) {dec.compile_s:.0f} s", flush=True)
    for name, dec in fast_decs.items():
        runs[name] = (lambda d: lambda: d(ids, n_new))(dec)
    results["fast_matmul_GBps"] = {name: fast_decs[f"{name} eager"].matmul_bandwidth()[0] / 1e9
                                   for name in fast_cfgs if f"{name} eager" in fast_decs}
    if compile_s:
        results["compile_s"] = compile_s
    llm = None
    if importlib.util.find_spec("llama_cpp") is not None:
        # in its own process: a crash of llama.cpp's native code (SIGILL on a CPU its build does not fit) is one
        # line in the results, and every torch figure measured here is kept
        n_threads = results["threads"]["default"]  # one per core, as llama.cpp users run it
        try:
            llm = P.LlamaCpp(n_threads=n_threads, n_ctx=512)
            runs[f"llama.cpp Q4_1 ({n_threads} threads)"] = lambda: P.time_llama_cpp(llm, PROMPT, n_new)
        except (P.ChildCrashed, P.ChildError) as exc:
            results["llama_cpp_error"] = str(exc)
            print(f"llama.cpp skipped: {exc}", flush=True)
    table = P.compare_runs(runs, repeats=args.repeats, warmup=1, progress=False)
    for name, message in table.attrs.get("failed", {}).items():
        results["llama_cpp_error" if name.startswith("llama.cpp") else f"error {name}"] = message

    def dtype_of(name):
        return "int8" if "int8" in name else "bf16" if "bf16" in name else "fp32"

    context = ids.shape[1] + n_new // 2
    rows = {}
    for name in table.index:
        row = {"decode_tok_s": table.loc[name, "decode tok/s"], "p10_tok_s": table.loc[name, "p10 tok/s"],
               "p90_tok_s": table.loc[name, "p90 tok/s"], "ttft_ms": table.loc[name, "ttft ms"],
               "p50_ms": table.loc[name, "p50 ms/token"]}
        if name in fast_decs:
            dec = fast_decs[name]
            row["bound_tok_s"] = bandwidth / dec.decode_bytes(context)
            row["share_of_bound"] = row["decode_tok_s"] / row["bound_tok_s"]
            row["weights_MB"] = dec.weight_bytes() / 1e6
        elif not name.startswith("llama.cpp"):
            m = models[dtype_of(name)]
            kv = torch.float32 if dtype_of(name) != "bf16" else torch.bfloat16
            row["bound_tok_s"] = P.decode_bound(bandwidth, m, context, kv_dtype=kv)
            row["share_of_bound"] = row["decode_tok_s"] / row["bound_tok_s"]
            row["weights_MB"] = P.weight_bytes(m) / 1e6
        rows[name] = row
    results["configs"] = rows
    torch_rows = {k: v for k, v in rows.items() if not k.startswith("llama.cpp")}
    best = max(torch_rows, key=lambda k: torch_rows[k]["decode_tok_s"])
    results["best"] = {"config": best, **rows[best]}
    llama_name = next((k for k in rows if k.startswith("llama.cpp")), None)
    if llama_name:  # the ratio: llama.cpp and the best torch configuration in the same rounds, same thread count
        n_threads = results["threads"]["default"]
        torch.set_num_threads(n_threads)
        pair = P.compare_runs({llama_name: runs[llama_name], best: runs[best]}, repeats=args.repeats, warmup=1,
                              progress=False)
        torch.set_num_threads(threads)
        if llama_name in pair.index:
            results["llama_cpp_pair"] = {"threads": n_threads, **{k: pair.loc[k, "decode tok/s"] for k in pair.index}}
            results["llama_cpp_tok_s"] = pair.loc[llama_name, "decode tok/s"]
            results["best_vs_llama_cpp"] = pair.loc[best, "decode tok/s"] / pair.loc[llama_name, "decode tok/s"]
        else:
            results["llama_cpp_error"] = pair.attrs["failed"][llama_name]
            llama_name = None
    if llm is not None:
        llm.close()

    # where a decode step goes: the best eager (uncompiled) fp32 path, one step under the profiler
    bd_rows = {}
    for name, m in [("fp32", model)] + ([("int8", models["int8"])] if "int8" in models else []):
        bd = P.step_breakdown(P.decode_step(m, ids))
        bd["weights_at_bandwidth_ms"] = 1e3 * P.decode_bytes(m, context) / bandwidth
        bd_rows[name] = bd
    results["decode_step_breakdown_ms"] = bd_rows
    results["dispatch_us_per_op"] = 1e6 * P.op_dispatch_cost()
    results["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    load_json = RESULTS / "load.json"
    if load_json.exists():
        load = json.loads(load_json.read_text())
        results["cached_load_s"] = {"load": load.get("warm_load_s_median"),
                                    "process": load.get("warm_process_s_median"), "source": "benchmarks/load.py"}

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("generation_quick.json" if args.quick else "generation.json")
    atomic_write_text(out, json.dumps(results, indent=1, default=float) + "\n")

    print(f"machine: {results['machine']}, load average {results['load_average_start']:.2f} -> "
          f"{results['load_average_end']:.2f}, torch {torch.__version__}")
    t = results["threads"]
    print(f"threads: {t['best']} kept (decode step ms by threads: "
          + ", ".join(f"{k}: {v:.0f}" for k, v in t["decode_step_ms"].items()) + ")")
    print(f"ceilings: bandwidth {bandwidth / 1e9:.1f} GB/s (copy); matrix-vector product streams "
          f"{results['matvec_GBps']['fp32']:.1f} GB/s fp32, {results['matvec_GBps']['bf16']:.1f} GB/s bf16; "
          f"matmul fp32 {fp32 / 1e9:.1f} GFLOP/s, bf16 {bf16 / 1e9:.2f} GFLOP/s")
    print(f"\n{'configuration':<40}{'tok/s':>8}{'p10':>7}{'p90':>7}{'TTFT ms':>9}{'MB':>6}{'bound':>8}{'share':>7}")
    for name, r in rows.items():
        tail = (f"{r['weights_MB']:>6.0f}{r['bound_tok_s']:>8.1f}{r['share_of_bound']:>7.0%}" if "bound_tok_s" in r
                else "")
        print(f"{name:<40}{r['decode_tok_s']:>8.2f}{r['p10_tok_s']:>7.2f}{r['p90_tok_s']:>7.2f}{r['ttft_ms']:>9.0f}"
              + tail)
    print(f"\nbest pure torch: {best}, {rows[best]['decode_tok_s']:.2f} tok/s = {rows[best]['share_of_bound']:.0%} "
          "of its decode roofline (goal 60%)")
    sv = results["stream_vs_generate"]
    print("stream / generate per token: " + (f"{sv['ratio_median']:.3f} (min {sv['ratio_min']:.3f}, max "
                                             f"{sv['ratio_max']:.3f})" if sv else "lmkit.generate not available"))
    for name, s in compile_s.items():
        print(f"{name}: {s:.0f} s to compile (first call)")
    print("llama.cpp: " + (f"{results['llama_cpp_tok_s']:.1f} tok/s against {best} "
                           f"{results['llama_cpp_pair'][best]:.1f} tok/s, both with "
                           f"{results['llama_cpp_pair']['threads']} threads in the same rounds; best torch / llama.cpp = "
                           f"{results['best_vs_llama_cpp']:.2f} (goal >= 0.5)" if llama_name
                           else results.get("llama_cpp_error", "llama_cpp not installed, skipped")))
    for name, bd in bd_rows.items():
        print(f"decode step {name} (profiled): wall {bd['wall']:.1f} ms = matmul {bd['matmul']:.1f} + other ops "
              f"{bd['other ops']:.1f} + outside ops {bd['outside ops']:.1f}; {bd['ops']} ops; weights at the copy "
              f"bandwidth would take {bd['weights_at_bandwidth_ms']:.1f} ms")
    print(f"dispatch: {results['dispatch_us_per_op']:.1f} µs per trivial op")
    print("matrix products of one step alone (FastDecoder.matmul_bandwidth): "
          + ", ".join(f"{k} {v:.1f} GB/s" for k, v in results["fast_matmul_GBps"].items()))
    if "cached_load_s" in results:
        c = results["cached_load_s"]
        print(f"cached load: lmkit.load() {c['load']:.2f} s, whole fresh process {c['process']:.2f} s (load.json)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
