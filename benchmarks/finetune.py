"""LoRA vs full fine-tuning of the bundled model on the date task, each in a fresh process (issue 7; notebook 12).

Each method runs ``lmkit.finetune.train`` for a few optimizer steps (no validation, no checkpoints) in its own Python
process, so that its peak memory is not mixed with another run's (in one process, memory freed by the first run is
reused by the second, and resident-set growth under-counts it). Per method: trainable parameters, seconds per step
(mean over all steps), tokens per second, the process's peak resident memory (model + training), and
the growth of resident memory during training (gradients, optimizer state, activations).

    .venv/bin/python benchmarks/finetune.py [--steps 6] [--batch 8]

Writes benchmarks/results/finetune.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from lmkit import finetune as ft

method, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = ft.train(method=method, max_steps=steps, micro_batch_size=batch, val_data=None, eval_every=0, progress=False,
             warmup_steps=1)
print(json.dumps({"method": method, "trainable_params": r.trainable_params, "total_params": r.total_params,
                  "seconds_per_step": r.seconds_per_step, "tokens_per_second": r.tokens_per_second,
                  "extra_memory_mb": r.extra_memory_mb, "loss_first": r.train_losses[0], "loss_last": r.train_losses[-1],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(method: str, steps: int, batch: int) -> dict:
    env = dict(os.environ, TQDM_DISABLE="1", HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, method, str(steps), str(batch)], env=env, capture_output=True,
                         text=True)
    if out.returncode:
        sys.exit(f"{method} failed:\n{out.stdout}\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per method")
    ap.add_argument("--batch", type=int, default=8, help="examples per step (notebook 12 uses 8)")
    args = ap.parse_args()
    import torch

    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
               "python": platform.python_version(), "torch": torch.__version__, "steps": args.steps,
               "batch": args.batch, "command": ".venv/bin/python benchmarks/finetune.py "
                                              f"--steps {args.steps} --batch {args.batch}",
               "methods": [run(m, args.steps, args.batch) for m in ("lora", "full")]}
    path = Path(__file__).parent / "results" / "finetune.json"
    from lmkit.files import atomic_write_text

    atomic_write_text(path, json.dumps(results, indent=1) + "\n")
    print(f"{'method':<6} {'trainable':>13} {'s/step':>7} {'tokens/s':>9} {'peak RSS MB':>12} {'extra MB':>9} "
          f"{'loss':>13}")
    for r in results["methods"]:
        print(f"{r['method']:<6} {r['trainable_params']:>13,} {r['seconds_per_step']:>7.2f} "
              f"{r['tokens_per_second']:>9.0f} {r['peak_rss_mb']:>12.0f} {r['extra_memory_mb']:>9.0f} "
              f"{r['loss_first']:>6.3f}->{r['loss_last']:.3f}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
