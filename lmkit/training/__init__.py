"""One training loop for every method of the workbook, and its checkpoints (notebooks 12, 14 and 17).

| module | what it holds |
|---|---|
| :mod:`~lmkit.training.loop` | :func:`fit` (AdamW, schedule, accumulation, clipping, Accelerate, evaluation, history, resume), ``FitSettings``, ``FitResult``, ``make_schedule``, ``make_accelerator`` |
| :mod:`~lmkit.training.checkpoint` | safetensors + JSON checkpoints, written atomically, that resume step for step |

A method is a loss and a batch source: ``fit(model, loss_fn, batches, FitSettings(max_steps=50, lr=1e-3))`` with
``loss_fn(model, batch) -> (loss, metrics)``. Fine-tuning (:func:`lmkit.finetune.train`), DPO
(:func:`lmkit.preference.train`) and distillation (:func:`lmkit.compress.distill`) are written that way.
"""
from __future__ import annotations

from lmkit.training.checkpoint import (fingerprint, latest_checkpoint, load_checkpoint, save_checkpoint,
                                       weights_fingerprint, write_json)
from lmkit.training.loop import (SCHEDULES, FitResult, FitSettings, count_tokens, fit, make_accelerator,
                                 make_schedule)

__all__ = ["SCHEDULES", "FitResult", "FitSettings", "count_tokens", "fingerprint", "fit", "latest_checkpoint",
           "load_checkpoint", "make_accelerator", "make_schedule", "save_checkpoint", "weights_fingerprint",
           "write_json"]
