"""Speculative and prompt-lookup decoding against plain greedy, as ratios within one run (notebook 07).

Every method must give the same tokens as plain greedy ``model.generate`` (asserted). Methods run in interleaved
rounds (the order rotates every round) so that the load of a shared machine hits all alike; each figure is the median
over rounds of the per-round ratio plain time / method time (above 1 = faster), with its min and max, and
:func:`lmkit.stats.compare` on the seconds paired by round.

- ``lmkit speculative``: :func:`lmkit.generate.speculative` with :func:`lmkit.generate.early_exit_draft`;
- ``transformers assistant_model=``: the same draft through ``model.generate`` (constant ``k``);
- ``prompt lookup``: ``model.generate(prompt_lookup_num_tokens=10)`` on the copy tasks of ``data/decoding``.

The grammar cost of constrained decoding (llguidance) is timed too: mask + advance per token, replayed on a JSON
answer, next to the model's decode step.

    .venv/bin/python benchmarks/speculative.py [--tokens 32] [--rounds 5] [--depth 27] [--k 2]

Writes benchmarks/results/speculative.json and prints a table.
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
from lmkit import constrained as C
from lmkit import generate as G
from lmkit.data import data_file
from lmkit.files import atomic_write_text, read_jsonl

PROMPT = "Explain in three sentences why the sky is blue."
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string", "maxLength": 30},
                         "age": {"type": "integer", "minimum": 0, "maximum": 130}}}


def greedy(lm, ids, tokens: int, **extra) -> list[int]:
    with torch.inference_mode():
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, do_sample=False,
                                **extra)
    return out[0, ids.shape[1]:].tolist()


def rounds(methods: dict, n: int) -> dict[str, list[float]]:
    """Time each method once per round, rotating the order; check every method's tokens equal the first's."""
    times = {m: [] for m in methods}
    names = list(methods)
    for r in range(n):
        outs = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            outs[name] = methods[name]()
            times[name].append(time.perf_counter() - start)
        assert all(o == outs[names[0]] for o in outs.values()), "a method changed the greedy tokens"
    return times


def ratios(times: dict, base: str) -> list[dict]:
    """Per method: median seconds, the per-round speed-up over ``base`` (median, min, max) and
    :func:`lmkit.stats.compare`'s verdict on the seconds, paired by round ("lower" = faster than ``base``)."""
    from lmkit.stats import compare

    rows = []
    for name, t in times.items():
        r = [b / x for b, x in zip(times[base], t)]
        row = dict(method=name, median_s=statistics.median(t), speedup_median=statistics.median(r),
                   speedup_min=min(r), speedup_max=max(r), seconds_vs_base="(the base)")
        if name != base and len(t) >= 2:
            cmp = compare(t, times[base])
            row["seconds_vs_base"] = f"{cmp.verdict}: {cmp.diff:+.2f} s, {cmp.interval('.2f', 's')}"
        rows.append(row)
    return rows


def grammar_ms(lm, tokens: int) -> tuple[float, int]:
    ids = [s.id for s in G.stream(lm, "Invent a person. Reply in JSON with name and age.", chat=True,
                                  json_schema=SCHEMA, max_new_tokens=tokens, n_alternatives=0)]
    g, start = C.Grammar(lm, json_schema=SCHEMA), time.perf_counter()
    for i in ids:
        g.allowed()
        if not g.done:
            g.advance(i)
    return 1e3 * (time.perf_counter() - start) / len(ids), len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--depth", type=int, default=27, help="layers kept by the early-exit draft")
    ap.add_argument("--k", type=int, default=2, help="proposals per round")
    ap.add_argument("--copy-tasks", type=int, default=6, help="copy tasks for prompt lookup (of 6)")
    args = ap.parse_args()

    lm = lmkit.load(device="cpu")
    draft = G.early_exit_draft(lm, args.depth)
    draft.model.generation_config.num_assistant_tokens = args.k
    draft.model.generation_config.num_assistant_tokens_schedule = "constant"
    draft.model.generation_config.assistant_confidence_threshold = 0  # no early stop below a confidence (0.4)
    ids = G.prompt_ids(lm, PROMPT, chat=True)
    greedy(lm, ids, 4)  # warm-up
    spec = G.speculative(lm, PROMPT, draft, num_draft_tokens=args.k, chat=True, max_new_tokens=args.tokens)
    methods = {
        "plain greedy": lambda: greedy(lm, ids, args.tokens),
        f"lmkit speculative ({args.depth} layers, k={args.k})": lambda: G.speculative(
            lm, PROMPT, draft, num_draft_tokens=args.k, chat=True, max_new_tokens=args.tokens).ids,
        "transformers assistant_model= (same draft)": lambda: greedy(lm, ids, args.tokens,
                                                                     assistant_model=draft.model),
    }
    rows = ratios(rounds(methods, args.rounds), "plain greedy")

    copies = [G.prompt_ids(lm, t["prompt"], chat=True)
              for t in read_jsonl(data_file("decoding/copy_tasks.jsonl"), ["id", "prompt"])[:args.copy_tasks]]
    lookup = {"plain greedy (copy tasks)": lambda: [greedy(lm, x, 48) for x in copies],
              "prompt lookup, 10 tokens (copy tasks)": lambda: [greedy(lm, x, 48, prompt_lookup_num_tokens=10)
                                                                for x in copies]}
    rows += ratios(rounds(lookup, args.rounds), "plain greedy (copy tasks)")
    mask_ms, mask_tokens = grammar_ms(lm, 40)
    decode_ms = 1e3 * statistics.median(r["median_s"] for r in rows[:1]) / args.tokens

    result = dict(benchmark="speculative", model=lm.name, device=str(lm.device), dtype=str(lm.dtype),
                  attn=lm.model.config._attn_implementation, torch=torch.__version__, threads=torch.get_num_threads(),
                  cpu_count=os.cpu_count(), platform=platform.platform(terse=True), prompt=PROMPT,
                  tokens=args.tokens, rounds=args.rounds, depth=args.depth, k=args.k,
                  acceptance_rate=spec.acceptance_rate, proposed=spec.proposed, verified=spec.verified,
                  accepted=spec.accepted, tokens_per_pass=spec.tokens_per_pass,
                  grammar_ms_per_token=mask_ms, grammar_tokens=mask_tokens, plain_ms_per_token=decode_ms,
                  load_avg=os.getloadavg()[0], rows=rows, date=time.strftime("%Y-%m-%d %H:%M"))
    out = Path(__file__).parent / "results" / "speculative.json"
    atomic_write_text(out, json.dumps(result, indent=1))
    print(f"early-exit draft {args.depth} layers, k={args.k}: acceptance {spec.acceptance_rate:.3f}, "
          f"{spec.tokens_per_pass:.2f} tokens per target pass")
    print(f"\n| method | median s | speed-up vs plain (median of {args.rounds}; min-max) | seconds vs plain, paired |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['median_s']:.2f} | {r['speedup_median']:.2f} "
              f"({r['speedup_min']:.2f}-{r['speedup_max']:.2f}) | {r['seconds_vs_base']} |")
    print(f"\nllguidance grammar work: {mask_ms:.2f} ms per token ({mask_tokens} tokens) vs {decode_ms:.0f} ms "
          f"per token of plain greedy\nwritten {out} (load average at the end: {result['load_avg']:.1f} on {os.cpu_count()} "
          "cores)")


if __name__ == "__main__":
    main()
