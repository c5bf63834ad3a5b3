"""The environment: quick mode, Colab detection, progress bars, seeding and the environment table (notebook 00).

Importing this module reads the environment and changes nothing else: no other library's settings, no environment
variables. Progress bars are lmkit's own choice (:data:`PROGRESS`, :func:`show_progress`), passed to its own
``tqdm`` calls, so they stay out of notebooks run in quick mode or CI without touching any other library's bars.
"""
from __future__ import annotations

import functools
import importlib
import os
import platform
import sys
from contextlib import contextmanager

from lmkit import checks

__all__ = ["IN_CI", "IN_COLAB", "PROGRESS", "QUICK", "SEED", "info", "pick", "progress_bars_off", "report",
           "seed_everything", "show_progress"]


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in {"1", "true", "yes", "on"}

QUICK: bool = _flag("LMKIT_QUICK", False)
"""True when ``LMKIT_QUICK=1``: notebooks shrink their work so that CI runs them in seconds."""

IN_COLAB: bool = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
"""True inside Google Colab."""

IN_CI: bool = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
"""True when a CI system runs us (``CI=true``)."""

SEED: int = 0
"""The seed that :func:`seed_everything` sets by default."""

PROGRESS: bool = _flag("LMKIT_PROGRESS", not (QUICK or IN_CI))
"""Whether lmkit shows progress bars: yes, except in quick mode and CI (``LMKIT_PROGRESS=1`` or ``0`` decides).

``make book`` sets ``LMKIT_PROGRESS=0``: a bar is for a person watching, and the committed notebooks store none."""


def show_progress(progress: bool | None = None) -> bool:
    """Resolve a ``progress=`` argument of an lmkit function: ``None`` means :data:`PROGRESS` (notebook 00).

    lmkit's long loops call ``tqdm(..., disable=not show_progress(progress))``, so quick-mode and CI runs store no
    progress-bar leftovers while a learner running the full notebook sees the bar.
    """
    return PROGRESS if progress is None else checks.boolean("progress", progress, fix="pass True, False or None "
                                                             "(None: lmkit's default, PROGRESS)")


@contextmanager
def progress_bars_off(module: str):
    """Inside the block, the ``tqdm`` that the module named ``module`` imported shows nothing; restored after.

    For third-party loops that offer no switch of their own (transformers' GGUF converter:
    ``progress_bars_off("transformers.modeling_gguf_pytorch_utils")``). Only that module's name is swapped for the
    duration of the block: no environment variable and no other library's setting changes.
    """
    mod = importlib.import_module(module)
    original = getattr(mod, "tqdm", None)
    if original is None:
        raise ValueError(f"module {module!r} has no `tqdm` name to silence: pass the module that imports tqdm")
    mod.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        mod.tqdm = original


def pick(full, quick):
    """Return ``quick`` in quick mode (``LMKIT_QUICK=1``) and ``full`` otherwise (notebook 00).

    Notebooks scale their work with this, in one place, instead of editing cells:
    ``n_samples = pick(full=200, quick=10)``.
    """
    return quick if QUICK else full


def seed_everything(seed: int = SEED) -> int:
    """Seed Python, NumPy and torch (CPU and every GPU) so that a notebook re-runs identically (notebook 00).

    Built on ``transformers.set_seed``; adds what it lacks: the seed is checked first (an int in 0..2³²-1, the
    range NumPy accepts; anything else is a one-line ``ValueError``) and remembered, so :func:`report` shows it.
    """
    global SEED
    seed = checks.seed("seed", seed, fix="pass e.g. seed_everything(0)")
    from transformers import set_seed

    set_seed(seed)
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
