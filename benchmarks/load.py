"""Cached-load time of the bundled model in fresh processes (issue: foundation; notebook 00).

Each repeat starts a new Python process and times, in turn: importing lmkit (torch + transformers), transformers'
own lazy import of the Llama modeling code (paid once per process by any Llama load, lmkit or not), and
``lmkit.load()`` itself (reading the cached weights and the tokenizer); then the whole process's wall time. ``--cold`` also times the one-off GGUF conversion into an empty
cache folder.

    .venv/bin/python benchmarks/load.py [--repeats 5] [--cold]

Writes benchmarks/results/load.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import time, json
t0 = time.perf_counter()
import lmkit
t1 = time.perf_counter()
import transformers.models.llama.modeling_llama  # transformers imports this lazily, on the first Llama load
t2 = time.perf_counter()
lm = lmkit.load(device="cpu")
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "modeling_import_s": t2 - t1, "load_s": t3 - t2}))
"""


def run_child(env: dict) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cold", action="store_true", help="also time the first load into an empty cache")
    args = ap.parse_args()
    env = dict(os.environ, TQDM_DISABLE="1", HF_HUB_OFFLINE="1")
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version()}
    if args.cold:
        with tempfile.TemporaryDirectory() as tmp:
            results["cold"] = run_child(dict(env, LMKIT_CACHE=tmp))
    run_child(env)  # make sure the cache exists before the warm repeats
    warm = [run_child(env) for _ in range(args.repeats)]
    for key in ("import_s", "modeling_import_s", "load_s", "process_s"):
        values = [w[key] for w in warm]
        results[f"warm_{key}_median"] = statistics.median(values)
        results[f"warm_{key}_min"] = min(values)
        results[f"warm_{key}_max"] = max(values)
    results["repeats"] = args.repeats
    out = Path(__file__).with_name("results") / "load.json"
    out.parent.mkdir(exist_ok=True)
    from lmkit.files import atomic_write_text

    atomic_write_text(out, json.dumps(results, indent=1) + "\n")
    print(f"{'measure':<34}{'median':>9}{'min':>9}{'max':>9}")
    for key, label in [("import_s", "import lmkit (torch, transformers)"),
                       ("modeling_import_s", "transformers' lazy Llama import"),
                       ("load_s", "lmkit.load(): weights + tokenizer"),
                       ("process_s", "whole process (start to exit)")]:
        print(f"{label:<34}{results[f'warm_{key}_median']:>8.2f}s{results[f'warm_{key}_min']:>8.2f}s"
              f"{results[f'warm_{key}_max']:>8.2f}s")
    if "cold" in results:
        print(f"{'first load (GGUF conversion)':<34}{results['cold']['load_s']:>8.2f}s")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
