"""The environment: quick mode, Colab detection and the environment table (notebook 00)."""
from __future__ import annotations

import os
import platform
import random
import sys

QUICK: bool = os.environ.get("LMKIT_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}
"""True when ``LMKIT_QUICK=1``: notebooks shrink their work so that CI runs them in seconds."""

IN_COLAB: bool = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
"""True inside Google Colab."""

IN_CI: bool = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
"""True when a CI system runs us (``CI=true``)."""

SEED: int = 0
"""The seed that :func:`seed_everything` sets by default."""

# Keep the GGUF converter's progress bars out of notebook outputs (it ignores transformers' own switch).
if QUICK or IN_CI:
    os.environ.setdefault("TQDM_DISABLE", "1")


def pick(full, quick):
    """Return ``quick`` in quick mode (``LMKIT_QUICK=1``) and ``full`` otherwise (notebook 00).

    Notebooks scale their work with this, in one place, instead of editing cells:
    ``n_samples = pick(full=200, quick=10)``.
    """
    return quick if QUICK else full


def seed_everything(seed: int = SEED) -> int:
    """Seed Python, NumPy and torch (CPU and every GPU) so that a notebook re-runs identically (notebook 00)."""
    global SEED
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    SEED = seed
    return seed


def _ram_gib() -> tuple[float, float]:
    import psutil

    vm = psutil.virtual_memory()
    return vm.total / 2**30, vm.available / 2**30


def info() -> dict[str, str]:
    """The facts that :func:`report` shows, as a dict of strings (notebook 00)."""
    import torch
    import transformers

    total, avail = _ram_gib()
    facts = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(terse=True),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "RAM": f"{total:.1f} GiB ({avail:.1f} GiB free)",
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts["device"] = f"cuda: {props.name}, {props.total_memory / 2**30:.1f} GiB"
        facts["bf16"] = str(torch.cuda.is_bf16_supported())
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        facts["device"] = "mps (Apple GPU)"
    else:
        facts["device"] = "cpu (no GPU found)"
    facts["quick mode"] = str(QUICK)
    facts["colab"] = str(IN_COLAB)
    facts["seed"] = str(SEED)
    return facts


def report() -> None:
    """Print the environment table: versions, device, cores, RAM, quick mode and seed (notebook 00)."""
    facts = info()
    width = max(map(len, facts))
    for key, value in facts.items():
        print(f"{key:<{width}}  {value}")
