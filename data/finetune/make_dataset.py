"""Write the date-normalisation data set of notebook 12: ``train.jsonl``, ``validation.jsonl``, ``test.jsonl``.

Run ``python data/finetune/make_dataset.py`` to rebuild the three files byte for byte (fixed seed, no network).
See README.md in this folder for the schema and the reasoning behind the split.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

SEED = 2026
HERE = Path(__file__).resolve().parent
SIZES = {"train": 800, "validation": 64, "test": 160}

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ORDINAL_WORDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
                 "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
                 "eighteenth", "nineteenth", "twentieth", "twenty-first", "twenty-second", "twenty-third",
                 "twenty-fourth", "twenty-fifth", "twenty-sixth", "twenty-seventh", "twenty-eighth",
                 "twenty-ninth", "thirtieth", "thirty-first"]


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _parts(d: dt.date) -> dict:
    return dict(Y=d.year, M=MONTHS[d.month - 1], Mon=MONTHS[d.month - 1][:3], d=d.day, o=ordinal(d.day),
                W=WEEKDAYS[d.weekday()], Wd=WEEKDAYS[d.weekday()][:3], ow=ORDINAL_WORDS[d.day - 1])


# How a date is written. Training and validation use the first list; test uses ONLY the second (unseen) list.
SEEN_FORMATS = ["{M} {d}, {Y}", "{d} {M} {Y}", "{Mon} {d}, {Y}", "{o} of {M}, {Y}", "{W}, {M} {d}, {Y}",
                "{M} {o} {Y}", "{d} {Mon} {Y}", "{Y}, {M} {d}"]
UNSEEN_FORMATS = ["{d}-{Mon}-{Y}", "the {o} day of {M} in the year {Y}", "{Wd} {d} {Mon} {Y}", "{Y} {Mon} {d}",
                  "{M} the {ow}, {Y}", "{W} the {o} of {M} {Y}"]

# The sentence the date sits in. Again: test sentences never occur in training.
SEEN_SENTENCES = ["{date}", "The meeting was moved to {date}.", "She was born on {date}.",
                  "Invoice due: {date}", "We signed the lease on {date}.", "The package arrived {date}.",
                  "Deadline for applications is {date}.", "He left the company on {date}."]
UNSEEN_SENTENCES = ["{date}", "Our flight departs on {date}, weather permitting.", "Date of the incident: {date}",
                    "The concert was postponed until {date}.", "They got married on {date} in Lisbon.",
                    "Last inspection recorded on {date}."]

# The instruction. One wording for training; the test keeps the same one so that it measures the skill.
INSTRUCTION = "Write the date in this text as YYYY-MM-DD. Answer with the date only.\n\n"


def make(split: str, n: int, rng: random.Random, used: set) -> list[dict]:
    formats = UNSEEN_FORMATS if split == "test" else SEEN_FORMATS
    sentences = UNSEEN_SENTENCES if split == "test" else SEEN_SENTENCES
    rows = []
    while len(rows) < n:
        d = dt.date(1900, 1, 1) + dt.timedelta(days=rng.randrange(200 * 365))
        if d in used:  # every date appears in one split only
            continue
        used.add(d)
        fmt, sentence = rng.choice(formats), rng.choice(sentences)
        text = sentence.format(date=fmt.format(**_parts(d)))
        rows.append({"id": f"{split}-{len(rows):04d}", "prompt": INSTRUCTION + text, "completion": d.isoformat(),
                     "format": fmt, "sentence": sentence})
    return rows


def main() -> None:
    rng, used = random.Random(SEED), set()
    for split, n in SIZES.items():
        rows = make(split, n, rng, used)
        with open(HERE / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{split}: {len(rows)} rows")


if __name__ == "__main__":
    main()
