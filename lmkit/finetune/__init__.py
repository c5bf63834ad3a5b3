"""Fine-tuning a causal LM, full or LoRA, on Accelerate, with checkpoints that resume exactly (notebook 12).

The steps run on the package's one training loop, :func:`lmkit.training.fit`; this package brings the data, the
model (LoRA or not) and the loss.

| module | what it holds |
|---|---|
| :mod:`~lmkit.finetune.config` | ``TrainConfig`` (every knob of a run; the CLI's JSON), ``as_config`` |
| :mod:`~lmkit.finetune.data` | reading, encoding (prompt masked) and padding (``encode_example``, ``collate``: :mod:`lmkit.logprobs`'s ``encode_completion`` and ``pad``), order |
| :mod:`~lmkit.finetune.loss` | ``forward_nll`` (summed NLL of the labelled tokens; the rows' shared prefix run once: ``shared_prefix_logprobs``), ``evaluate_loss`` |
| :mod:`~lmkit.finetune.lora` | ``add_lora`` (peft), ``merge``, ``save`` (a folder ``lmkit.load`` reads) |
| :mod:`~lmkit.finetune.checkpoint` | the checkpoints of :mod:`lmkit.training.checkpoint`, also reachable here |
| :mod:`~lmkit.finetune.plots` | ``plot_loss_curves`` (also ``plot_history``), ``LivePlot`` |
| :mod:`~lmkit.finetune.loop` | ``train`` (data, model and loss on :func:`lmkit.training.fit`), ``FinetuneResult`` (also ``Result``), ``make_schedule`` |
| :mod:`~lmkit.finetune.metrics` | ``greedy_exact_match``, ``greedy_answers`` |
| :mod:`~lmkit.finetune.cli` | ``python -m lmkit.finetune --config c.json`` (also under ``accelerate launch``) |

Every public name is also here: ``from lmkit import finetune as ft; ft.train(...)``. ``ft.answer`` is the name that
notebook 12 uses for :func:`greedy_answers`.
"""
from __future__ import annotations

from lmkit.files import read_jsonl  # the package's one JSONL reader, also reachable here
from lmkit.finetune.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, write_json
from lmkit.finetune.cli import main
from lmkit.finetune.config import DEFAULT_LR, LORA_TARGETS, METHODS, SCHEDULES, TrainConfig, as_config
from lmkit.finetune.data import (DATASET, DATE_SPLITS, IGNORE, RECORD_FIELDS, collate, encode_example, encode_text,
                                 example_order, format_prompt, load_examples, load_split, read_records)
from lmkit.finetune.lora import add_lora, count_parameters, merge, save
from lmkit.finetune.loop import FinetuneResult, Result, make_schedule, train
from lmkit.finetune.loss import evaluate_loss, forward_nll, shared_prefix_length, shared_prefix_logprobs
from lmkit.finetune.metrics import greedy_answers, greedy_exact_match
from lmkit.finetune.plots import LivePlot, plot_history, plot_loss_curves

answer = greedy_answers  # the name notebook 12 uses

__all__ = ["DATASET", "DATE_SPLITS", "DEFAULT_LR", "IGNORE", "LORA_TARGETS", "METHODS", "RECORD_FIELDS", "SCHEDULES",
           "FinetuneResult", "LivePlot", "Result", "TrainConfig", "add_lora", "as_config", "collate", "count_parameters",
           "encode_example", "encode_text", "evaluate_loss", "example_order", "format_prompt", "forward_nll",
           "greedy_answers", "greedy_exact_match", "latest_checkpoint", "load_checkpoint", "load_examples",
           "load_split", "main", "make_schedule", "merge", "plot_history", "plot_loss_curves", "read_records", "save",
           "save_checkpoint", "shared_prefix_length", "shared_prefix_logprobs", "train", "write_json"]
