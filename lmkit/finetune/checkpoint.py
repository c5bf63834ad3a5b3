"""Checkpoints of a fine-tuning run: :mod:`lmkit.training.checkpoint`, also reachable here (notebook 12).

Written once, in :mod:`lmkit.training.checkpoint`, for every method that runs on :func:`lmkit.training.fit`
(fine-tuning, DPO, distillation): safetensors and JSON, written atomically, resumed step for step.
"""
from __future__ import annotations

from lmkit.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, write_json

__all__ = ["latest_checkpoint", "save_checkpoint", "load_checkpoint", "write_json"]
