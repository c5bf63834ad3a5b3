"""Shrinking a model: quantization, pruning and knowledge distillation, each measured (notebook 08).

- Dynamic int8 quantization: :func:`quantize_int8` (first used in notebook 05), here on a copy; optionally with
  per-channel weight scales and some layers left in float32. :func:`fake_quantize` rounds the weights or the
  activations alone, in float32, to find which of the two costs the quality.
- Weight-only low-bit quantization, written by hand in pure torch: each group of ``group_size`` weights of a row is
  stored as ``bits``-bit integers with a float16 scale and offset, ``w ≈ q·s + m``; 4-bit codes are packed two per
  byte. The layer dequantizes on the fly, so it saves memory and disk, not time (a fused low-bit kernel would).
- Unstructured magnitude pruning: the smallest ``|w|`` of each linear layer set to zero.
- Knowledge distillation: a shallow copy of the model (a few of its layers) learns from the teacher's soft targets.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from lmkit.profile.quantize import quantize_int8
from lmkit.profile.roofline import weight_bytes
from lmkit import checks
from lmkit.training import FitSettings, fit, make_accelerator

__all__ = ["quantize_int8", "dynamic_int8", "fake_quant_activations", "FakeQuantLinear", "fake_quantize",
           "activation_outliers", "QuantLinear", "quantize_weights", "TiedWeightError", "tied_names", "untie",
           "prune_magnitude", "sparsity_of", "shallow_copy", "distill_loss", "token_batches", "distill", "disk_bytes",
           "memory_bytes", "with_model", "size_mb", "bits_per_weight", "relative_error"]


def _decoder_linears(model: nn.Module, skip: tuple[str, ...] = ("lm_head",)):
    """(name, module) of every ``nn.Linear`` whose name contains none of ``skip``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and not any(s in n for s in skip)]


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


# ----------------------------------------------------------------------------------------------- int8 (dynamic)
def dynamic_int8(model: nn.Module, skip: tuple[str, ...] = (), per_channel: bool = False) -> nn.Module:
    """A copy of ``model`` with its ``nn.Linear`` layers in dynamic int8: int8 weights, activations quantized per
    call, int8 matmuls (notebook 08).

    With the defaults this is :func:`quantize_int8` (notebook 05): every linear layer, the tied output
    head included, one scale per weight tensor. ``skip``: layers whose name contains one of these fragments stay
    float32 (e.g. ``("lm_head", "mlp.down_proj")``). ``per_channel``: one weight scale per output row instead of
    one per tensor. The activations always get one scale per call (per tensor), and on x86 (fbgemm) only 7 bits
    of range (``reduce_range``, which avoids an int16 overflow in its kernel).
    """
    if not skip and not per_channel:
        return quantize_int8(copy.deepcopy(model))
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    model = copy.deepcopy(model)
    spec = {n: qconfig for n, m in model.named_modules() if isinstance(m, nn.Linear) and not any(s in n for s in skip)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def fake_quant_activations(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """``x`` rounded as dynamic quantization rounds a linear layer's input: one scale and zero point for the whole
    tensor, from its min and max, ``2^bits`` levels (fbgemm uses 7 bits of range). Float in, float out."""
    qmax = 2**bits - 1
    lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
    scale = ((hi - lo) / qmax).clamp_min(1e-12)
    zero = torch.round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, qmax) - zero) * scale


class FakeQuantLinear(nn.Module):
    """A float32 linear layer that rounds what dynamic int8 would round, and nothing else (notebook 08).

    ``weights``: ``None`` (exact), ``"tensor"`` (symmetric int8, one scale per matrix) or ``"channel"`` (one scale
    per output row). ``act_bits``: ``None`` (exact) or the bits of the per-tensor activation rounding. Switching
    one at a time says which rounding costs the quality.
    """

    def __init__(self, linear: nn.Linear, weights: str | None = "tensor", act_bits: int | None = 7):
        super().__init__()
        if weights not in (None, "tensor", "channel"):
            raise ValueError(f"weights={weights!r}: use None, 'tensor' or 'channel'")
        w = linear.weight.detach().float()
        if weights:
            amax = w.abs().amax() if weights == "tensor" else w.abs().amax(1, keepdim=True)
            scale = (amax / 127.5).clamp_min(1e-12)  # as torch.ao MinMaxObserver: amax / ((127 - -128) / 2)
            w = torch.round(w / scale).clamp(-128, 127) * scale
        self.register_buffer("weight", w.clone())
        self.bias = linear.bias
        self.act_bits = act_bits

    def forward(self, x):
        if self.act_bits:
            x = fake_quant_activations(x, self.act_bits)
        return F.linear(x, self.weight.to(x.dtype), self.bias)


def fake_quantize(model: nn.Module, weights: str | None = "tensor", act_bits: int | None = 7,
                  skip: tuple[str, ...] = ()) -> nn.Module:
    """A copy of ``model`` with each ``nn.Linear`` (names without ``skip``) a :class:`FakeQuantLinear`."""
    model = copy.deepcopy(model)
    for name, lin in _decoder_linears(model, skip):
        _set_module(model, name, FakeQuantLinear(lin, weights, act_bits))
    return model


@torch.no_grad()
def activation_outliers(model: nn.Module, ids: torch.Tensor) -> dict[str, dict[str, float]]:
    """For the input of every ``nn.Linear`` on ``ids``: ``max |x|``, its root mean square, and their ratio.

    A ratio of several hundred means that one per-tensor scale, set by the largest value, leaves very few levels
    for all the others (notebook 08).
    """
    stats, hooks = {}, []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            def hook(_, inputs, name=name):
                x = inputs[0].float()
                amax, rms = x.abs().max().item(), x.pow(2).mean().sqrt().item()
                stats[name] = {"max |x|": amax, "rms": rms, "max / rms": amax / max(rms, 1e-12)}
            hooks.append(mod.register_forward_pre_hook(hook))
    try:
        model(ids)
    finally:
        for h in hooks:
            h.remove()
    return stats


# ----------------------------------------------------------------------------------------------- weight-only low-bit
class QuantLinear(nn.Module):
    """A linear layer whose weight is stored in ``bits`` bits per value, by groups along the input (notebook 08).

    For each row and each group of ``group_size`` inputs: ``s = (max - min) / (2^bits - 1)``, ``m = min``,
    ``q = round((w - m) / s)``; so ``w ≈ q·s + m`` with an error of at most ``s/2``. Forward dequantizes the
    whole weight and calls ``F.linear``: memory shrinks, arithmetic stays float32.
    """

    def __init__(self, linear: nn.Linear, bits: int = 4, group_size: int = 64):
        super().__init__()
        if bits not in (2, 4, 8):
            raise ValueError(f"bits={bits} is not supported: use 8, 4 or 2")
        out_f, in_f = linear.weight.shape
        if group_size < 2 or in_f % group_size:
            raise ValueError(f"group_size={group_size} must divide in_features={in_f}: try 32, 64 or 128")
        self.in_features, self.out_features, self.bits, self.group_size = in_f, out_f, bits, group_size
        w = linear.weight.detach().float().reshape(out_f, in_f // group_size, group_size)
        # offset and scale are rounded to float16 first, and the codes computed from the rounded values, so that
        # the error stays within half a step
        lo, hi = w.amin(-1, keepdim=True).half().float(), w.amax(-1, keepdim=True)
        scale = ((hi - lo) / (2**bits - 1)).clamp_min(1e-6).half().float()
        q = torch.round((w - lo) / scale).clamp_(0, 2**bits - 1).to(torch.uint8).reshape(out_f, in_f)
        self.register_buffer("qweight", self._pack(q, bits))
        self.register_buffer("scale", scale.squeeze(-1).half())
        self.register_buffer("offset", lo.squeeze(-1).half())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    @staticmethod
    def _pack(q: torch.Tensor, bits: int) -> torch.Tensor:
        per_byte = 8 // bits
        q = q.reshape(q.shape[0], -1, per_byte)
        packed = torch.zeros(q.shape[:2], dtype=torch.uint8)
        for i in range(per_byte):
            packed |= q[..., i] << (bits * i)
        return packed

    def codes(self) -> torch.Tensor:
        """The integer codes q, unpacked: uint8 [out, in]."""
        per_byte, mask = 8 // self.bits, 2**self.bits - 1
        parts = [(self.qweight >> (self.bits * i)) & mask for i in range(per_byte)]
        return torch.stack(parts, -1).reshape(self.out_features, self.in_features)

    def dequantize(self) -> torch.Tensor:
        """The float32 weight that this layer computes with: ``q·s + m`` per group."""
        q = self.codes().float().reshape(self.out_features, -1, self.group_size)
        return (q * self.scale.float()[..., None] + self.offset.float()[..., None]).reshape(
            self.out_features, self.in_features)

    def forward(self, x):
        return F.linear(x, self.dequantize().to(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bits={self.bits}, group_size={self.group_size}"


def quantize_weights(model: nn.Module, bits: int = 4, group_size: int = 64,
                     skip: tuple[str, ...] = ("lm_head",)) -> nn.Module:
    """A copy of ``model`` with each ``nn.Linear`` (except names containing ``skip``) a :class:`QuantLinear`.

    The tied output head is skipped by default: it is the embedding table, which stays float32 for the lookup
    (notebook 08).
    """
    model = copy.deepcopy(model)
    for name, lin in _decoder_linears(model, skip):
        _set_module(model, name, QuantLinear(lin, bits, group_size))
    return model


# ----------------------------------------------------------------------------------------------- tied weights
class TiedWeightError(ValueError):
    """An operation would change a tensor that another name shares (a tied output head and embedding)."""


def tied_names(model: nn.Module) -> dict[str, list[str]]:
    """For each parameter shared by several names, its first name -> every name (e.g. the tied head) (notebook 08).

    ``{"model.embed_tokens.weight": ["model.embed_tokens.weight", "lm_head.weight"]}`` for SmolLM2.
    """
    by_tensor: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(p), []).append(name)
    return {names[0]: names for names in by_tensor.values() if len(names) > 1}


def untie(model: nn.Module, module_name: str, tensor: str = "weight") -> nn.Parameter:
    """Give ``module_name.tensor`` its own copy of a shared parameter, and record it in the config; returns it.

    After this, changing the head leaves the embedding as it was (and the model is ``numel`` floats larger).
    ``config.tie_word_embeddings`` becomes False so that ``tie_weights()`` or a save/load does not tie them again.
    """
    module = model.get_submodule(module_name)
    fresh = nn.Parameter(getattr(module, tensor).detach().clone(), requires_grad=getattr(module, tensor).requires_grad)
    setattr(module, tensor, fresh)
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "tie_word_embeddings", False):
        config.tie_word_embeddings = False
    return fresh


def _guard_tied(model: nn.Module, targets: list[str], untie_shared: bool, action: str) -> None:
    """Refuse (or untie first, saying so) when a ``targets`` weight is shared with a name outside ``targets``."""
    chosen = {f"{t}.weight" for t in targets}
    for names in tied_names(model).values():
        inside, outside = [n for n in names if n in chosen], [n for n in names if n not in chosen]
        if not inside or not outside:
            continue
        if not untie_shared:
            raise TiedWeightError(
                f"{inside[0]} is the same tensor as {outside[0]} (tied weights): {action} it would change "
                f"{outside[0]} too; pass untie=True to give it its own copy first, or skip={(inside[0].split('.')[0],)!r}")
        for name in inside:
            untie(model, name.removesuffix(".weight"))
            warnings.warn(f"untied {name} from {outside[0]} before {action} it: the two are separate tensors now",
                          stacklevel=3)


# ----------------------------------------------------------------------------------------------- pruning
def prune_magnitude(model: nn.Module, sparsity: float, skip: tuple[str, ...] = ("lm_head",), *,
                    untie: bool = False) -> float:
    """Zero the ``sparsity`` fraction of smallest-|w| weights in each linear layer, in place (notebook 08).

    Each layer loses the same fraction (layer-wise magnitude pruning), with ``torch.nn.utils.prune.l1_unstructured``
    then ``prune.remove`` (the zeros are written into the weight, no mask or hook is left behind). Pruning to a
    higher sparsity after a lower one gives the same weights as pruning the original directly. A layer whose weight
    is tied to a tensor outside the pruned layers (``lm_head`` and the embedding, with ``skip=()``) raises
    :class:`TiedWeightError`; ``untie=True`` gives it its own copy first, with a warning. Returns the sparsity
    reached (see :func:`sparsity_of`).
    """
    from torch.nn.utils import prune

    sparsity = checks.probability("sparsity", sparsity, open_high=True,
                                  fix="e.g. 0.5 zeroes half of each layer's weights")
    checks.boolean("untie", untie)
    layers = _decoder_linears(model, skip)
    _guard_tied(model, [name for name, _ in layers], untie, "pruning")
    with torch.no_grad():
        for _, lin in layers:
            k = int(round(sparsity * lin.weight.numel()))
            if k == 0:
                continue
            prune.l1_unstructured(lin, "weight", amount=k)
            prune.remove(lin, "weight")
    return sparsity_of(model, skip)


def sparsity_of(model: nn.Module, skip: tuple[str, ...] = ("lm_head",)) -> float:
    """Fraction of exact zeros among the weights of the linear layers (notebook 08)."""
    zeros = total = 0
    for _, lin in _decoder_linears(model, skip):
        zeros += (lin.weight == 0).sum().item()
        total += lin.weight.numel()
    return zeros / max(1, total)


# ----------------------------------------------------------------------------------------------- distillation
def shallow_copy(model: nn.Module, layers: list[int]) -> nn.Module:
    """A student made of the teacher's embedding, final norm, head and the decoder ``layers`` listed (notebook 08).

    Works for Llama-style models (``model.model.layers``). Weights are copied, not shared.
    """
    n = model.config.num_hidden_layers
    if not layers or any(not 0 <= i < n for i in layers):
        raise ValueError(f"layers={layers} must be a non-empty list of indices in 0..{n - 1}")
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
                 alpha: float = 0.5, temperature: float = 2.0) -> torch.Tensor:
    """``alpha·T²·KL(p_teacher,T ‖ p_student,T) + (1-alpha)·CE(student, labels)`` per token (notebook 08).

    Hinton et al. (2015), "Distilling the Knowledge in a Neural Network": the teacher's distribution softened by
    ``T`` carries more than the one right answer (which other tokens were plausible); ``T²`` keeps the gradient
    scale of the soft term independent of ``T``. ``alpha=0`` is training on the data alone. Logits ``[B, T, V]``
    predict ``labels`` ``[B, T]`` (already shifted). Returns a scalar: nats per token (the KL term averaged over the
    ``B·T`` positions). Raises :class:`lmkit.checks.CheckError` (a ValueError) for ``alpha`` outside [0, 1], a
    ``temperature`` that is not positive, or ``alpha > 0`` without ``teacher_logits``.
    """
    alpha = checks.probability("alpha", alpha, fix="the weight of the teacher's soft targets")
    temperature = checks.real("temperature", temperature, low=0, low_open=True, fix="pass e.g. 2.0")
    ce = F.cross_entropy(student_logits.flatten(0, 1).float(), labels.flatten())
    if alpha == 0.0:
        return ce
    if teacher_logits is None:
        checks.fail(f"alpha={alpha} needs teacher_logits: pass the teacher's logits or use alpha=0")
    s = F.log_softmax(student_logits.flatten(0, 1).float() / temperature, -1)
    t = F.log_softmax(teacher_logits.flatten(0, 1).float() / temperature, -1)
    kl = F.kl_div(s, t, log_target=True, reduction="batchmean")
    return alpha * temperature**2 * kl + (1 - alpha) * ce


def token_batches(ids: torch.Tensor, seq_len: int, batch_size: int, steps: int, seed: int = 0):
    """``steps`` batches of random windows ``[batch_size, seq_len + 1]`` of a 1-D id tensor, the same for the same
    seed (notebook 08). The arguments are checked at the call, before the first batch (one-line ValueError)."""
    seq_len = checks.integer("seq_len", seq_len, low=1, fix="pass the window length in tokens, e.g. 128")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="pass e.g. 4")
    steps = checks.integer("steps", steps, low=1, fix="take at least one step")
    seed = checks.integer("seed", seed, low=0, fix="pass e.g. seed=0")
    if not torch.is_tensor(ids) or ids.dim() != 1:
        checks.fail(f"ids must be a 1-D tensor of token ids, not {type(ids).__name__}"
                    f"{list(ids.shape) if torch.is_tensor(ids) else ''}: pass torch.as_tensor(tokenizer(text).input_ids)")
    if ids.numel() <= seq_len + 1:
        checks.fail(f"{ids.numel()} tokens are too few for seq_len={seq_len}: pass more text")

    def windows():
        gen = torch.Generator().manual_seed(seed)
        offsets = torch.arange(seq_len + 1)
        for _ in range(steps):
            start = torch.randint(ids.numel() - seq_len - 1, (batch_size,), generator=gen)
            yield ids[start[:, None] + offsets]

    return windows()


def distill(student: nn.Module, teacher: nn.Module | None, ids: torch.Tensor, *, steps: int, seq_len: int = 128,
            batch_size: int = 4, lr: float = 5e-4, alpha: float = 0.5, temperature: float = 2.0,
            train_embeddings: bool = False, seed: int = 0, progress: bool | None = None, desc: str = "distill") -> list:
    """Train ``student`` on windows of ``ids`` with :func:`distill_loss`; returns the loss of each step (notebook 08).

    ``alpha=0`` trains on the data alone (the teacher is not run). The same ``seed`` gives the same batches, so two
    calls with different ``alpha`` spend exactly the same budget. The (tied) embedding is frozen unless
    ``train_embeddings``: it holds a third of a shallow student's parameters and is already good; it is unfrozen
    again afterwards. The steps run on :func:`lmkit.training.fit`: AdamW at ``lr`` (no weight decay), a linear
    warm-up over the first tenth of the steps (step ``s`` at ``(s + 1) / (steps // 10)`` of ``lr``), gradients
    clipped at norm 1. ``student`` is changed in place and left in eval mode; losses are nats per token. Raises
    ValueError (a one-line :class:`lmkit.checks.CheckError`) for a bad setting before any step.
    """
    alpha = checks.probability("alpha", alpha, fix="the weight of the teacher's soft targets")
    temperature = checks.real("temperature", temperature, low=0, low_open=True, fix="pass e.g. 2.0")
    checks.boolean("train_embeddings", train_embeddings)
    if alpha > 0 and teacher is None:
        checks.fail(f"alpha={alpha} needs a teacher: pass the teacher model, or alpha=0 to train on the data alone")
    batches = token_batches(ids, seq_len, batch_size, steps, seed)
    warmup = max(1, steps // 10)
    settings = FitSettings(max_steps=steps, lr=lr, schedule=lambda s: min(1.0, (s + 1) / warmup), max_grad_norm=1.0,
                           progress=progress, desc=desc)

    def kd_loss(model, batch: torch.Tensor):
        """The loss hook: :func:`distill_loss` of a window batch ``[B, seq_len + 1]``, no other metric."""
        x, y = batch[:, :-1], batch[:, 1:]
        teacher_logits = None
        if alpha > 0:
            with torch.inference_mode():
                teacher_logits = teacher(x).logits
            teacher_logits = teacher_logits.clone()  # out of inference mode, usable in autograd
        return distill_loss(model(x).logits, teacher_logits, y, alpha, temperature), {}

    emb = student.get_input_embeddings().weight
    emb.requires_grad_(train_embeddings)
    try:
        run = fit(student, kd_loss, batches, settings,
                  accelerator=make_accelerator(device=next(student.parameters()).device))
    finally:
        emb.requires_grad_(True)
    return [h["train_loss"] for h in run.history]


# ----------------------------------------------------------------------------------------------- measuring
def disk_bytes(model: nn.Module) -> int:
    """Bytes of the model's state dict serialized (tied tensors once, packed int8/low-bit weights as stored).

    Zeros from pruning still take their 4 bytes: a dense file does not shrink with unstructured sparsity.
    """
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def memory_bytes(model: nn.Module) -> int:
    """Bytes held by the weights in memory: parameters, buffers (the low-bit codes) and packed int8 weights."""
    seen, total = set(), weight_bytes(model)
    seen.update(p.data_ptr() for p in model.parameters())
    for b in model.buffers():
        if b.data_ptr() not in seen and b.numel() and not b.dtype == torch.bool:
            seen.add(b.data_ptr())
            total += b.numel() * b.element_size()
    return total


def with_model(lm, model: nn.Module):
    """The ``lmkit.LM`` ``lm`` with another model (same tokenizer and device), e.g. for ``metrics.perplexity``."""
    return dataclasses.replace(lm, model=model)


def size_mb(model: nn.Module) -> dict[str, float]:
    """``{"disk MB": ..., "memory MB": ...}`` of ``model`` (notebook 08)."""
    return {"disk MB": disk_bytes(model) / 1e6, "memory MB": memory_bytes(model) / 1e6}


def bits_per_weight(bits: int, group_size: int) -> float:
    """Storage per weight of :class:`QuantLinear`: the code plus a float16 scale and offset per group."""
    return bits + 2 * 16 / group_size


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖a - b‖ / ‖b‖``, the error of an approximation ``a`` of ``b``."""
    return (torch.linalg.vector_norm((a - b).float()) / torch.linalg.vector_norm(b.float())).item()
