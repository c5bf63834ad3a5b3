"""Constrained JSON with lmkit's strict, compact defaults against JSON Schema's open ones (notebook 07).

For each of the project's JSON tasks (``data/decoding/json_tasks.jsonl``) the bundled model answers greedily, in chat,
within the same token budget as notebook 07, under two grammars:

- ``before``: the schema as JSON Schema reads it (objects open unless they say otherwise) and whitespace of up to 12
  spaces or newlines between tokens (lmkit's former options);
- ``after``: lmkit's defaults (:func:`lmkit.decoding.grammar.strict_schema` closes objects that name their
  properties; :data:`lmkit.decoding.grammar.JSON_OPTIONS`: one compact layout).

Each task runs with its schema as written (every task closes its objects) and with ``additionalProperties`` taken
out, as a user who does not know the keyword writes it. An answer counts as valid when it parses and validates
against the schema it was asked for; ``complete`` when the grammar finished within the budget. Greedy decoding is
deterministic, so the spread is over tasks: Wilson intervals per rate, and for the change a paired bootstrap
interval on the difference and an exact McNemar test. A last prompt is the one a reader reported running away
inside an open schema.

    .venv/bin/python benchmarks/json_defaults.py [--tasks 24] [--max-new-tokens 80]

Writes benchmarks/results/json_defaults.json and prints a table.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import jsonschema
from scipy.stats import binomtest

import lmkit
from lmkit.data import data_file
from lmkit.decoding.grammar import Grammar, GrammarLogitsProcessor
from lmkit.decoding.loop import decode
from lmkit.decoding.settings import check_settings, eos_ids, processors, prompt_ids
from lmkit.evaluation.stats import accuracy_interval, paired_difference

BEFORE = dict(strict=False, json_options={"whitespace_pattern": r"[\n ]{0,12}"})
AFTER = dict(strict=True, json_options=None)
RUNAWAY = ("Give the largest city of Japan and its population as JSON.",
           {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
            "required": ["city", "population"]})


def opened(schema):
    """``schema`` with every ``additionalProperties`` key taken out (JSON Schema then leaves objects open)."""
    if isinstance(schema, dict):
        return {k: opened(v) for k, v in schema.items() if k != "additionalProperties"}
    if isinstance(schema, list):
        return [opened(v) for v in schema]
    return schema


def answer(lm, prompt: str, schema: dict, grammar_options: dict, max_new_tokens: int) -> dict:
    """One greedy constrained answer: its text, whether it is valid and complete, and its token count."""
    s = check_settings(lm, chat=True, max_new_tokens=max_new_tokens)
    ids = prompt_ids(lm, prompt, chat=True)
    grammar = GrammarLogitsProcessor(Grammar(lm, json_schema=copy.deepcopy(schema), **grammar_options), ids.shape[1])
    steps = list(decode(lm.model, ids, processors(s, grammar), max_new_tokens=max_new_tokens, do_sample=False,
                        eos=eos_ids(lm)))
    text = lm.tokenizer.decode([t.id for t in steps], skip_special_tokens=True)
    try:
        jsonschema.validate(json.loads(text), schema)
        valid = True
    except (json.JSONDecodeError, jsonschema.ValidationError):
        valid = False
    return dict(text=text, valid=valid, complete=steps[-1].finish_reason in ("grammar", "eos"), tokens=len(steps))


def rate(flags: list[bool]) -> dict:
    low, high = accuracy_interval(sum(flags), len(flags))
    return dict(k=sum(flags), n=len(flags), rate=sum(flags) / len(flags), low=low, high=high)


def mcnemar(before: list[bool], after: list[bool]) -> dict:
    """Exact McNemar test on paired outcomes: how many only ``after`` got right, only ``before``, and the p-value."""
    gained = sum(a and not b for a, b in zip(after, before))
    lost = sum(b and not a for a, b in zip(after, before))
    p = binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
    diff, (low, high) = paired_difference(after, before)
    return dict(gained=gained, lost=lost, p_value=p, difference=diff, low=low, high=high)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=80)
    args = ap.parse_args()
    lm = lmkit.load()
    rows = [json.loads(line) for line in Path(data_file("decoding/json_tasks.jsonl")).read_text().splitlines()
            if line.strip()][:args.tasks]
    start, results = time.perf_counter(), {}
    for variant, shape in (("as written", lambda s: s), ("open", opened)):
        for name, options in (("before", BEFORE), ("after", AFTER)):
            runs = []
            for t in rows:
                schema = shape(t["schema"])
                ask = f"{t['prompt']}\nReply with JSON only, following this JSON Schema: {json.dumps(schema)}"
                runs.append(dict(id=t["id"], **answer(lm, ask, schema, options, args.max_new_tokens)))
            results[f"{variant} / {name}"] = runs
    runaway = {name: answer(lm, RUNAWAY[0], RUNAWAY[1], options, 200)
               for name, options in (("before", BEFORE), ("after", AFTER))}
    summary = {}
    for key, runs in results.items():
        summary[key] = dict(valid=rate([r["valid"] for r in runs]), complete=rate([r["complete"] for r in runs]),
                            mean_tokens=sum(r["tokens"] for r in runs) / len(runs))
    tests = {variant: mcnemar([r["valid"] for r in results[f"{variant} / before"]],
                              [r["valid"] for r in results[f"{variant} / after"]])
             for variant in ("as written", "open")}
    out = dict(machine=platform.processor() or platform.machine(), tasks=len(rows),
               max_new_tokens=args.max_new_tokens, seconds=time.perf_counter() - start, summary=summary,
               paired_tests=tests, runaway=runaway, runs=results)
    path = Path(__file__).parent / "results" / "json_defaults.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(f"{'schemas / grammar':<22} {'valid':>22} {'complete':>22} {'tokens':>7}")
    for key, s in summary.items():
        v, c = s["valid"], s["complete"]
        print(f"{key:<22} {v['k']:>3}/{v['n']} [{v['low']:.2f}, {v['high']:.2f}]     "
              f"{c['k']:>3}/{c['n']} [{c['low']:.2f}, {c['high']:.2f}]     {s['mean_tokens']:>6.1f}")
    for variant, t in tests.items():
        print(f"{variant}: valid after - before = {t['difference']:+.2f} [{t['low']:+.2f}, {t['high']:+.2f}] (paired "
              f"bootstrap); valid only after {t['gained']}, only before {t['lost']}, exact McNemar p = "
              f"{t['p_value']:.3g}")
    for name, r in runaway.items():
        print(f"runaway prompt, {name}: valid={r['valid']} complete={r['complete']} tokens={r['tokens']}: "
              f"{r['text'][:120]!r}")
    print(f"wrote {path} in {out['seconds']:.0f} s")


if __name__ == "__main__":
    main()
