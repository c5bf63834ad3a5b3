"""Checkpoints that resume a run exactly: trainable weights, optimizer, scheduler, every RNG, the data position
(notebooks 12, 14 and 17).

``checkpoints/step-NNNNNN/`` holds ``weights.safetensors`` (the trainable parameters only: the adapters for LoRA),
``optimizer.safetensors`` (its tensors; the rest as JSON metadata), ``rng-<rank>.safetensors`` (torch, CUDA, numpy
and Python generators of each process) and ``state.json`` (step, data position, history, scheduler, grad scaler).
The folder is written by :func:`lmkit.files.atomic_folder`: a run killed while saving leaves no half checkpoint.

Why not Accelerate's ``save_state``: it pickles the optimizer, scheduler and RNG states (``torch.save``), and
reading a pickle back (``torch.load`` with ``weights_only=False``) runs whatever code the file holds, so a
checkpoint downloaded or shared is a security risk; here every tensor is safetensors and everything else JSON,
and ``weights_only=True`` is never needed. It also saves the whole model, where a LoRA run needs only its
adapters. Multi-GPU: this format assumes replicated weights (DDP); FSDP shards them, use ``save_state`` there.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from lmkit.files import atomic_folder, atomic_write_text

__all__ = ["latest_checkpoint", "save_checkpoint", "load_checkpoint", "write_json", "fingerprint",
           "weights_fingerprint"]


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


def fingerprint(obj) -> str:
    """A short digest of ``obj`` (JSON data: the encoded examples of a run, its settings): equal objects give equal
    strings, and any change in a token id gives another. Saved state records it so that a resume or a cache made
    from other data is refused (``"sha256:1f3a..."``, 16 hex digits)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def weights_fingerprint(named_tensors) -> str:
    """A digest of ``(name, tensor)`` pairs: names, shapes, dtypes and every byte of the values (a model's frozen
    weights: the base a LoRA run adapts, the reference a DPO cache was computed with). About a second per 500 MB."""
    digest = hashlib.sha256()
    for name, tensor in named_tensors:
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return "sha256:" + digest.hexdigest()[:16]


def write_json(path, obj) -> None:
    """``obj`` as indented JSON at ``path``, written atomically (:func:`lmkit.files.atomic_write_text`)."""
    atomic_write_text(path, json.dumps(obj, indent=1, default=str))


def latest_checkpoint(output_dir) -> Path | None:
    """The complete checkpoint with the highest step in ``output_dir/checkpoints``, or None (notebook 12).

    Half-written ones are ``*.tmp`` folders, which never match.
    """
    root = Path(output_dir) / "checkpoints"
    steps = [(int(m.group(1)), p) for p in root.glob("step-*") if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return max(steps)[1] if steps else None


def save_checkpoint(output_dir, *, model, optimizer, scheduler, state: dict, accelerator, keep: int = 2) -> Path:
    """Write ``checkpoints/step-NNNNNN`` atomically: weights, optimizer, RNG (safetensors) and state (JSON) (notebook 12).

    Every process hands its RNG state to the main one (``accelerate.utils.gather_object``), which writes the whole
    folder under a temporary name and renames it when complete (``durable``: flushed to disk first); then only the
    newest ``keep`` checkpoints stay.
    """
    from accelerate.utils import gather_object
    from safetensors.torch import save_file

    root = Path(output_dir) / "checkpoints"
    final = root / f"step-{state['step']:06d}"
    rngs = gather_object([(accelerator.process_index, *_rng_state())])
    if accelerator.is_main_process:
        with atomic_folder(final, durable=True) as tmp:
            for rank, rng_tensors, rng_meta in rngs:
                save_file(rng_tensors, tmp / f"rng-{rank}.safetensors", metadata={"json": json.dumps(rng_meta)})
            net = accelerator.unwrap_model(model)
            weights = {n: p.detach().cpu().contiguous() for n, p in net.named_parameters() if p.requires_grad}
            save_file(weights, tmp / "weights.safetensors")
            opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
            save_file(opt_tensors, tmp / "optimizer.safetensors", metadata={"json": json.dumps(opt_meta)})
            full_state = dict(state, scheduler=scheduler.state_dict(),
                              scaler=accelerator.scaler.state_dict() if accelerator.scaler else None)
            (tmp / "state.json").write_text(json.dumps(full_state, indent=1, default=str))
        steps = sorted(p for p in root.glob("step-*") if _STEP_DIR.match(p.name))
        for old in steps[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(folder, *, model, optimizer, scheduler, accelerator) -> dict:
    """Restore what :func:`save_checkpoint` wrote; returns the state dict (step, data position, history) (notebook 12)."""
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
