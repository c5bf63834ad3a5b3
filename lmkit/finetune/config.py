"""What a fine-tuning run depends on: :class:`TrainConfig`, also the JSON that ``python -m lmkit.finetune`` reads
(notebook 12)."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lmkit import checks
from lmkit.training.loop import SCHEDULES

__all__ = ["LORA_TARGETS", "DEFAULT_LR", "METHODS", "SCHEDULES", "TrainConfig", "as_config"]


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every linear layer of a Llama block: attention and MLP (notebook 12 explains the choice)."""

DEFAULT_LR = {"lora": 1e-3, "full": 5e-5}
METHODS = ("lora", "full")


@dataclass
class TrainConfig:
    """Everything a run depends on; also the JSON that ``python -m lmkit.finetune --config`` reads (notebook 12)."""

    model: str | None = None                 # None: the bundled SmolLM2-135M-Instruct; or a folder / hub id
    method: str = "lora"                     # "lora" or "full"
    train_data: object = "dates:train"       # "dates:<split>", .jsonl/.txt path, "shakespeare:train|validation|<work>"
    val_data: object = "dates:validation"    # or a list of {"prompt", "completion"} dicts
    max_train_examples: int | None = None
    max_val_examples: int | None = None
    block_size: int = 128                    # tokens per example for plain text
    max_length: int = 256                    # longer supervised examples lose the start of their prompt
    max_steps: int = 50                      # optimizer steps
    micro_batch_size: int = 8                # examples per forward pass, per process
    grad_accum: int = 1                      # forward passes per optimizer step
    lr: float | None = None                  # None: 1e-3 for LoRA, 5e-5 for full
    schedule: str = "cosine"                 # after a linear warm-up: "cosine", "linear" or "constant"
    warmup_steps: int = 5
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    eval_every: int = 10                     # validation loss every N steps (and at step 0 and at the end)
    save_every: int = 0                      # checkpoint every N steps (0: never); needs output_dir
    keep_checkpoints: int = 2
    output_dir: str | None = None
    resume: bool = False                     # continue from the last checkpoint in output_dir
    seed: int = 0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple = LORA_TARGETS
    mixed_precision: str = "auto"            # "auto": bf16 (or fp16) on a GPU, none on a CPU
    attn_implementation: str = "sdpa"        # faster for training than the "eager" that lmkit.load uses
    progress: bool | None = None             # progress bar: None follows lmkit.env.PROGRESS; False also silences prints
    save_model: bool = False                 # at the end: merge and save to output_dir/"model"

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build a config, naming any unknown key and the valid ones (notebook 12)."""
        names = [f.name for f in fields(cls)]
        for key in values:
            if key not in names:
                raise ValueError(f"unknown config key {key!r}: valid keys are {', '.join(names)}")
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise a one-line ValueError (:class:`lmkit.checks.CheckError`) naming a bad value and the fix.

        Counts must be integers (``2.7`` and ``True`` are refused, not rounded), rates finite numbers.
        """
        if self.method not in METHODS:
            checks.fail(f"method={self.method!r}: use 'lora' or 'full'")
        if self.schedule not in SCHEDULES:
            checks.fail(f"schedule={self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        for name in ("max_steps", "micro_batch_size", "grad_accum", "block_size", "max_length", "lora_r"):
            checks.integer(name, getattr(self, name), low=1, fix="pass a whole number such as 8")
        for name in ("eval_every", "save_every", "warmup_steps", "keep_checkpoints"):
            checks.integer(name, getattr(self, name), low=0, fix="pass a whole number; 0 turns it off")
        for name in ("max_train_examples", "max_val_examples"):
            if getattr(self, name) is not None:
                checks.integer(name, getattr(self, name), low=1, fix="pass a whole number, or None for all")
        checks.integer("seed", self.seed, low=0, fix="pass e.g. seed=0")
        if self.lr is not None:
            checks.real("lr", self.lr, low=0, low_open=True, fix="pass a positive learning rate, or None for the "
                        "method's default")
        if self.max_grad_norm is not None:
            checks.real("max_grad_norm", self.max_grad_norm, low=0, fix="pass 0 or None for no clipping")
        checks.real("weight_decay", self.weight_decay, low=0, fix="pass 0 for no weight decay")
        checks.real("lora_alpha", self.lora_alpha, low=0, low_open=True, fix="pass e.g. 2 * lora_r")
        checks.probability("lora_dropout", self.lora_dropout, open_high=True, fix="pass e.g. 0.05, or 0 for none")
        for name in ("resume", "save_model"):
            checks.boolean(name, getattr(self, name))
        if self.progress is not None:
            checks.boolean("progress", self.progress, fix="pass True, False or None (lmkit.env.PROGRESS)")
        if (self.save_every or self.resume or self.save_model) and not self.output_dir:
            checks.fail("checkpoints, resume and save_model need output_dir: set output_dir='runs/my-run'")
        if self.mixed_precision not in {"auto", "no", "bf16", "fp16"}:
            checks.fail(f"mixed_precision={self.mixed_precision!r}: use 'auto', 'no', 'bf16' or 'fp16'")

    @property
    def learning_rate(self) -> float:
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.method]


def as_config(config=None, overrides: dict | None = None) -> TrainConfig:
    """A checked :class:`TrainConfig` from a TrainConfig, a dict or a JSON file path, with ``overrides`` applied."""
    if config is None:
        values = {}
    elif isinstance(config, TrainConfig):
        values = asdict(config)
    elif isinstance(config, dict):
        values = dict(config)
    elif isinstance(config, (str, os.PathLike)):
        path = Path(config)
        try:
            values = json.loads(path.read_text(encoding="utf-8-sig"))  # a UTF-8 byte-order mark is accepted
        except FileNotFoundError:
            raise ValueError(f"config file {path} does not exist: pass the path of a JSON file") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"config file {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {path}, line {exc.lineno}: invalid JSON ({exc.msg}); write one JSON "
                             'object such as {"method": "lora", "max_steps": 50}') from None
        if not isinstance(values, dict):
            raise ValueError(f"config file {path}: a JSON {type(values).__name__}, not an object; write "
                             '{"method": "lora", "max_steps": 50}')
    else:
        raise ValueError(f"config {config!r:.60}: pass a TrainConfig, a dict or a JSON file path")
    values.update(overrides or {})
    if isinstance(values.get("lora_targets"), list):
        values["lora_targets"] = tuple(values["lora_targets"])
    return TrainConfig.from_dict(values)
