"""``python -m lmkit.finetune --config cfg.json`` (also under ``accelerate launch``)."""
from __future__ import annotations

import argparse
import json
import sys

from lmkit.finetune.loop import train

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m lmkit.finetune --config cfg.json [--resume] [--max-steps N]`` (also under ``accelerate launch``)."""
    parser = argparse.ArgumentParser(prog="python -m lmkit.finetune", description="Fine-tune a causal LM, full or LoRA, on Accelerate, with checkpoints that resume exactly.")
    parser.add_argument("--config", required=True, help="JSON file with TrainConfig keys")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")
    parser.add_argument("--max-steps", type=int, help="override max_steps")
    args = parser.parse_args(argv)
    overrides = {"resume": True} if args.resume else {}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    try:
        result = train(args.config, **overrides)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    last = result.history[-1] if result.history else {}
    summary = json.dumps({"step": last.get("step"), "train_loss": last.get("train_loss"),
                          "val_loss": last.get("val_loss"), "trainable_params": result.trainable_params,
                          "total_params": result.total_params, "seconds_per_step": result.seconds_per_step,
                          "steps_run": result.steps_run, "resumed_from": result.resumed_from})
    # One write of the whole line, flushed: under ``accelerate launch`` every process shares one stdout, often
    # unbuffered, where print() issues the text and its newline as two writes that another process can split.
    sys.stdout.write(summary + "\n")
    sys.stdout.flush()
    return 0
