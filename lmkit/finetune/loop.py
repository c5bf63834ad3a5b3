"""The training loop of :func:`train`, written out by hand on ``accelerate.Accelerator`` (notebook 06).

The same code runs on a CPU, on one GPU in mixed precision and on several GPUs (``accelerate launch -m
lmkit.finetune --config c.json``). Each optimizer step: ``grad_accum`` micro-batches per process, the loss of the
whole accumulated batch normalised by its label-token count over every process, gradient clipping, warm-up then
cosine (or linear, constant) decay, validation every ``eval_every`` steps, a checkpoint every ``save_every``.
``train`` reads top to bottom through small functions, one per phase.
"""
from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lmkit.finetune.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, write_json
from lmkit.finetune.config import TrainConfig, as_config
from lmkit.finetune.data import IGNORE, collate, example_order, load_examples
from lmkit.finetune.lora import add_lora, count_parameters, save
from lmkit.finetune.loss import evaluate_loss, forward_nll
from lmkit.finetune.plots import LivePlot
from lmkit.env import show_progress
from lmkit.profile.memory import PeakMemory

__all__ = ["Result", "make_schedule", "train"]


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


@dataclass
class _Run:
    """What the phases of one :func:`train` call share."""

    cfg: TrainConfig
    accelerator: object
    lm: object
    train_ex: list
    val_ex: list
    pad_id: int
    model: object = None
    optimizer: object = None
    scheduler: object = None
    params: list = field(default_factory=list)
    state: dict = field(default_factory=dict)

    @property
    def device(self):
        return self.accelerator.device

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


def _has_accelerator() -> bool:
    """True if torch sees a CUDA GPU or Apple's MPS, where Accelerate picks the device itself."""
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


def _load(cfg: TrainConfig, accelerator) -> _Run:
    """The model, then the data: a bad line fails here, before any step."""
    import lmkit

    lm = lmkit.load(cfg.model, device=accelerator.device, dtype="float32", attn_implementation=cfg.attn_implementation)
    tok = lm.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    train_ex = load_examples(cfg.train_data, tok, block_size=cfg.block_size, max_length=cfg.max_length,
                             limit=cfg.max_train_examples)
    val_ex = load_examples(cfg.val_data, tok, block_size=cfg.block_size, max_length=cfg.max_length,
                           limit=cfg.max_val_examples) if cfg.val_data is not None else []
    return _Run(cfg, accelerator, lm, train_ex, val_ex, pad_id)


def _prepare(run: _Run) -> tuple[int, int]:
    """Seed, wrap with LoRA (or not), build AdamW (no decay on norms and biases) and the schedule; (trainable, total)."""
    import lmkit

    cfg = run.cfg
    lmkit.env.seed_everything(cfg.seed)
    model = add_lora(run.lm.model, cfg) if cfg.method == "lora" else run.lm.model
    model.train()
    trainable, total = count_parameters(model)
    if run.main and cfg.progress is not False:
        print(f"{cfg.method}: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.2f}%)")
    run.params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in run.params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in run.params if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
    run.scheduler = make_schedule(optimizer, cfg)
    run.model, run.optimizer = run.accelerator.prepare(model, optimizer)  # the scheduler is stepped by hand
    run.state = {"step": 0, "examples_seen": 0, "history": [], "seed": cfg.seed, "method": cfg.method}
    return trainable, total


def _resume(run: _Run) -> int | None:
    """Restore the last checkpoint of ``output_dir`` when ``resume=True``; the step it resumed from, or None."""
    cfg = run.cfg
    if not cfg.resume or (ckpt := latest_checkpoint(cfg.output_dir)) is None:
        return None
    state = load_checkpoint(ckpt, model=run.model, optimizer=run.optimizer, scheduler=run.scheduler,
                            accelerator=run.accelerator)
    if state.get("method") != cfg.method or state.get("seed") != cfg.seed:
        raise ValueError(f"checkpoint {ckpt} is from a {state.get('method')} run with seed {state.get('seed')}: "
                         "resume with the same method and seed, or use a new output_dir")
    run.state = state
    if run.main:
        print(f"resumed from {ckpt} (step {state['step']}, {state['examples_seen']} examples seen)")
    return state["step"]


def _val_loss(run: _Run) -> float | None:
    if not run.val_ex:
        return None
    return evaluate_loss(run.model, run.val_ex, run.pad_id, batch_size=run.cfg.micro_batch_size, device=run.device,
                         accelerator=run.accelerator)


def _micro_batches(run: _Run) -> list[dict]:
    """This process's ``grad_accum`` micro-batches of the next step, from the data position alone."""
    cfg, acc = run.cfg, run.accelerator
    world, rank, size = acc.num_processes, acc.process_index, cfg.micro_batch_size
    order = example_order(len(run.train_ex), cfg.seed, run.state["examples_seen"], size * cfg.grad_accum * world)
    micro = [order[i * size * world:(i + 1) * size * world] for i in range(cfg.grad_accum)]
    return [collate([run.train_ex[j] for j in m[rank * size:(rank + 1) * size]], run.pad_id) for m in micro]


def _optimizer_step(run: _Run) -> dict:
    """One optimizer step over the accumulated batch; the history entry (loss, lr, grad norm) and its token count."""
    acc, world = run.accelerator, run.accelerator.num_processes
    batches = _micro_batches(run)
    # Normalise by the label tokens of the WHOLE accumulated batch (all processes), not per micro-batch.
    n_local = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches)
    n_total = acc.reduce(torch.tensor(float(n_local), device=run.device), "sum").item()
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    for i, batch in enumerate(batches):
        batch = {k: v.to(run.device) for k, v in batch.items()}
        last = i == len(batches) - 1
        with acc.no_sync(run.model) if not last and world > 1 else nullcontext():
            nll, _ = forward_nll(run.model, batch)
            acc.backward(nll / n_total * world)  # DDP averages gradients over processes
        loss_sum += nll.detach().double()
    max_norm = run.cfg.max_grad_norm
    grad_norm = acc.clip_grad_norm_(run.params, max_norm) if max_norm else None
    lr = run.scheduler.get_last_lr()[0]
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    tokens = float(sum(int(b["attention_mask"].sum()) for b in batches))
    return {"train_loss": (acc.reduce(loss_sum, "sum") / n_total).item(), "lr": lr,
            "grad_norm": float(grad_norm) if grad_norm is not None else None,
            "tokens": acc.reduce(torch.tensor(tokens, device=run.device), "sum").item()}


def _loop(run: _Run, plot: bool) -> tuple[list[float], list[float], PeakMemory]:
    """Steps until ``max_steps``: validation, progress bar, live plot, checkpoints; (seconds, tokens) per step."""
    cfg, history = run.cfg, run.state["history"]
    per_step = cfg.micro_batch_size * cfg.grad_accum * run.accelerator.num_processes
    live = LivePlot(f"{'LoRA' if cfg.method == 'lora' else 'full'} fine-tuning: loss") if plot and run.main else None
    if run.state["step"] == 0 and not history and cfg.eval_every and run.val_ex:
        history.append({"step": 0, "train_loss": None, "lr": 0.0, "val_loss": _val_loss(run)})
    bar = tqdm(total=cfg.max_steps, initial=run.state["step"], desc=f"{cfg.method} fine-tuning",
               disable=not show_progress(cfg.progress) or not run.accelerator.is_local_main_process)
    seconds, tokens = [], []
    if live:
        live.update(history)
    run.model.train()
    with PeakMemory(run.device, release=True) as memory:
        while run.state["step"] < cfg.max_steps:
            t0 = time.perf_counter()
            entry = _optimizer_step(run)
            seconds.append(time.perf_counter() - t0)
            tokens.append(entry.pop("tokens"))
            run.state["step"] += 1
            run.state["examples_seen"] += per_step
            step = entry["step"] = run.state["step"]
            if run.val_ex and cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                entry["val_loss"] = _val_loss(run)
            history.append(dict(step=step, **{k: v for k, v in entry.items() if k != "step"}))
            bar.update(1)
            val = {"val": f"{entry['val_loss']:.3f}"} if entry.get("val_loss") is not None else {}
            bar.set_postfix(loss=f"{entry['train_loss']:.3f}", **val)
            if live:
                live.update(history)
            if cfg.save_every and step % cfg.save_every == 0:
                path = save_checkpoint(cfg.output_dir, model=run.model, optimizer=run.optimizer,
                                       scheduler=run.scheduler, state=run.state, accelerator=run.accelerator,
                                       keep=cfg.keep_checkpoints)
                if run.main:
                    bar.write(f"checkpoint {path.name} saved")
                    sys.stdout.flush()
    bar.close()
    if live:
        live.close()
    return seconds, tokens, memory


def train(config=None, *, plot: bool = False, **overrides) -> Result:
    """Fine-tune a causal LM with LoRA or fully, on Accelerate; see :class:`TrainConfig` for every knob (notebook 06).

    ``train(method="lora", max_steps=40)``, ``train("cfg.json")`` or ``train(cfg, resume=True)``. The data is read
    and checked before the model trains. ``plot=True`` draws the live loss curves in a notebook.
    """
    from accelerate import Accelerator

    import lmkit

    cfg = as_config(config, overrides)
    # cpu=True where there is no accelerator: without it, processes started by torchrun or `accelerate launch` on a
    # CPU-only machine each believe they are the only one (rank 0 of 1) and train alone; with it they form one
    # MULTI_CPU group over gloo (tests/test_distributed.py).
    accelerator = Accelerator(mixed_precision=_mixed_precision(cfg.mixed_precision), cpu=not _has_accelerator())
    run = _load(cfg, accelerator)
    trainable, total = _prepare(run)
    resumed_from = _resume(run)
    seconds, tokens, memory = _loop(run, plot)
    lm = run.lm
    lm.model = accelerator.unwrap_model(run.model)
    lm.model.eval()
    result = Result(lm=lm, config=cfg, history=run.state["history"], trainable_params=trainable, total_params=total,
                    seconds_per_step=float(np.mean(seconds)) if seconds else float("nan"),
                    tokens_per_second=sum(tokens) / sum(seconds) if seconds else float("nan"),
                    peak_memory_mb=memory.peak / 2**20, extra_memory_mb=memory.delta / 2**20,
                    resumed_from=resumed_from, steps_run=len(seconds))
    if cfg.save_model and run.main:
        folder = save(lm, Path(cfg.output_dir) / "model")
        result.lm = lmkit.load(folder, device=accelerator.device)
        if cfg.progress is not False:
            print(f"merged model saved to {folder}")
    if cfg.output_dir and run.main:
        write_json(Path(cfg.output_dir) / "history.json", run.state["history"])
    accelerator.wait_for_everyone()
    return result
