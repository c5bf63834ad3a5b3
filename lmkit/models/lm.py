"""The loaded model as one object, :class:`LM`, its error class and the names of the default model (notebook 00)."""
from __future__ import annotations

from dataclasses import dataclass

import torch



DEFAULT_NAME = "SmolLM2-135M-Instruct"
DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_CONTEXT_LENGTH = 8192
DEFAULT_CONTEXT = DEFAULT_CONTEXT_LENGTH  # the name before lmkit called the model's context one thing everywhere


class LoadError(ValueError):
    """A model could not be loaded; the one-line message names the value and the fix."""


@dataclass(repr=False)
class LM:
    """A loaded language model: the transformers ``model`` and ``tokenizer``, its ``device`` and ``name``."""

    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    name: str

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def n_params(self) -> int:
        """Parameters, counting tied weights once."""
        return sum(p.numel() for p in self.model.parameters())

    @property
    def memory_bytes(self) -> int:
        """Bytes taken by the parameters and buffers."""
        return self.model.get_memory_footprint()

    def encode(self, text: str) -> torch.Tensor:
        """Token ids of ``text`` as a ``[1, T]`` tensor on the model's device, with no special tokens added."""
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        return ids.to(self.device)

    def __repr__(self) -> str:
        attn = getattr(self.model.config, "_attn_implementation", "?")
        return (f"LM({self.name!r}, {self.n_params / 1e6:.1f}M params, {str(self.dtype).removeprefix('torch.')}, "
                f"{self.device}, {self.memory_bytes / 1e6:.0f} MB, attn={attn})")
