"""The model side of fine-tuning: LoRA adapters with peft, merging them, saving a loadable folder (notebook 12)."""
from __future__ import annotations

import warnings
from pathlib import Path

from lmkit.files import atomic_folder
from lmkit.finetune.config import TrainConfig

__all__ = ["count_parameters", "add_lora", "merge", "save"]


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameters, tied weights counted once (notebook 12)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def add_lora(model, cfg: TrainConfig):
    """Wrap ``model`` with peft LoRA adapters on ``cfg.lora_targets``; only the adapters train (notebook 12)."""
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
    """The LM with LoRA folded into its weights, ``W + (alpha/r)·B·A``, as a plain transformers model (notebook 12)."""
    from peft import PeftModel

    from lmkit.models import LM

    if isinstance(lm.model, PeftModel):
        return LM(model=lm.model.merge_and_unload(), tokenizer=lm.tokenizer, device=lm.device, name=lm.name)
    return lm


def save(lm, folder) -> Path:
    """Merge LoRA if any and save model + tokenizer to ``folder`` atomically; ``lmkit.load(folder)`` loads it (notebook 12)."""
    folder = Path(folder)
    lm = merge(lm)
    with atomic_folder(folder) as tmp:
        lm.model.save_pretrained(tmp)
        lm.tokenizer.save_pretrained(tmp)
    return folder
