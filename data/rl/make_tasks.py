"""Write the verifiable task of notebook 18: ``train.jsonl``, ``test.jsonl`` and ``validation.jsonl``, one-step word
problems.

Run ``python data/rl/make_tasks.py`` to rebuild the three files byte for byte (fixed seed, no network, no model). Every
template and name below was written for this project. See README.md in this folder.

Each item is a one-step word problem, an addition ("buys 7 more") or a subtraction ("gives away 7"), half of each,
with numbers up to 25 and a whole-number answer from 1 to 50, which :mod:`lmkit.rl` checks by computing it (the
reward is computed, not judged).
The split is by problem: a pair of numbers with an operation, ``(op, a, b)``, appears in one split only, whatever
the wording, so a held-out item is never a reworded training item. ``validation`` is for choosing the training
settings (``benchmarks/rl_grpo.py``), so that ``test`` is scored only once they are fixed.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 17
HERE = Path(__file__).resolve().parent
SIZES = {"train": 240, "test": 120, "validation": 60}  # validation last: it leaves the other two as they were
LOW, HIGH = 2, 25  # the numbers in a problem; subtraction keeps the answer >= 1

NAMES = ["Tom", "Anna", "Sam", "Mia", "Ben", "Lucy", "Omar", "Nina", "Leo", "Zoe", "Ravi", "Ella"]
THINGS = ["apples", "books", "coins", "pens", "cards", "stickers", "marbles", "shells", "stamps", "pencils"]
ADD = ["{n} has {a} {t} and buys {b} more.",
       "{n} has {a} {t}. A friend gives {n} {b} more.",
       "{n} had {a} {t} and found {b} more."]
SUB = ["{n} has {a} {t} and gives away {b}.",
       "{n} has {a} {t} and loses {b} of them.",
       "{n} had {a} {t} and sold {b}."]
QUESTION = " How many {t} does {n} have now?"


def problem(rng: random.Random, op: str) -> tuple[str, int, int]:
    a = rng.randint(LOW, HIGH) if op == "add" else rng.randint(LOW + 1, HIGH)
    b = rng.randint(LOW, HIGH) if op == "add" else rng.randint(1, a - 1)
    return op, a, b


def item(rng: random.Random, op: str, a: int, b: int) -> dict:
    n, t = rng.choice(NAMES), rng.choice(THINGS)
    story = rng.choice(ADD if op == "add" else SUB).format(n=n, a=a, b=b, t=t)
    return {"question": story + QUESTION.format(n=n, t=t), "answer": a + b if op == "add" else a - b,
            "op": op, "a": a, "b": b}


def build() -> dict[str, list[dict]]:
    rng = random.Random(SEED)
    seen: set[tuple[str, int, int]] = set()
    splits: dict[str, list[dict]] = {}
    for split, size in SIZES.items():
        rows, ops = [], ["add", "sub"] * (size // 2)  # as many additions as subtractions
        rng.shuffle(ops)
        while len(rows) < size:
            key = problem(rng, ops[len(rows)])
            if key in seen:
                continue
            seen.add(key)
            rows.append({"id": f"{split}-{len(rows):04d}", **item(rng, *key)})
        splits[split] = rows
    return splits


def main() -> None:
    for split, rows in build().items():
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (HERE / f"{split}.jsonl").write_text(text, encoding="utf-8")
        print(f"{split}: {len(rows)} items")


if __name__ == "__main__":
    main()
