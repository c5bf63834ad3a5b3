"""The data of a fine-tuning run: supervised records and plain text, encoded, padded and ordered (notebook 12).

- Supervised JSONL (``{"prompt", "completion"}`` per line; the loss is on the completion only), read with the one
  validating reader :func:`lmkit.files.read_jsonl`; the project's date set (``"dates:<split>"``); plain text cut
  into blocks (``"shakespeare:train"``, a ``.txt`` path).
- :func:`encode_example` and :func:`collate` are the fine-tuning names of :mod:`lmkit.logprobs`'s one prompt +
  completion encoding and one padding (right padding, labels padded with -100).
- :func:`example_order`: the data position alone says which examples come next, so a resumed run sees the same ones."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from lmkit import checks
from lmkit.data import DataError, data_file
from lmkit.files import read_jsonl
from lmkit.logprobs import IGNORE, encode_completion, labelled_example, special_tokens_in
from lmkit.logprobs import pad as pad_batch

__all__ = ["DATASET", "DATE_SPLITS", "IGNORE", "RECORD_FIELDS", "read_records", "load_split", "format_prompt",
           "encode_example", "encode_text", "load_examples", "collate", "example_order"]


DATASET = "finetune"
"""The folder of the project's date-normalisation data set under ``data/`` (see ``data/finetune/README.md``)."""
DATE_SPLITS = ("train", "validation", "test")

RECORD_FIELDS = ("prompt", "completion")
"""The fields of a supervised example: the loss is on the completion only."""


def read_records(path) -> list[dict]:
    """The ``{"prompt", "completion"}`` rows of a JSONL file, every line checked by :func:`lmkit.files.read_jsonl`
    (notebook 12): a bad line raises a one-line DataError naming the file, the line and the fix."""
    return read_jsonl(path, RECORD_FIELDS)


def format_prompt(tokenizer, prompt: str) -> str:
    """The prompt as the model sees it at inference: one user turn in its chat template, ready for the answer (notebook 12)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=False)
    return prompt + "\n"


def encode_example(tokenizer, prompt: str, completion: str, max_length: int = 256) -> dict:
    """Token ids of prompt + completion + end-of-turn, with the prompt's labels masked to -100 (notebook 12).

    The prompt in its chat template (:func:`format_prompt`) and the completion are tokenized apart, exactly as at
    generation time (the answer's tokens start right after the prompt's): :func:`lmkit.logprobs.encode_completion`
    with ``rule="apart"``, ``eos=True``, then :func:`lmkit.logprobs.labelled_example`. Too long: the start of the
    prompt is cut. A prompt that writes a special token as text (``"<|im_end|>"``) is refused in one line: the chat
    template would make it a control token, ending the user's turn inside the data (TRL #4481's kind; a completion
    that does so is refused by :func:`lmkit.logprobs.encode_completion`).
    """
    found = special_tokens_in(tokenizer, prompt)
    if found:
        checks.fail(f"prompt {checks.show(prompt)} writes the special token {found[0]!r} as text: the chat template "
                    "adds the turn markers itself; remove it from the data", DataError)
    return labelled_example(*encode_completion(tokenizer, format_prompt(tokenizer, prompt), completion, rule="apart",
                                               eos=True, max_length=max_length))


def encode_text(tokenizer, text: str, block_size: int = 128) -> list[dict]:
    """Plain text cut into blocks of ``block_size`` tokens, every token a label (causal LM, notebook 12)."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False).input_ids  # longer than the context: cut below
    blocks = [ids[i:i + block_size] for i in range(0, len(ids) - 1, block_size)]
    blocks = [b for b in blocks if len(b) >= 2]
    return [{"input_ids": b, "labels": list(b)} for b in blocks]


def load_examples(spec, tokenizer, *, block_size: int = 128, max_length: int = 256,
                  limit: int | None = None) -> list[dict]:
    """Encoded examples from a .jsonl/.txt path, ``"dates:<split>"``, ``"shakespeare:<split or work>"`` or a list of
    records (notebook 12).

    Every line is checked before anything is returned, so bad data fails before training starts.
    """
    if isinstance(spec, (list, tuple)):
        records = list(spec)
        for i, row in enumerate(records):
            if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k].strip()
                                                    for k in ("prompt", "completion")):
                raise DataError(f"record {i}: {row!r:.60} needs non-empty 'prompt' and 'completion' strings")
        examples = [encode_example(tokenizer, r["prompt"], r["completion"], max_length) for r in records[:limit]]
    elif isinstance(spec, str) and spec.startswith("dates:"):
        rows = load_split(spec.split(":", 1)[1])
        examples = [encode_example(tokenizer, r["prompt"], r["completion"], max_length) for r in rows[:limit]]
    elif isinstance(spec, str) and spec.startswith("shakespeare:"):
        from lmkit import data

        name = spec.split(":", 1)[1]
        text = data.corpus(name) if name in data.SPLITS else data.read_work(name)
        examples = encode_text(tokenizer, text, block_size)
    elif isinstance(spec, (str, os.PathLike)) and str(spec).endswith(".jsonl"):
        rows = read_records(spec)[:limit]  # every line is checked, only the kept ones are tokenized
        examples = [encode_example(tokenizer, r["prompt"], r["completion"], max_length) for r in rows]
    elif isinstance(spec, (str, os.PathLike)) and str(spec).endswith(".txt"):
        path = Path(spec)
        if not path.is_file():
            raise DataError(f"{path}: no such file; pass the path of a .txt file")
        try:
            text = path.read_text(encoding="utf-8-sig")  # a UTF-8 byte-order mark is accepted, not trained on
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
        examples = encode_text(tokenizer, text, block_size)
        if not examples:
            raise DataError(f"{path}: the file is empty (fewer than 2 tokens); give it some text")
    else:
        raise DataError(f"data {spec!r:.80}: pass a .jsonl or .txt path, 'dates:train', 'shakespeare:train', "
                        "'shakespeare:validation', 'shakespeare:<work>', or a list of prompt/completion dicts")
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise DataError(f"data {spec!r:.80}: no examples left (limit={limit}); give it more data")
    return examples


def collate(examples: list[dict], pad) -> dict:
    """Right-pad examples into ``input_ids``, ``attention_mask`` and ``labels`` tensors (notebook 12).

    ``pad``: the pad id (or a tokenizer: :func:`lmkit.logprobs.pad_id`, its pad id, else its end-of-text id).
    :func:`lmkit.logprobs.pad` pads: ``input_ids`` with the pad id, ``attention_mask`` with 0, ``labels`` with -100.
    """
    if not examples:
        checks.fail("collate() got no examples: pass a non-empty list of encoded examples")
    return pad_batch([{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples], pad)


def example_order(n: int, seed: int, position: int, count: int) -> list[int]:
    """Indices of examples ``position .. position+count-1`` of an endless stream of reshuffled epochs (notebook 12).

    Epoch ``e`` is ``randperm(n)`` seeded with ``seed + e``: the data position alone (how many examples were
    consumed) says where a run is, so a resumed run sees exactly the examples that it would have seen.
    """
    out, perms = [], {}
    for k in range(position, position + count):
        epoch = k // n
        if epoch not in perms:
            perms[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        out.append(perms[epoch][k % n])
    return out


def load_split(split: str, limit: int | None = None) -> list[dict]:
    """A split of the project's date data set: ``'train'``, ``'validation'`` or ``'test'`` (notebook 12).

    Read from the checkout's ``data/finetune/``, or downloaded once into the lmkit cache (:func:`lmkit.data.data_file`).
    """
    if split not in DATE_SPLITS:
        raise DataError(f"split={split!r}: use 'train', 'validation' or 'test'")
    return read_records(data_file(f"{DATASET}/{split}.jsonl"))[:limit]
