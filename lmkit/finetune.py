"""Fine-tuning a causal LM, full or LoRA, on Accelerate, with checkpoints that resume exactly (notebook 06).

- Data: a supervised JSONL file (one ``{"prompt": ..., "completion": ...}`` object per line; the loss is on the
  completion only), the project's date set (``"dates:train"``), or plain text cut into blocks (domain adaptation,
  e.g. ``"shakespeare:train"``).
- ``train(config)``: the training loop, written out by hand on :class:`accelerate.Accelerator` so the same code runs on
  a CPU, on one GPU in mixed precision and on many GPUs with ``accelerate launch -m lmkit.finetune --config c.json``.
  Gradient accumulation, warm-up then cosine decay, gradient clipping, validation every ``eval_every`` steps, a tqdm
  bar and an optional live loss plot.
- Checkpoints every ``save_every`` steps: the trainable weights, the optimizer, the scheduler, every RNG and the data
  position, as safetensors + JSON, written atomically. ``resume=True`` continues from the last one, step for step.
- ``merge(lm)`` folds LoRA into the weights; ``save(lm, folder)`` writes a folder that ``lmkit.load(folder)`` loads.

Multi-GPU: checkpoints assume replicated weights (DDP). FSDP shards them; use ``accelerator.save_state`` for that.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import threading
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lmkit.data import DataError, data_file
from lmkit.files import read_jsonl

DATASET = "finetune"
"""The folder of the project's date-normalisation data set under ``data/`` (see ``data/finetune/README.md``)."""
DATE_SPLITS = ("train", "validation", "test")

IGNORE = -100
"""Label value that the loss skips (prompt tokens and padding)."""

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every linear layer of a Llama block: attention and MLP (notebook 06 explains the choice)."""

DEFAULT_LR = {"lora": 1e-3, "full": 5e-5}
METHODS = ("lora", "full")
SCHEDULES = ("cosine", "linear", "constant")


# ----------------------------------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """Everything a run depends on; also the JSON that ``python -m lmkit.finetune --config`` reads (notebook 06)."""

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
    progress: bool = True
    save_model: bool = False                 # at the end: merge and save to output_dir/"model"

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build a config, naming any unknown key and the valid ones (notebook 06)."""
        names = [f.name for f in fields(cls)]
        for key in values:
            if key not in names:
                raise ValueError(f"unknown config key {key!r}: valid keys are {', '.join(names)}")
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise a one-line ValueError for a bad value."""
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}: use 'lora' or 'full'")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        for name in ("max_steps", "micro_batch_size", "grad_accum", "block_size", "max_length", "lora_r"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be a positive integer")
        for name in ("eval_every", "save_every", "warmup_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be 0 or more")
        if (self.save_every or self.resume or self.save_model) and not self.output_dir:
            raise ValueError("checkpoints, resume and save_model need output_dir: set output_dir='runs/my-run'")
        if self.mixed_precision not in {"auto", "no", "bf16", "fp16"}:
            raise ValueError(f"mixed_precision={self.mixed_precision!r}: use 'auto', 'no', 'bf16' or 'fp16'")

    @property
    def learning_rate(self) -> float:
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.method]


# ----------------------------------------------------------------------------------------------- data
RECORD_FIELDS = ("prompt", "completion")
"""The fields of a supervised example: the loss is on the completion only."""


def read_records(path) -> list[dict]:
    """The ``{"prompt", "completion"}`` rows of a JSONL file, every line checked by :func:`lmkit.files.read_jsonl`
    (notebook 06): a bad line raises a one-line DataError naming the file, the line and the fix."""
    return read_jsonl(path, RECORD_FIELDS)


def format_prompt(tokenizer, prompt: str) -> str:
    """The prompt as the model sees it at inference: one user turn in its chat template, ready for the answer (notebook 06)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=False)
    return prompt + "\n"


def encode_example(tokenizer, prompt: str, completion: str, max_length: int = 256) -> dict:
    """Token ids of prompt + completion + end-of-turn, with the prompt's labels masked to -100 (notebook 06).

    Prompt and completion are tokenized separately, exactly as at generation time (the answer's tokens start
    right after the prompt's). Too long: the start of the prompt is cut.
    """
    p_ids = tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=False).input_ids
    c_ids = tokenizer(completion, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    keep = max(max_length - len(c_ids), 0)
    p_ids = p_ids[len(p_ids) - keep:] if keep else []
    c_ids = c_ids[:max_length - len(p_ids)]
    return {"input_ids": p_ids + c_ids, "labels": [IGNORE] * len(p_ids) + c_ids}


def encode_text(tokenizer, text: str, block_size: int = 128) -> list[dict]:
    """Plain text cut into blocks of ``block_size`` tokens, every token a label (causal LM, notebook 06)."""
    ids = tokenizer(text, add_special_tokens=False, verbose=False).input_ids  # longer than the context: cut below
    blocks = [ids[i:i + block_size] for i in range(0, len(ids) - 1, block_size)]
    blocks = [b for b in blocks if len(b) >= 2]
    return [{"input_ids": b, "labels": list(b)} for b in blocks]


def load_examples(spec, tokenizer, *, block_size: int = 128, max_length: int = 256,
                  limit: int | None = None) -> list[dict]:
    """Encoded examples from a .jsonl/.txt path, ``"dates:<split>"``, ``"shakespeare:<split or work>"`` or a list of
    records (notebook 06).

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
        examples = encode_text(tokenizer, path.read_text(encoding="utf-8"), block_size)
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


def collate(examples: list[dict], pad_id: int) -> dict:
    """Right-pad a list of examples into ``input_ids``, ``attention_mask`` and ``labels`` tensors (notebook 06)."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def example_order(n: int, seed: int, position: int, count: int) -> list[int]:
    """Indices of examples ``position .. position+count-1`` of an endless stream of reshuffled epochs (notebook 06).

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


# ----------------------------------------------------------------------------------------------- loss
def masked_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token NLL over the positions whose label is not -100, and how many there are (notebook 06)."""
    logits, targets = logits[:, :-1].float(), labels[:, 1:]
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE,
                            reduction="sum")
    return total, (targets != IGNORE).sum()


def forward_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`masked_nll` of a batch, projecting onto the vocabulary only where some row has a label (notebook 06).

    The LM head (576 x 49,152 for SmolLM2) is a fifth of the compute and most of the memory of a forward pass;
    for a short answer after a long prompt, ``logits_to_keep`` skips it at the prompt positions. Same loss.
    """
    targets = batch["labels"][:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    picked = targets[:, keep]
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), picked.reshape(-1), ignore_index=IGNORE,
                            reduction="sum")
    return total, (picked != IGNORE).sum()


@torch.no_grad()
def evaluate_loss(model, examples: list[dict], pad_id: int, *, batch_size: int = 8, device="cpu",
                  accelerator=None) -> float:
    """Mean NLL per label token over ``examples`` (each process takes its share, then sums) (notebook 06)."""
    was_training = model.training
    model.eval()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = examples[rank::world]
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for i in range(0, len(mine), batch_size):
        batch = {k: v.to(device) for k, v in collate(mine[i:i + batch_size], pad_id).items()}
        nll, count = forward_nll(model, batch)
        total += torch.stack([nll.double(), count.double()])
    if accelerator is not None and world > 1:
        total = accelerator.reduce(total, "sum")
    model.train(was_training)
    return (total[0] / total[1].clamp(min=1)).item()


# ----------------------------------------------------------------------------------------------- models
def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameters, tied weights counted once (notebook 06)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def add_lora(model, cfg: TrainConfig):
    """Wrap ``model`` with peft LoRA adapters on ``cfg.lora_targets``; only the adapters train (notebook 06)."""
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in cfg.lora_targets if t not in present]
    if missing:
        raise ValueError(f"lora_targets {missing} are not modules of this model; choose among its linear layers, "
                         f"e.g. {sorted(n for n in present if n.endswith('proj'))}")
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_targets), task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft calls a transformers method that transformers 5 renamed
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora)


def merge(lm):
    """The LM with LoRA folded into its weights, ``W + (alpha/r)·B·A``, as a plain transformers model (notebook 06)."""
    from peft import PeftModel

    from lmkit.models import LM

    if isinstance(lm.model, PeftModel):
        return LM(model=lm.model.merge_and_unload(), tokenizer=lm.tokenizer, device=lm.device, name=lm.name)
    return lm


def save(lm, folder) -> Path:
    """Merge LoRA if any and save model + tokenizer to ``folder`` atomically; ``lmkit.load(folder)`` loads it (notebook 06)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lm = merge(lm)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        lm.model.save_pretrained(tmp)
        lm.tokenizer.save_pretrained(tmp)
        old = folder.with_name(folder.name + f".old-{os.getpid()}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


# ----------------------------------------------------------------------------------------------- checkpoints
_STEP_DIR = re.compile(r"^step-(\d{6,})$")


def _flatten_optimizer(state: dict) -> tuple[dict, dict]:
    tensors, extra = {}, {}
    for idx, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                extra[f"state.{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "extra": extra}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict = {}
    for name, value in list(tensors.items()) + list(meta["extra"].items()):
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_state() -> tuple[dict, dict]:
    np_state = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np_state[1].astype(np.int64))}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    py = random.getstate()
    meta = {"python": [py[0], list(py[1]), py[2]], "numpy": [np_state[0], int(np_state[2]), int(np_state[3]),
                                                             float(np_state[4])]}
    return tensors, meta


def _set_rng_state(tensors: dict, meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    kind, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, values, gauss = meta["python"]
    random.setstate((version, tuple(values), gauss))


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def latest_checkpoint(output_dir) -> Path | None:
    """The complete checkpoint with the highest step in ``output_dir/checkpoints``, or None (notebook 06).

    Half-written ones are ``*.tmp`` folders, which never match.
    """
    root = Path(output_dir) / "checkpoints"
    steps = [(int(m.group(1)), p) for p in root.glob("step-*") if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return max(steps)[1] if steps else None


def save_checkpoint(output_dir, *, model, optimizer, scheduler, state: dict, accelerator, keep: int = 2) -> Path:
    """Write ``checkpoints/step-NNNNNN`` atomically: weights, optimizer, RNG (safetensors) and state (JSON) (notebook 06).

    Everything goes into ``step-NNNNNN.tmp`` first and the folder is renamed only when complete; a process
    killed in between leaves no half checkpoint behind that resume could pick up.
    """
    from safetensors.torch import save_file

    root = Path(output_dir) / "checkpoints"
    final = root / f"step-{state['step']:06d}"
    tmp = root / (final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    rng_tensors, rng_meta = _rng_state()
    save_file(rng_tensors, tmp / f"rng-{accelerator.process_index}.safetensors",
              metadata={"json": json.dumps(rng_meta)})
    if accelerator.is_main_process:
        net = accelerator.unwrap_model(model)
        weights = {n: p.detach().cpu().contiguous() for n, p in net.named_parameters() if p.requires_grad}
        save_file(weights, tmp / "weights.safetensors")
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        save_file(opt_tensors, tmp / "optimizer.safetensors", metadata={"json": json.dumps(opt_meta)})
        full_state = dict(state, scheduler=scheduler.state_dict(),
                          scaler=accelerator.scaler.state_dict() if accelerator.scaler else None)
        (tmp / "state.json").write_text(json.dumps(full_state, indent=1, default=str))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        steps = sorted(p for p in root.glob("step-*") if _STEP_DIR.match(p.name))
        for old in steps[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(folder, *, model, optimizer, scheduler, accelerator) -> dict:
    """Restore what :func:`save_checkpoint` wrote; returns the state dict (step, data position, history) (notebook 06)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = Path(folder)
    net = accelerator.unwrap_model(model)
    params = dict(net.named_parameters())
    weights = load_file(folder / "weights.safetensors")
    trainable = {n for n, p in params.items() if p.requires_grad}
    if set(weights) != trainable:
        raise ValueError(f"checkpoint {folder} holds other parameters than this run trains "
                         f"({len(weights)} vs {len(trainable)}): resume with the same method and LoRA settings")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    with safe_open(folder / "optimizer.safetensors", "pt") as f:
        opt_meta = json.loads(f.metadata()["json"])
        opt_tensors = {k: f.get_tensor(k) for k in f.keys()}
    optimizer.load_state_dict(_unflatten_optimizer(opt_tensors, opt_meta))
    state = json.loads((folder / "state.json").read_text())
    scheduler.load_state_dict(state.pop("scheduler"))
    scaler = state.pop("scaler", None)
    if scaler and accelerator.scaler:
        accelerator.scaler.load_state_dict(scaler)
    rng_file = folder / f"rng-{accelerator.process_index}.safetensors"
    with safe_open(rng_file, "pt") as f:
        rng_meta = json.loads(f.metadata()["json"])
        rng_tensors = {k: f.get_tensor(k) for k in f.keys()}
    _set_rng_state(rng_tensors, rng_meta)
    return state


# ----------------------------------------------------------------------------------------------- plots, memory
def plot_history(history: list[dict], ax=None, title: str = "training and validation loss"):
    """Train loss per step and validation loss per evaluation, against optimizer steps (notebook 06)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    train = [(h["step"], h["train_loss"]) for h in history if h.get("train_loss") is not None]
    val = [(h["step"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
    if train:
        ax.plot(*zip(*train), color="#4C72B0", alpha=0.8, label="train (per step)")
    if val:
        ax.plot(*zip(*val), "o-", color="#DD8452", label="validation")
        best = min(val, key=lambda sv: sv[1])
        ax.axvline(best[0], color="#DD8452", ls=":", lw=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per label token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend(loc="upper right")
    return ax


class LivePlot:
    """A loss plot that redraws in place in a notebook (one display handle), and stays as a static figure (notebook 06)."""

    def __init__(self, title: str = "training and validation loss", figsize=(7, 3.5)):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.title = title
        self.fig, self.ax = plt.subplots(figsize=figsize)
        plot_history([], self.ax, title)
        self.handle = display(self.fig, display_id=True)

    def update(self, history: list[dict]) -> None:
        self.ax.clear()
        plot_history(history, self.ax, self.title)
        self.fig.tight_layout()
        self.handle.update(self.fig)

    def close(self) -> None:
        import matplotlib.pyplot as plt

        plt.close(self.fig)  # the display keeps the last image; the inline backend does not show it twice


def _release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so that resident memory measures what is in use.

    Without it, memory freed by an earlier run in the same process stays resident and is silently reused by the
    next one, whose growth then under-counts what it needs. A no-op where glibc is absent.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak resident memory of this process while the block runs, sampled every 20 ms (GPU: allocator peak) (notebook 06)."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.start = self.peak = 0

    def __enter__(self):
        import psutil

        self._proc, self._stop = psutil.Process(), threading.Event()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            _release_free_memory()
            self.start = self.peak = self._proc.memory_info().rss
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._thread.join()
            self.peak = max(self.peak, self._proc.memory_info().rss)
        return False


# ----------------------------------------------------------------------------------------------- training
@dataclass
class Result:
    """What :func:`train` returns: the trained ``lm`` (a peft model for LoRA), the loss history and measurements."""

    lm: object
    config: TrainConfig
    history: list = field(default_factory=list)
    trainable_params: int = 0
    total_params: int = 0
    seconds_per_step: float = float("nan")
    tokens_per_second: float = float("nan")
    peak_memory_mb: float = float("nan")
    extra_memory_mb: float = float("nan")
    resumed_from: int | None = None
    steps_run: int = 0

    @property
    def train_losses(self) -> list[float]:
        return [h["train_loss"] for h in self.history if h.get("train_loss") is not None]

    @property
    def val_losses(self) -> list[float]:
        return [h["val_loss"] for h in self.history if h.get("val_loss") is not None]

    def summary(self) -> dict:
        """One row of the comparison table (notebook 06)."""
        return {"method": self.config.method, "trainable params": self.trainable_params,
                "total params": self.total_params, "trainable %": 100 * self.trainable_params / self.total_params,
                "seconds/step": self.seconds_per_step, "tokens/s": self.tokens_per_second,
                "peak RSS (MB)": self.peak_memory_mb, "extra memory (MB)": self.extra_memory_mb,
                "val loss first": self.val_losses[0] if self.val_losses else float("nan"),
                "val loss last": self.val_losses[-1] if self.val_losses else float("nan")}


def make_schedule(optimizer, cfg: TrainConfig):
    """Linear warm-up for ``warmup_steps``, then cosine / linear decay to 0 or constant, from transformers (notebook 06)."""
    from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                              get_linear_schedule_with_warmup)

    if cfg.schedule == "constant":
        return get_constant_schedule_with_warmup(optimizer, cfg.warmup_steps)
    make = get_cosine_schedule_with_warmup if cfg.schedule == "cosine" else get_linear_schedule_with_warmup
    return make(optimizer, cfg.warmup_steps, cfg.max_steps)


def _mixed_precision(choice: str) -> str:
    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def _as_config(config, overrides) -> TrainConfig:
    if config is None:
        values = {}
    elif isinstance(config, TrainConfig):
        values = asdict(config)
    elif isinstance(config, dict):
        values = dict(config)
    elif isinstance(config, (str, os.PathLike)):
        path = Path(config)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"config file {path} does not exist: pass the path of a JSON file") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {path}, line {exc.lineno}: invalid JSON ({exc.msg})") from None
    else:
        raise ValueError(f"config {config!r:.60}: pass a TrainConfig, a dict or a JSON file path")
    values.update(overrides)
    if isinstance(values.get("lora_targets"), list):
        values["lora_targets"] = tuple(values["lora_targets"])
    return TrainConfig.from_dict(values)


def train(config=None, *, plot: bool = False, **overrides) -> Result:
    """Fine-tune a causal LM with LoRA or fully, on Accelerate; see :class:`TrainConfig` for every knob (notebook 06).

    ``train(method="lora", max_steps=40)``, ``train("cfg.json")`` or ``train(cfg, resume=True)``. The data is read
    and checked before the model trains. ``plot=True`` draws the live loss curves in a notebook.
    """
    from accelerate import Accelerator

    import lmkit

    cfg = _as_config(config, overrides)
    accelerator = Accelerator(mixed_precision=_mixed_precision(cfg.mixed_precision))
    device = accelerator.device
    lm = lmkit.load(cfg.model, device=device, dtype="float32", attn_implementation=cfg.attn_implementation)
    tok = lm.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # The data first: a bad line fails here, before any step.
    train_ex = load_examples(cfg.train_data, tok, block_size=cfg.block_size, max_length=cfg.max_length,
                             limit=cfg.max_train_examples)
    val_ex = load_examples(cfg.val_data, tok, block_size=cfg.block_size, max_length=cfg.max_length,
                           limit=cfg.max_val_examples) if cfg.val_data is not None else []

    lmkit.env.seed_everything(cfg.seed)
    model = add_lora(lm.model, cfg) if cfg.method == "lora" else lm.model
    model.train()
    trainable, total = count_parameters(model)
    if accelerator.is_main_process and cfg.progress:
        print(f"{cfg.method}: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.2f}%)")
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.learning_rate)
    scheduler = make_schedule(optimizer, cfg)
    model, optimizer = accelerator.prepare(model, optimizer)  # the scheduler is stepped by hand, once per step

    state = {"step": 0, "examples_seen": 0, "history": [], "seed": cfg.seed, "method": cfg.method}
    resumed_from = None
    if cfg.resume and (ckpt := latest_checkpoint(cfg.output_dir)) is not None:
        state = load_checkpoint(ckpt, model=model, optimizer=optimizer, scheduler=scheduler, accelerator=accelerator)
        if state.get("method") != cfg.method or state.get("seed") != cfg.seed:
            raise ValueError(f"checkpoint {ckpt} is from a {state.get('method')} run with seed {state.get('seed')}: "
                             "resume with the same method and seed, or use a new output_dir")
        resumed_from = state["step"]
        if accelerator.is_main_process:
            print(f"resumed from {ckpt} (step {state['step']}, {state['examples_seen']} examples seen)")

    world, rank = accelerator.num_processes, accelerator.process_index
    per_step = cfg.micro_batch_size * cfg.grad_accum * world
    history = state["history"]
    live = LivePlot(f"{cfg.method} fine-tuning: loss") if plot and accelerator.is_main_process else None

    def log_eval(entry):
        entry["val_loss"] = evaluate_loss(model, val_ex, pad_id, batch_size=cfg.micro_batch_size, device=device,
                                          accelerator=accelerator) if val_ex else None

    if state["step"] == 0 and not history and cfg.eval_every and val_ex:
        entry = {"step": 0, "train_loss": None, "lr": 0.0}
        log_eval(entry)
        history.append(entry)
    bar = tqdm(total=cfg.max_steps, initial=state["step"], desc=f"{cfg.method} fine-tuning",
               disable=not cfg.progress or not accelerator.is_local_main_process)
    step_seconds, step_tokens = [], []
    if live:
        live.update(history)
    model.train()
    with PeakMemory(device) as memory:
        while state["step"] < cfg.max_steps:
            t0 = time.perf_counter()
            order = example_order(len(train_ex), cfg.seed, state["examples_seen"], per_step)
            micro = [order[i * cfg.micro_batch_size * world:(i + 1) * cfg.micro_batch_size * world]
                     for i in range(cfg.grad_accum)]
            batches = [collate([train_ex[j] for j in m[rank * cfg.micro_batch_size:(rank + 1) * cfg.micro_batch_size]],
                               pad_id) for m in micro]
            # Normalise by the label tokens of the WHOLE accumulated batch (all processes), not per micro-batch.
            n_local = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches)
            n_total = accelerator.reduce(torch.tensor(float(n_local), device=device), "sum").item()
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            for i, batch in enumerate(batches):
                batch = {k: v.to(device) for k, v in batch.items()}
                last = i == len(batches) - 1
                with accelerator.no_sync(model) if not last and world > 1 else nullcontext():
                    nll, _ = forward_nll(model, batch)
                    accelerator.backward(nll / n_total * world)  # DDP averages gradients over processes
                loss_sum += nll.detach().double()
            grad_norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm else None
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss = (accelerator.reduce(loss_sum, "sum") / n_total).item()
            tokens = accelerator.reduce(torch.tensor(float(sum(int(b["attention_mask"].sum()) for b in batches)),
                                                     device=device), "sum").item()
            step_seconds.append(time.perf_counter() - t0)
            step_tokens.append(tokens)
            state["step"] += 1
            state["examples_seen"] += per_step
            entry = {"step": state["step"], "train_loss": loss, "lr": lr,
                     "grad_norm": float(grad_norm) if grad_norm is not None else None}
            if val_ex and cfg.eval_every and (state["step"] % cfg.eval_every == 0 or state["step"] == cfg.max_steps):
                log_eval(entry)
            history.append(entry)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", **({"val": f"{entry['val_loss']:.3f}"} if entry.get("val_loss")
                                                   is not None else {}))
            if live:
                live.update(history)
            if cfg.save_every and state["step"] % cfg.save_every == 0:
                path = save_checkpoint(cfg.output_dir, model=model, optimizer=optimizer, scheduler=scheduler,
                                       state=state, accelerator=accelerator, keep=cfg.keep_checkpoints)
                if accelerator.is_main_process:
                    bar.write(f"checkpoint {path.name} saved")
                    sys.stdout.flush()
    bar.close()
    if live:
        live.close()
    lm.model = accelerator.unwrap_model(model)
    lm.model.eval()
    result = Result(lm=lm, config=cfg, history=history, trainable_params=trainable, total_params=total,
                    seconds_per_step=float(np.mean(step_seconds)) if step_seconds else float("nan"),
                    tokens_per_second=sum(step_tokens) / sum(step_seconds) if step_seconds else float("nan"),
                    peak_memory_mb=memory.peak / 2**20, extra_memory_mb=(memory.peak - memory.start) / 2**20,
                    resumed_from=resumed_from, steps_run=len(step_seconds))
    if cfg.save_model and accelerator.is_main_process:
        folder = save(lm, Path(cfg.output_dir) / "model")
        result.lm = lmkit.load(folder, device=device)
        if cfg.progress:
            print(f"merged model saved to {folder}")
    if cfg.output_dir and accelerator.is_main_process:
        _write_json(Path(cfg.output_dir) / "history.json", history)
    accelerator.wait_for_everyone()
    return result


# ----------------------------------------------------------------------------------------------- the task's metric
@torch.no_grad()
def greedy_exact_match(lm, records: list[dict], *, batch_size: int = 16, max_length: int = 256) -> list[bool]:
    """For each record: would greedy decoding write exactly ``completion`` then stop? One forward pass each (notebook 06).

    Greedy decoding emits the answer iff, fed the answer so far, the arg-max at every answer position (and at the
    end-of-turn after it) is the answer's next token: so teacher forcing checks it without generating.
    (A different tokenization of the same string would count as wrong; greedy decoding follows the tokenizer's own.)
    """
    model, tok = lm.model, lm.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model.eval()
    hits = []
    for i in range(0, len(records), batch_size):
        ex = [encode_example(tok, r["prompt"], r["completion"], max_length) for r in records[i:i + batch_size]]
        batch = {k: v.to(lm.device) for k, v in collate(ex, pad_id).items()}
        targets = batch["labels"][:, 1:]
        keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
        guess, targets = logits.argmax(-1), targets[:, keep]
        ok = ((guess == targets) | (targets == IGNORE)).all(dim=1)
        hits.extend(ok.tolist())
    return hits


@torch.no_grad()
def answer(lm, prompts: list[str], *, max_new_tokens: int = 16, batch_size: int = 16) -> list[str]:
    """Greedy answers to each prompt in its chat template, batched with left padding (notebook 06)."""
    tok, out = lm.tokenizer, []
    side, tok.padding_side = tok.padding_side, "left"
    try:
        for i in range(0, len(prompts), batch_size):
            texts = [format_prompt(tok, p) for p in prompts[i:i + batch_size]]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(lm.device)
            gen = lm.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tok.pad_token_id)
            out.extend(t.strip() for t in tok.batch_decode(gen[:, enc.input_ids.shape[1]:], skip_special_tokens=True))
    finally:
        tok.padding_side = side
    return out


def load_split(split: str, limit: int | None = None) -> list[dict]:
    """A split of the project's date data set: ``'train'``, ``'validation'`` or ``'test'`` (notebook 06).

    Read from the checkout's ``data/finetune/``, or downloaded once into the lmkit cache (:func:`lmkit.data.data_file`).
    """
    if split not in DATE_SPLITS:
        raise DataError(f"split={split!r}: use 'train', 'validation' or 'test'")
    return read_records(data_file(f"{DATASET}/{split}.jsonl"))[:limit]


# ----------------------------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """``python -m lmkit.finetune --config cfg.json [--resume] [--max-steps N]`` (also under ``accelerate launch``)."""
    parser = argparse.ArgumentParser(prog="python -m lmkit.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file with TrainConfig keys")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in output_dir")
    parser.add_argument("--max-steps", type=int, help="override max_steps")
    args = parser.parse_args(argv)
    overrides = {"resume": True} if args.resume else {}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    try:
        result = train(args.config, **overrides)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    last = result.history[-1] if result.history else {}
    print(json.dumps({"step": last.get("step"), "train_loss": last.get("train_loss"),
                      "val_loss": last.get("val_loss"), "trainable_params": result.trainable_params,
                      "total_params": result.total_params, "seconds_per_step": result.seconds_per_step}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
