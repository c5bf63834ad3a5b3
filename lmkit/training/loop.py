"""The one training loop of lmkit: the caller brings the model, the batches and a loss; :func:`fit` does the rest.

Fine-tuning (:func:`lmkit.finetune.train`, notebook 12), knowledge distillation (:func:`lmkit.compress.distill`,
notebook 14) and DPO (:func:`lmkit.preference.train`, notebook 17) are each a loss function and a batch source
handed to :func:`fit`; a new method (GRPO: a batch source that samples completions with the current policy, a loss
that weighs them by their advantage) is the same. What :func:`fit` owns, written once:

- **AdamW** (Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization"), with weight decay on matrices
  only: never on norms and biases (``ndim < 2``).
- **Learning-rate schedule** (:func:`make_schedule`): a linear warm-up from 0 (Goyal et al., 2017, "Accurate,
  Large Minibatch SGD"), then cosine decay to 0 (Loshchilov & Hutter, 2017, "SGDR"), linear decay or constant;
  transformers' ``get_*_schedule_with_warmup``. Or any ``step -> factor`` function (``LambdaLR``).
- **Gradient accumulation** over the micro-batches of a step, and over processes: the step's loss is normalised by
  the weight (e.g. the label tokens) of the whole accumulated batch on every process, so ``k`` micro-batches of
  ``b``, or ``k`` processes with ``b`` each, give the gradient of one batch of ``k·b``.
- **Gradient clipping** by global norm (Pascanu et al., 2013): ``torch.nn.utils.clip_grad_norm_``.
- **Accelerate** (Gugger et al., 2022, huggingface/accelerate): ``accelerator.prepare``, ``backward``,
  ``no_sync`` between micro-batches, ``reduce`` of the losses; the same code on a CPU, one GPU in mixed precision
  or several processes (``accelerate launch``).
- **Evaluation** every ``eval_every`` steps and at the end (and at step 0 if asked), the **history** (one dict
  per step), a **tqdm.auto** progress bar that follows :func:`lmkit.env.show_progress`, an optional live plot.
- **Checkpoints** every ``save_every`` steps and an exact **resume** (:mod:`lmkit.training.checkpoint`:
  safetensors and JSON, written atomically; no pickle is ever read).
"""
from __future__ import annotations

import itertools
import json
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from lmkit import checks
from lmkit.env import show_progress
from lmkit.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, weights_fingerprint

__all__ = ["SCHEDULES", "FitSettings", "FitResult", "fit", "make_schedule", "make_accelerator", "count_tokens"]

SCHEDULES = ("cosine", "linear", "constant")
"""The named learning-rate schedules of :func:`make_schedule`, each after a linear warm-up."""


# ----------------------------------------------------------------------------------------------- pieces
def make_schedule(optimizer, schedule="cosine", warmup_steps: int = 0, max_steps: int | None = None):
    """The learning-rate schedule of ``optimizer``: a ``torch.optim.lr_scheduler.LambdaLR`` (notebook 12).

    - ``"cosine"`` / ``"linear"``: linear warm-up from 0 to the optimizer's lr over ``warmup_steps`` steps, then
      cosine (Loshchilov & Hutter, 2017) or linear decay to 0 at ``max_steps``; ``"constant"``: warm-up, then flat.
      These are transformers' ``get_{cosine,linear,constant}_schedule_with_warmup``.
    - a function ``step -> factor`` (``step`` counts optimizer steps from 0; the lr is ``factor × lr``): used as it is.
    - an object with ``schedule``, ``warmup_steps`` and ``max_steps`` attributes (a
      :class:`lmkit.finetune.TrainConfig`): its three values, so ``make_schedule(optimizer, cfg)`` works.

    The scheduler is stepped once per optimizer step. Raises :class:`lmkit.checks.CheckError` (a ValueError) for
    an unknown name or a bad step count.
    """
    if hasattr(schedule, "schedule"):
        schedule, warmup_steps, max_steps = schedule.schedule, schedule.warmup_steps, schedule.max_steps
    if callable(schedule):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                              get_linear_schedule_with_warmup)

    checks.one_of("schedule", schedule, SCHEDULES)
    warmup_steps = checks.integer("warmup_steps", warmup_steps, low=0, fix="pass 0 for no warm-up")
    if schedule == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup_steps)
    max_steps = checks.integer("max_steps", max_steps, low=1, fix="a decaying schedule needs the run's length")
    make = get_cosine_schedule_with_warmup if schedule == "cosine" else get_linear_schedule_with_warmup
    return make(optimizer, warmup_steps, max_steps)


def _has_accelerator() -> bool:
    """True if torch sees a CUDA GPU or Apple's MPS, where Accelerate picks the device itself."""
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


def _mixed_precision(choice: str) -> str:
    """``"auto"``: bf16 on a GPU that has it, else fp16 on a GPU, none on a CPU; other choices unchanged."""
    if choice != "auto":
        return checks.one_of("mixed_precision", choice, ("auto", "no", "bf16", "fp16"))
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def make_accelerator(mixed_precision: str | None = None, device=None):
    """An ``accelerate.Accelerator`` for :func:`fit` (notebooks 12, 14, 17).

    ``device``: where the model is (``"cpu"`` keeps the run on the CPU); None: a GPU if there is one. On a machine
    with no GPU the run is told ``cpu=True``: without it, processes started by ``torchrun`` or ``accelerate
    launch`` each believe they are the only one (rank 0 of 1) and train alone; with it they form one MULTI_CPU
    group over gloo (tests/test_distributed.py). ``mixed_precision``: ``"auto"`` (bf16 or fp16 on a GPU, none on a
    CPU), ``"no"``, ``"bf16"``, ``"fp16"``, or None for Accelerate's own default (``"no"`` unless configured).
    """
    from accelerate import Accelerator

    cpu = not _has_accelerator() if device is None else torch.device(device).type == "cpu"
    extra = {} if mixed_precision is None else {"mixed_precision": _mixed_precision(mixed_precision)}
    return Accelerator(cpu=cpu, **extra)


def count_tokens(batch) -> int:
    """The tokens a batch holds: the sum of every ``attention_mask`` in it (nested dicts and lists are walked), or
    the size of an integer id tensor; 0 for anything else. :func:`fit` reports tokens per second with it."""
    if torch.is_tensor(batch):
        return batch.numel() if not batch.is_floating_point() else 0
    if isinstance(batch, dict):
        if torch.is_tensor(batch.get("attention_mask")):
            return int(batch["attention_mask"].sum())
        return sum(count_tokens(v) for v in batch.values())
    if isinstance(batch, (list, tuple)):
        return sum(count_tokens(v) for v in batch)
    return 0


# ----------------------------------------------------------------------------------------------- settings
@dataclass
class FitSettings:
    """How :func:`fit` trains: optimizer, schedule, evaluation, checkpoints, progress (notebooks 12, 14, 17).

    - ``max_steps``: optimizer steps; ``lr``: AdamW's peak learning rate; ``schedule``: a name of
      :data:`SCHEDULES` or a ``step -> factor`` function, after ``warmup_steps`` of linear warm-up
      (:func:`make_schedule`); ``weight_decay``: AdamW's, on matrices only; ``max_grad_norm``: clip the global
      gradient norm to this (0 or None: no clipping).
    - ``eval_every``: call ``evaluate`` every N steps and at the last one (0: never); ``eval_at_start``: also
      before the first step (a history entry with ``step`` 0 and ``train_loss`` None).
    - ``save_every``: a checkpoint every N steps into ``output_dir/checkpoints`` (0: never), keeping the newest
      ``keep_checkpoints`` (0: all); ``resume``: continue from the newest one in ``output_dir``.
    - ``progress``: the progress bar (None: :data:`lmkit.env.PROGRESS`); ``desc`` its label; ``verbose``: print
      a line when a checkpoint is written and when a run resumes (on the main process).
    """

    max_steps: int
    lr: float
    schedule: object = "cosine"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    eval_every: int = 0
    eval_at_start: bool = False
    save_every: int = 0
    keep_checkpoints: int = 2
    output_dir: object = None
    resume: bool = False
    progress: bool | None = None
    desc: str = "training"
    verbose: bool = False

    def check(self) -> "FitSettings":
        """Raise a one-line :class:`lmkit.checks.CheckError` (a ValueError) for a bad value; else return self."""
        checks.integer("max_steps", self.max_steps, low=1, fix="take at least one optimizer step")
        checks.real("lr", self.lr, low=0, low_open=True, fix="pass a positive learning rate such as 1e-4")
        if not callable(self.schedule):
            checks.one_of("schedule", self.schedule, SCHEDULES)
        checks.integer("warmup_steps", self.warmup_steps, low=0, fix="pass 0 for no warm-up")
        checks.real("weight_decay", self.weight_decay, low=0, fix="pass 0 for no weight decay")
        if self.max_grad_norm is not None:
            checks.real("max_grad_norm", self.max_grad_norm, low=0, fix="pass 0 or None for no clipping")
        for name in ("eval_every", "save_every", "keep_checkpoints"):
            checks.integer(name, getattr(self, name), low=0, fix="pass 0 to turn it off")
        checks.boolean("eval_at_start", self.eval_at_start)
        checks.boolean("resume", self.resume)
        checks.boolean("verbose", self.verbose)
        if self.progress is not None:
            checks.boolean("progress", self.progress, fix="pass True, False or None (lmkit.env.PROGRESS)")
        if (self.save_every or self.resume) and not self.output_dir:
            checks.fail("checkpoints and resume need output_dir: set output_dir='runs/my-run'")
        return self


@dataclass
class FitResult:
    """What :func:`fit` returns.

    ``model``: the trained model, unwrapped from Accelerate, in eval mode. ``history``: one dict per step (and one
    for step 0 with ``eval_at_start``), with ``step``, ``train_loss``, ``lr``, ``grad_norm``, the loss function's
    metrics and the evaluation's. ``seconds`` and ``tokens``: per step run by this call (tokens over every
    process, :func:`count_tokens`). ``resumed_from``: the checkpoint's step, or None. ``state``: what a checkpoint
    stores (step, data position, history, the run's identity).
    """

    model: object
    history: list
    accelerator: object
    seconds: list = field(default_factory=list)
    tokens: list = field(default_factory=list)
    resumed_from: int | None = None
    state: dict = field(default_factory=dict)

    @property
    def steps_run(self) -> int:
        return len(self.seconds)

    @property
    def seconds_per_step(self) -> float:
        return sum(self.seconds) / len(self.seconds) if self.seconds else float("nan")

    @property
    def tokens_per_second(self) -> float:
        return sum(self.tokens) / sum(self.seconds) if self.seconds else float("nan")


# ----------------------------------------------------------------------------------------------- the loop
@dataclass
class _Run:
    """What the phases of one :func:`fit` share."""

    settings: FitSettings
    accelerator: object
    model: object
    loss_fn: Callable
    weight: Callable | None
    params: list
    optimizer: object
    scheduler: object
    state: dict

    @property
    def device(self):
        return self.accelerator.device


def _optimizer(params: list, settings: FitSettings):
    """AdamW with decay on matrices only: norms and biases (``ndim < 2``) are not pulled towards 0."""
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": settings.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=settings.lr)


def _resume(run: _Run, identity: dict) -> int | None:
    """Restore the newest checkpoint of ``output_dir`` when ``resume``; the step it resumed from, or None.

    A checkpoint of another run (a different ``identity``: method, seed, beta, data, frozen weights...) is refused
    before anything loads; so is one that does not record a key of ``identity`` (made before lmkit recorded it).
    """
    s = run.settings
    if not s.resume or (ckpt := latest_checkpoint(s.output_dir)) is None:
        return None
    saved = json.loads((ckpt / "state.json").read_text())
    other = [k for k, v in identity.items() if saved.get(k) != v]
    if other:
        theirs = ", ".join(f"{k}={saved[k]!r}" if k in saved else f"no record of {k}" for k in other)
        ours = ", ".join(f"{k}={identity[k]!r}" for k in other)
        raise ValueError(f"checkpoint {ckpt} is from a run with {theirs} (this run: {ours}): resume with the same "
                         "settings, data and model, or use a new output_dir")
    run.state = load_checkpoint(ckpt, model=run.model, optimizer=run.optimizer, scheduler=run.scheduler,
                                accelerator=run.accelerator)
    if s.verbose and run.accelerator.is_main_process:
        print(f"resumed from {ckpt} (step {run.state['step']}, {run.state.get('examples_seen', 0)} examples seen)")
    return run.state["step"]


def _step_source(batches, start: int) -> Callable[[int], list]:
    """``step -> this process's micro-batches`` from a function of the step or an iterable (resumed: skipped)."""
    items = None if callable(batches) else itertools.islice(iter(batches), start, None)

    def get(step: int) -> list:
        if items is None:
            got = batches(step)
        else:
            got = next(items, None)
            if got is None:
                raise ValueError(f"batches ran out at step {step + 1}: give at least max_steps batches, or a "
                                 "function of the step")
        return got if isinstance(got, list) else [got]

    return get


def _optimizer_step(run: _Run, micro: list) -> tuple[dict, float]:
    """One optimizer step over the micro-batches: the history entry (loss, lr, grad norm, metrics) and the tokens."""
    from accelerate.utils import send_to_device

    acc, world = run.accelerator, run.accelerator.num_processes
    if not micro:
        raise ValueError(f"step {run.state['step'] + 1} has no micro-batch: give each step at least one batch")
    # Normalise by the weight of the WHOLE accumulated batch (every micro-batch, every process).
    weights = [float(run.weight(b)) if run.weight else 1.0 for b in micro]
    total = acc.reduce(torch.tensor(sum(weights), device=run.device), "sum").item()
    if not total > 0:
        raise ValueError(f"step {run.state['step'] + 1} weighs {total} (no labelled token?): every step needs a "
                         "positive weight; check that the labels are not all masked")
    tokens = float(sum(count_tokens(b) for b in micro))
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    metric_sums: dict[str, float] = {}
    for i, batch in enumerate(micro):
        batch = send_to_device(batch, run.device)
        last = i == len(micro) - 1
        with acc.no_sync(run.model) if not last and world > 1 else nullcontext():
            loss, metrics = run.loss_fn(run.model, batch)
            acc.backward(loss / total * world)  # DDP averages gradients over processes
        loss_sum += loss.detach().double()
        for key, value in metrics.items():
            value = value.detach() if torch.is_tensor(value) else value
            metric_sums[key] = metric_sums.get(key, 0.0) + float(value)
    max_norm = run.settings.max_grad_norm
    grad_norm = acc.clip_grad_norm_(run.params, max_norm) if max_norm else None
    lr = run.scheduler.get_last_lr()[0]
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    summed = torch.tensor([0.0, tokens, *metric_sums.values()], dtype=torch.float64, device=run.device)
    summed[0] = loss_sum
    summed = acc.reduce(summed, "sum")
    entry = {"train_loss": (summed[0] / total).item(), "lr": lr,
             "grad_norm": float(grad_norm) if grad_norm is not None else None}
    entry.update({k: (v / total).item() for k, v in zip(metric_sums, summed[2:])})
    return entry, summed[1].item()


def fit(model, loss_fn: Callable, batches, settings: FitSettings, *, evaluate: Callable | None = None,
        weight: Callable | None = None, accelerator=None, identity: dict | None = None, examples_per_step: int = 0,
        live_plot: Callable | None = None, watch=None) -> FitResult:
    """Train the parameters of ``model`` that require grad on ``loss_fn`` over ``batches`` (notebooks 12, 14, 17).

    - ``loss_fn(model, batch) -> (loss, metrics)``: ``loss`` a scalar tensor with gradients, ``metrics`` a dict of
      numbers (floats or 0-d tensors; the same keys on every process) that go into the history, averaged like the
      loss. ``model`` is the prepared one (DDP-wrapped on
      several processes); ``batch`` is already on the run's device.
    - ``batches``: a function ``step -> batch`` (``step`` counts from 0; a function of the step resumes exactly)
      or an iterable of batches, one per step (on resume the steps already done are skipped). A ``list`` stands for
      the step's micro-batches, accumulated into one optimizer step; anything else (a dict of tensors, a tensor) is
      the step's only batch. On several processes each gives its own share.
    - ``weight(batch) -> number``: what a micro-batch counts for (e.g. its label tokens). With it, ``loss`` and the
      metrics must be SUMS over those units, and the step's loss is ``Σ loss / Σ weight`` over micro-batches and
      processes; without it every micro-batch counts 1 and ``loss`` is its mean.
    - ``evaluate(model) -> dict``: held-out metrics, merged into the history entry (see :class:`FitSettings`);
      every process calls it.
    - ``accelerator``: from :func:`make_accelerator` (made here if None); ``identity``: what a checkpoint must
      match to be resumed (``{"method": "lora", "seed": 0}``; add ``"data": fingerprint(examples)`` so that other
      data is refused), saved with it; with checkpoints on, the frozen weights' digest is added as
      ``"frozen_weights"`` (:func:`~lmkit.training.checkpoint.weights_fingerprint`: the base that adapters were
      trained on; a checkpoint holds only the trainable weights); ``examples_per_step``: counted into
      the checkpoint's ``examples_seen``; ``live_plot``: a function returning an object with ``update(history)``
      and ``close()`` (:class:`lmkit.finetune.LivePlot`), made on the main process only; ``watch``: a context
      manager entered around the steps (e.g. :class:`lmkit.profile.PeakMemory`).

    The caller seeds the run (:func:`lmkit.env.seed_everything`) and builds the model before calling. Returns a
    :class:`FitResult`. Raises ValueError (a one-line :class:`lmkit.checks.CheckError` for settings) for bad
    settings, a model with nothing to train, batches that run out, or a checkpoint of another run.
    """
    s = settings.check()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter that requires grad: unfreeze what should train "
                         "(p.requires_grad_(True)) or add adapters")
    identity = dict(identity or {})
    frozen = [(n, p) for n, p in model.named_parameters() if not p.requires_grad]
    if frozen and (s.save_every or s.resume):
        identity["frozen_weights"] = weights_fingerprint(frozen)
    acc = accelerator if accelerator is not None else make_accelerator()
    optimizer = _optimizer(params, s)
    scheduler = make_schedule(optimizer, s.schedule, s.warmup_steps, s.max_steps)
    prepared, optimizer = acc.prepare(model, optimizer)  # the scheduler is stepped by hand, once per step
    optimizer.zero_grad(set_to_none=True)  # gradients left on the model by earlier work do not leak into step 1
    run = _Run(s, acc, prepared, loss_fn, weight, params, optimizer, scheduler,
               {"step": 0, "examples_seen": 0, "history": [], **identity})
    resumed_from = _resume(run, identity)
    history, main = run.state["history"], acc.is_main_process
    next_batches = _step_source(batches, run.state["step"])

    def evaluation() -> dict:
        return dict(evaluate(run.model)) if evaluate is not None else {}

    if s.eval_at_start and evaluate is not None and s.eval_every and run.state["step"] == 0 and not history:
        history.append({"step": 0, "train_loss": None, "lr": 0.0, **evaluation()})
    plot = live_plot() if live_plot is not None and main else None
    bar = tqdm(total=s.max_steps, initial=run.state["step"], desc=s.desc,
               disable=not show_progress(s.progress) or not acc.is_local_main_process)
    if plot and history:
        plot.update(history)
    seconds, tokens = [], []
    run.model.train()
    with watch if watch is not None else nullcontext():
        while run.state["step"] < s.max_steps:
            t0 = time.perf_counter()
            entry, n_tokens = _optimizer_step(run, next_batches(run.state["step"]))
            seconds.append(time.perf_counter() - t0)
            tokens.append(n_tokens)
            run.state["step"] += 1
            run.state["examples_seen"] = run.state.get("examples_seen", 0) + examples_per_step
            step = run.state["step"]
            if s.eval_every and (step % s.eval_every == 0 or step == s.max_steps):
                entry.update(evaluation())
            history.append({"step": step, **entry})
            bar.update(1)
            shown = {k: f"{v:.3f}" for k, v in entry.items() if k not in ("lr", "grad_norm")
                     and isinstance(v, float)}
            bar.set_postfix(**{"loss" if k == "train_loss" else k: v for k, v in shown.items()})
            if plot:
                plot.update(history)
            if s.save_every and step % s.save_every == 0:
                path = save_checkpoint(s.output_dir, model=run.model, optimizer=run.optimizer,
                                       scheduler=run.scheduler, state=run.state, accelerator=acc,
                                       keep=s.keep_checkpoints)
                if s.verbose and main:
                    bar.write(f"checkpoint {path.name} saved")
                    sys.stdout.flush()
    bar.close()
    if plot:
        plot.close()
    net = acc.unwrap_model(run.model)
    net.eval()
    return FitResult(model=net, history=history, accelerator=acc, seconds=seconds, tokens=tokens,
                     resumed_from=resumed_from, state=run.state)
