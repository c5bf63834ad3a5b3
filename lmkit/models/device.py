"""Which device and dtype a model runs on: ``"auto"`` resolved as :func:`lmkit.load` does (notebook 00)."""
from __future__ import annotations


import torch

from lmkit.models.lm import LoadError


_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; an explicit device is checked to exist (notebook 00)."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in {"cpu", "cuda", "mps"}:
        raise LoadError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LoadError(f"device {device!r} asked for, but torch finds no CUDA GPU here: "
                            "use device='auto' or 'cpu' (on Colab: Runtime > Change runtime type > GPU)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LoadError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} "
                            "CUDA device(s); use 'cuda:0'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LoadError(f"device {device!r} asked for, but no Apple GPU is available: use device='auto' or 'cpu'")
    return dev


def native_bf16(device: torch.device) -> bool:
    """True if ``device`` is a CUDA GPU with bfloat16 in hardware: compute capability 8.0 or newer (Ampere+).

    ``torch.cuda.is_bf16_supported()`` is not used: it also counts bfloat16 that is emulated (a T4, capability
    7.5, reports True and then runs bf16 matrix products several times slower than fp16).
    """
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def resolve_dtype(dtype="auto", device: torch.device | None = None) -> torch.dtype:
    """The dtype to load weights in (notebook 00).

    ``"auto"``: bfloat16 on a CUDA GPU with native bf16 (:func:`native_bf16`), float16 on an older CUDA GPU (a T4),
    float32 on CPU and on Apple's MPS (where bf16 needs macOS 14 and fp16 training needs loss scaling; fp32 is the
    setting that works everywhere for a 135 M model). An explicit dtype is taken as given.
    """
    device = device or torch.device("cpu")
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if native_bf16(device) else torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in _DTYPES:
        return _DTYPES[dtype.lower().removeprefix("torch.")]
    raise LoadError(f"unknown dtype {dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'")
