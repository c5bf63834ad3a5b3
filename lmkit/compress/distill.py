"""Knowledge distillation: a shallow copy of the model (a few of its layers) learns from the teacher's soft targets
(Hinton et al. 2015), on :func:`lmkit.training.fit` (notebook 14)."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmkit import checks
from lmkit.training import FitSettings, fit, make_accelerator


def shallow_copy(model: nn.Module, layers: list[int]) -> nn.Module:
    """A student made of the teacher's embedding, final norm, head and the decoder ``layers`` listed (notebook 14).

    Works for Llama-style models (``model.model.layers``). Weights are copied, not shared.
    """
    n = model.config.num_hidden_layers
    if (not isinstance(layers, (list, tuple)) or not layers
            or any(not checks.is_integer(i) or not 0 <= i < n for i in layers)):
        checks.fail(f"layers={checks.show(layers)} must be a non-empty list of layer indices in 0..{n - 1} (the "
                    f"teacher has {n} layers): e.g. [0, {n - 1}]")
    layers = [int(i) for i in layers]
    cfg = copy.deepcopy(model.config)
    cfg.num_hidden_layers = len(layers)
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = [cfg.layer_types[i] for i in layers]
    student = type(model)(cfg)
    student.model.embed_tokens.load_state_dict(model.model.embed_tokens.state_dict())
    student.model.norm.load_state_dict(model.model.norm.state_dict())
    for new, old in enumerate(layers):
        student.model.layers[new].load_state_dict(model.model.layers[old].state_dict())
    student.tie_weights()
    student.generation_config = copy.deepcopy(model.generation_config)
    return student.to(next(model.parameters()).device).eval()


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, labels: torch.Tensor,
                 alpha: float = 0.5, temperature: float = 2.0, *, return_ce: bool = False):
    """``alpha·T²·KL(p_teacher,T ‖ p_student,T) + (1-alpha)·CE(student, labels)`` per token (notebook 14).

    Hinton et al. (2015), "Distilling the Knowledge in a Neural Network": the teacher's distribution softened by
    ``T`` carries more than the one right answer (which other tokens were plausible); ``T²`` keeps the gradient
    scale of the soft term independent of ``T``. ``alpha=0`` is training on the data alone. Logits ``[B, T, V]``
    predict ``labels`` ``[B, T]`` (already shifted). Returns a scalar: nats per token (the KL term averaged over the
    ``B·T`` positions). With ``return_ce`` it returns ``(loss, ce)``: the cross-entropy term alone as well, already
    computed, so that runs with different ``alpha`` can be compared on the same quantity. Raises
    :class:`lmkit.checks.CheckError` (a ValueError) for ``alpha`` outside [0, 1], a ``temperature`` that is not
    positive, or ``alpha > 0`` without ``teacher_logits``.
    """
    alpha = checks.probability("alpha", alpha, fix="the weight of the teacher's soft targets")
    temperature = checks.real("temperature", temperature, low=0, low_open=True, fix="pass e.g. 2.0")
    checks.boolean("return_ce", return_ce)
    ce = F.cross_entropy(student_logits.flatten(0, 1).float(), labels.flatten())
    if alpha == 0.0:
        return (ce, ce) if return_ce else ce
    if teacher_logits is None:
        checks.fail(f"alpha={alpha} needs teacher_logits: pass the teacher's logits or use alpha=0")
    s = F.log_softmax(student_logits.flatten(0, 1).float() / temperature, -1)
    t = F.log_softmax(teacher_logits.flatten(0, 1).float() / temperature, -1)
    kl = F.kl_div(s, t, log_target=True, reduction="batchmean")
    loss = alpha * temperature**2 * kl + (1 - alpha) * ce
    return (loss, ce) if return_ce else loss


def token_batches(ids: torch.Tensor, block_size: int, batch_size: int, steps: int, seed: int = 0):
    """``steps`` batches of random windows ``[batch_size, block_size + 1]`` of a 1-D id tensor, the same for the same
    seed (notebook 14). The arguments are checked at the call, before the first batch (one-line ValueError)."""
    block_size = checks.integer("block_size", block_size, low=1, fix="pass the window length in tokens, e.g. 128")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="pass e.g. 4")
    steps = checks.integer("steps", steps, low=1, fix="take at least one step")
    seed = checks.integer("seed", seed, low=0, fix="pass e.g. seed=0")
    if not torch.is_tensor(ids) or ids.dim() != 1:
        checks.fail(f"ids must be a 1-D tensor of token ids, not {type(ids).__name__}"
                    f"{list(ids.shape) if torch.is_tensor(ids) else ''}: pass torch.as_tensor(tokenizer(text).input_ids)")
    if ids.numel() <= block_size + 1:
        checks.fail(f"{ids.numel()} tokens are too few for block_size={block_size}: pass more text")

    def windows():
        gen = torch.Generator().manual_seed(seed)
        offsets = torch.arange(block_size + 1)
        for _ in range(steps):
            start = torch.randint(ids.numel() - block_size - 1, (batch_size,), generator=gen)
            yield ids[start[:, None] + offsets]

    return windows()


def distill(student: nn.Module, teacher: nn.Module | None, ids: torch.Tensor, *, steps: int, block_size: int = 128,
            batch_size: int = 4, lr: float = 5e-4, alpha: float = 0.5, temperature: float = 2.0,
            train_embeddings: bool = False, seed: int = 0, progress: bool | None = None, desc: str = "distill",
            return_ce: bool = False):
    """Train ``student`` on windows of ``ids`` with :func:`distill_loss`; returns the loss of each step (notebook 14).

    With ``return_ce`` it returns ``(losses, ces)``: also the cross-entropy term of each step (what ``alpha=0``
    minimises), computed anyway, so that a distilled run and a data-alone run can be plotted on the same quantity.

    ``alpha=0`` trains on the data alone (the teacher is not run). The same ``seed`` gives the same batches (the only
    randomness: the student's start is whatever it holds), so two calls with different ``alpha`` spend exactly the
    same budget. The embedding, and with it a tied output head (the same tensor), is frozen unless
    ``train_embeddings``: it is already good, and in a shallow student it holds a large share of the parameters (57%
    of six of SmolLM2-135M's 30 layers plus embedding, norms and head); it is unfrozen again afterwards. The steps run on :func:`lmkit.training.fit`: AdamW at ``lr`` (no weight decay), a linear
    warm-up over the first tenth of the steps (step ``s`` at ``(s + 1) / (steps // 10)`` of ``lr``), gradients
    clipped at norm 1. ``student`` is changed in place and left in eval mode; losses are nats per token. Raises
    ValueError (a one-line :class:`lmkit.checks.CheckError`) for a bad setting before any step.
    """
    alpha = checks.probability("alpha", alpha, fix="the weight of the teacher's soft targets")
    temperature = checks.real("temperature", temperature, low=0, low_open=True, fix="pass e.g. 2.0")
    checks.boolean("train_embeddings", train_embeddings)
    checks.boolean("return_ce", return_ce)
    if alpha > 0 and teacher is None:
        checks.fail(f"alpha={alpha} needs a teacher: pass the teacher model, or alpha=0 to train on the data alone")
    batches = token_batches(ids, block_size, batch_size, steps, seed)
    warmup = max(1, steps // 10)
    settings = FitSettings(max_steps=steps, lr=lr, schedule=lambda s: min(1.0, (s + 1) / warmup), max_grad_norm=1.0,
                           progress=progress, desc=desc)

    def kd_loss(model, batch: torch.Tensor):
        """The loss hook: :func:`distill_loss` of a window batch ``[B, block_size + 1]``, no other metric."""
        x, y = batch[:, :-1], batch[:, 1:]
        teacher_logits = None
        if alpha > 0:
            with torch.inference_mode():
                teacher_logits = teacher(x).logits
            teacher_logits = teacher_logits.clone()  # out of inference mode, usable in autograd
        loss, ce = distill_loss(model(x).logits, teacher_logits, y, alpha, temperature, return_ce=True)
        return loss, {"ce": ce.detach()}

    emb = student.get_input_embeddings().weight
    emb.requires_grad_(train_embeddings)
    try:
        run = fit(student, kd_loss, batches, settings,
                  accelerator=make_accelerator(device=next(student.parameters()).device))
    finally:
        emb.requires_grad_(True)
    losses = [h["train_loss"] for h in run.history]
    return (losses, [h["ce"] for h in run.history]) if return_ce else losses
