"""GRPO's settings chosen on the validation split, then the chosen run repeated with three seeds on the held-out
split (notebook 18, reasoning with rewards).

Notebook 18 trains once, with one seed, in its time budget. This script answers the two questions it cannot:

1. **Selection.** The learning rate is the setting the run is most sensitive to. Each candidate (``--lrs``) is
   trained with seed 0 and scored greedily on ``data/rl/validation.jsonl`` (60 problems that are neither trained on
   nor held out); the highest validation accuracy wins (a tie: the smaller rate). The held-out split is not scored
   during the selection.
2. **Seeds.** The chosen setting is trained again with seeds 1 and 2 (seed 0 is the selection's run) and every run
   is scored greedily on ``data/rl/test.jsonl``, paired with the base model on the same questions
   (:func:`lmkit.stats.compare`), and the seeds' mean accuracy per question too.
3. **A prompt baseline.** Each user turn of :data:`WORDINGS` replaces ``lmkit.rl.prompt`` (one with two worked
   examples: few-shot) and the base model
   answers the validation questions greedily; the best one (a tie: the first written) is scored on the held-out
   questions, which notebook 18 compares with the tuned model. ``--wordings-only`` runs this part alone and adds it
   to an existing results file.

Every other setting is the notebook's (16 steps of 4 questions x 8 replies, 48-token training budget, temperature
0.7, LoRA r=16, alpha=32, no KL penalty; greedy scoring with a 64-token budget). Each run starts from a freshly loaded
model. It takes about half an hour on 2 CPU cores.

    .venv/bin/python benchmarks/rl_grpo.py [--lrs 2e-4 5e-4 1e-3] [--seeds 0 1 2] [--steps 16]

Writes benchmarks/results/rl_grpo.json (per-question rewards included, so a reader can recompute every figure) and
prints a summary.
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

WORDINGS = {"one equation": "{question} Answer with one short equation that gives the result, such as 5 + 3 = 8.",
            "number only": "{question} Reply with the number only.",
            "step by step": "{question} Think step by step, then give the final answer as a number.",
            "two worked examples": "Answer like these two examples.\n"
                                   "Q: Tom has 31 pens and buys 12 more. How many pens does Tom have now?\n"
                                   "A: Tom has 31 + 12 = 43 pens.\n"
                                   "Q: Mia has 40 cards and gives away 15. How many cards does Mia have now?\n"
                                   "A: Mia has 40 - 15 = 25 cards.\n"
                                   "Q: {question}\nA:"}
"""The prompt baseline's candidates, user turns with the question in place of ``{question}`` (instead of
``lmkit.rl.prompt``), written before their results were seen; the worked examples use numbers above 25, outside every
split's problems."""
SETTINGS = dict(prompts=4, group=8, max_new_tokens=48, temperature=0.7, lora_r=16, lora_alpha=32, beta=0.0)
SCORE_BUDGET = 64


def greedy_rewards(lm, items, model=None, instruction=None) -> list[float]:
    from lmkit import rl

    users = [rl.prompt(i) if instruction is None else instruction.format(question=i["question"]) for i in items]
    out = rl.sample(lm, users, do_sample=False, max_new_tokens=SCORE_BUDGET, batch_size=64, model=model)
    return [rl.reward(t, i["answer"]) for t, i in zip(out.texts, items)]


def train(lr: float, seed: int, steps: int, items):
    import lmkit
    from lmkit import rl

    lm = lmkit.load(device="cpu")
    start = time.perf_counter()
    policy, history = rl.train_grpo(lm, items, steps=steps, lr=lr, seed=seed, **SETTINGS)
    return lm, policy, history, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lrs", type=float, nargs="+", default=[2e-4, 5e-4, 1e-3], help="learning rates to choose from")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the chosen setting")
    ap.add_argument("--steps", type=int, default=16, help="GRPO steps per run")
    ap.add_argument("--wordings-only", action="store_true", help="only the prompt baseline, into the existing file")
    args = ap.parse_args()
    import numpy as np
    import torch

    import lmkit
    from lmkit import rl
    from lmkit.stats import compare

    train_items, validation, test = (rl.load_split(s) for s in ("train", "validation", "test"))
    out = Path(__file__).resolve().parent / "results" / "rl_grpo.json"
    base = lmkit.load(device="cpu")
    wordings = {"text": WORDINGS, "validation": {name: greedy_rewards(base, validation, instruction=text)
                                                 for name, text in WORDINGS.items()}}
    for name, scores in wordings["validation"].items():
        print(f"prompt {name!r}: validation {sum(scores):.0f}/{len(validation)}")
    wordings["chosen"] = max(WORDINGS, key=lambda n: sum(wordings["validation"][n]))  # a tie: the first written
    wordings["test"] = greedy_rewards(base, test, instruction=WORDINGS[wordings["chosen"]])
    print(f"prompt {wordings['chosen']!r}, chosen on validation: test {sum(wordings['test']):.0f}/{len(test)}")
    if args.wordings_only:
        results = json.loads(out.read_text())
        results["wordings"] = {**wordings, "command": "benchmarks/rl_grpo.py --wordings-only",
                               "date": time.strftime("%Y-%m-%d")}
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"added the prompt baseline to {out}")
        return
    base_validation, base_test = greedy_rewards(base, validation), greedy_rewards(base, test)
    del base
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
               "python": platform.python_version(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
               "command": "benchmarks/rl_grpo.py --lrs " + " ".join(f"{x:g}" for x in args.lrs) + " --seeds "
                          + " ".join(map(str, args.seeds)) + f" --steps {args.steps}",
               "settings": {**SETTINGS, "steps": args.steps, "score_budget": SCORE_BUDGET},
               "base": {"validation": base_validation, "test": base_test}, "selection": [], "seeds": [],
               "wordings": wordings}
    print(f"base: validation {sum(base_validation):.0f}/{len(validation)}, test {sum(base_test):.0f}/{len(test)}")

    kept = {}
    for lr in args.lrs:  # 1. the selection, on the validation split only
        lm, policy, history, seconds = train(lr, args.seeds[0], args.steps, train_items)
        scores = greedy_rewards(lm, validation, model=policy)
        results["selection"].append({"lr": lr, "seed": args.seeds[0], "validation": scores, "seconds": seconds,
                                     "last_reward": history[-1]["reward"], "last_kl": history[-1]["kl"]})
        kept[lr] = (lm, policy, history, seconds)
        print(f"lr {lr:g}: validation {sum(scores):.0f}/{len(validation)} ({seconds:.0f} s)")
    best = max(results["selection"], key=lambda r: (sum(r["validation"]), -r["lr"]))
    chosen = best["lr"]
    results["chosen_lr"] = chosen
    print(f"chosen on validation: lr {chosen:g}")
    for lm, policy, _, _ in [v for lr, v in kept.items() if lr != chosen]:
        del lm, policy
    for seed in args.seeds:  # 2. the chosen setting, every seed, scored on the held-out split
        if seed == args.seeds[0]:
            lm, policy, history, seconds = kept[chosen]
        else:
            lm, policy, history, seconds = train(chosen, seed, args.steps, train_items)
        scores = greedy_rewards(lm, test, model=policy)
        c = compare(scores, base_test, paired=True)
        results["seeds"].append({"seed": seed, "lr": chosen, "test": scores, "seconds": seconds,
                                 "history": history, "diff": c.diff, "low": c.low, "high": c.high,
                                 "verdict": c.verdict})
        print(f"seed {seed}: test {sum(scores):.0f}/{len(test)}, {c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}] "
              f"({c.verdict}; {seconds:.0f} s)")
        del lm, policy
        kept.pop(chosen, None)
    mean = np.mean([r["test"] for r in results["seeds"]], axis=0)
    c = compare(mean, base_test, paired=True)
    results["mean_of_seeds"] = {"diff": c.diff, "low": c.low, "high": c.high, "verdict": c.verdict,
                                "method": c.method}
    print(f"mean of {len(args.seeds)} seeds: {c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}] ({c.verdict})")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
