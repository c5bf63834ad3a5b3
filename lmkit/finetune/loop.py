"""Fine-tuning on the one training loop, :func:`lmkit.training.fit`: the data, the model and the loss (notebook 12).

The same code runs on a CPU, on one GPU in mixed precision and on several GPUs (``accelerate launch -m
lmkit.finetune --config c.json``). :func:`train` loads the model and the data, wraps the model with LoRA (or not),
and hands :func:`lmkit.training.fit` a batch source and a loss: each optimizer step takes ``grad_accum``
micro-batches per process from the data position alone (so a resumed run sees the same examples), the loss of the
whole accumulated batch is its summed NLL normalised by its label-token count over every process
(:func:`~lmkit.finetune.loss.forward_nll`), and the validation loss comes every ``eval_every`` steps. AdamW, the
warm-up and cosine (or linear, constant) decay, clipping, checkpoints and resume are :mod:`lmkit.training`'s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lmkit.finetune.config import TrainConfig, as_config
from lmkit.finetune.data import IGNORE, collate, example_order, load_examples
from lmkit.finetune.lora import add_lora, count_parameters, save
from lmkit.finetune.loss import evaluate_loss, forward_nll
from lmkit.finetune.plots import LivePlot
from lmkit.logprobs import labelled_positions, pad_id
from lmkit.profile.memory import PeakMemory
from lmkit.training import FitSettings, fingerprint, fit, make_accelerator, make_schedule, write_json

__all__ = ["FinetuneResult", "Result", "make_schedule", "train"]


@dataclass
class FinetuneResult:
    """What :func:`train` returns: the trained ``lm`` (a peft model for LoRA), the loss history and measurements.

    ``history``: one dict per step (``step``, ``train_loss`` and ``val_loss`` in nats per label token, ``lr``,
    ``grad_norm``), with a step-0 entry holding the starting validation loss. ``seconds_per_step`` (s) and
    ``tokens_per_second`` over the steps this call ran (``steps_run``), ``seconds`` each of those steps' time (s);
    ``peak_memory_mb`` and
    ``extra_memory_mb`` (MiB) of those steps (:class:`lmkit.profile.PeakMemory`); ``resumed_from``: the step of
    the checkpoint it resumed from, or None.
    """

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
    seconds: list = field(default_factory=list)

    @property
    def train_losses(self) -> list[float]:
        return [h["train_loss"] for h in self.history if h.get("train_loss") is not None]

    @property
    def val_losses(self) -> list[float]:
        return [h["val_loss"] for h in self.history if h.get("val_loss") is not None]

    def summary(self) -> dict:
        """One row of the comparison table (notebook 12)."""
        return {"method": self.config.method, "trainable params": self.trainable_params,
                "total params": self.total_params, "trainable %": 100 * self.trainable_params / self.total_params,
                "seconds/step": self.seconds_per_step, "tokens/s": self.tokens_per_second,
                "peak RSS (MB)": self.peak_memory_mb, "extra memory (MB)": self.extra_memory_mb,
                "val loss first": self.val_losses[0] if self.val_losses else float("nan"),
                "val loss last": self.val_losses[-1] if self.val_losses else float("nan")}


Result = FinetuneResult  # the name before the loops became one (lmkit.training); old imports keep working


def _settings(cfg: TrainConfig) -> FitSettings:
    """The loop's settings from a fine-tuning config: the same names, LoRA's or full's default learning rate."""
    return FitSettings(max_steps=cfg.max_steps, lr=cfg.learning_rate, schedule=cfg.schedule,
                       warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm,
                       eval_every=cfg.eval_every, eval_at_start=True, save_every=cfg.save_every,
                       keep_checkpoints=cfg.keep_checkpoints, output_dir=cfg.output_dir, resume=cfg.resume,
                       progress=cfg.progress, desc=f"{cfg.method} fine-tuning", verbose=True)


def _label_tokens(batch: dict) -> int:
    """The labelled (scored) tokens of a batch: the weight of its summed NLL in the step's mean (the targets of
    :func:`lmkit.logprobs.labelled_positions`, the one causal shift)."""
    return int((labelled_positions(batch["labels"])[1] != IGNORE).sum())


def _nll(model, batch: dict):
    """The loss hook of fine-tuning: the summed NLL of the labelled tokens (nats), no other metric."""
    return forward_nll(model, batch)[0], {}


def train(config=None, *, plot: bool = False, **overrides) -> FinetuneResult:
    """Fine-tune a causal LM with LoRA or fully, on Accelerate; see :class:`TrainConfig` for every knob (notebook 12).

    ``train(method="lora", max_steps=40)``, ``train("cfg.json")`` or ``train(cfg, resume=True)``. The data is read
    and checked before the model trains. ``plot=True`` draws the live loss curves in a notebook. The steps run on
    :func:`lmkit.training.fit`. Raises ValueError (:class:`lmkit.data.DataError` for a bad data line) before any
    step for a bad setting or bad data.
    """
    from lmkit.env import seed_everything
    from lmkit.models import load

    cfg = as_config(config, overrides)
    accelerator = make_accelerator(cfg.mixed_precision)
    lm = load(cfg.model, device=accelerator.device, dtype="float32", attn_implementation=cfg.attn_implementation)
    tok = lm.tokenizer
    pad = pad_id(tok)
    train_ex = load_examples(cfg.train_data, tok, block_size=cfg.block_size, max_length=cfg.max_length,
                             limit=cfg.max_train_examples)
    val_ex = load_examples(cfg.val_data, tok, block_size=cfg.block_size, max_length=cfg.max_length,
                           limit=cfg.max_val_examples) if cfg.val_data is not None else []
    main = accelerator.is_main_process

    seed_everything(cfg.seed)
    model = add_lora(lm.model, cfg) if cfg.method == "lora" else lm.model
    trainable, total = count_parameters(model)
    if main and cfg.progress is not False:
        print(f"{cfg.method}: {trainable:,} trainable of {total:,} parameters ({100 * trainable / total:.2f}%)")

    world, rank, size = accelerator.num_processes, accelerator.process_index, cfg.micro_batch_size
    per_step = size * cfg.grad_accum * world

    def micro_batches(step: int) -> list[dict]:
        """This process's ``grad_accum`` micro-batches of a step, from the data position alone."""
        order = example_order(len(train_ex), cfg.seed, step * per_step, per_step)
        micro = [order[i * size * world:(i + 1) * size * world] for i in range(cfg.grad_accum)]
        return [collate([train_ex[j] for j in m[rank * size:(rank + 1) * size]], pad) for m in micro]

    def validation(net) -> dict:
        return {"val_loss": evaluate_loss(net, val_ex, pad, batch_size=size, device=accelerator.device,
                                          accelerator=accelerator)}

    title = f"{'LoRA' if cfg.method == 'lora' else 'full'} fine-tuning: loss"
    memory = PeakMemory(accelerator.device, release=True)
    run = fit(model, _nll, micro_batches, _settings(cfg), evaluate=validation if val_ex else None,
              weight=_label_tokens, accelerator=accelerator,
              identity={"seed": cfg.seed, "method": cfg.method, "data": fingerprint(train_ex)},
              examples_per_step=per_step, live_plot=(lambda: LivePlot(title, every=5)) if plot else None, watch=memory)
    lm.model = run.model
    result = FinetuneResult(lm=lm, config=cfg, history=run.history, trainable_params=trainable, total_params=total,
                            seconds_per_step=run.seconds_per_step, tokens_per_second=run.tokens_per_second,
                            peak_memory_mb=memory.peak / 2**20, extra_memory_mb=memory.delta / 2**20,
                            resumed_from=run.resumed_from, steps_run=run.steps_run,
                            seconds=list(run.seconds))
    if cfg.save_model and main:
        folder = save(lm, Path(cfg.output_dir) / "model")
        result.lm = load(folder, device=accelerator.device)
        if cfg.progress is not False:
            print(f"merged model saved to {folder}")
    if cfg.output_dir and main:
        write_json(Path(cfg.output_dir) / "history.json", run.history)
    accelerator.wait_for_everyone()
    return result
