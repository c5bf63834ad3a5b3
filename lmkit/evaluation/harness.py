"""The project's items as a local lm-evaluation-harness task, run offline for parity with lmkit (notebook 16)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from lmkit import checks
from lmkit.data import data_file

from .items import DATA_DIR

__all__ = ["harness_task", "run_harness"]


@contextlib.contextmanager
def _scoped(mapping, **values):
    """Inside the block, ``mapping`` (``os.environ``, or a module's ``vars()``) holds ``values``; after it, each
    key has its old value again, or is absent again if it was absent: nothing changes process-wide."""
    missing = object()
    old = {key: mapping.get(key, missing) for key in values}
    mapping.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is missing:
                mapping.pop(key, None)
            else:
                mapping[key] = value


def harness_task(limit_path: str | None = None) -> dict:
    """The local lm-evaluation-harness task (``data/evaluation/lm_eval/lmkit_mc.yaml``) as a config dict, with
    the data file's absolute path filled in (the YAML's relative path works from the repository root)."""
    import yaml

    cfg = yaml.safe_load(data_file(f"{DATA_DIR}/lm_eval/lmkit_mc.yaml").read_text(encoding="utf-8"))
    cfg["dataset_kwargs"] = {"data_files": {"test": str(limit_path or data_file(f"{DATA_DIR}/mc.jsonl"))}}
    return cfg


def run_harness(model_folder=None, *, limit: int | None = None, batch_size: int = 16, device: str = "cpu") -> dict:
    """Run the local task through ``lm_eval.simple_evaluate`` (``model="hf"``) on a model folder, offline and quiet.

    ``model_folder``: a transformers folder (default: the bundled model's safetensors cache, see
    :func:`lmkit.models.bundled_cache_dir`). ``limit``: the first items of ``mc.jsonl`` only. Returns ``acc``,
    ``acc_norm``, ``n``, the harness ``version`` and per item the harness's ``loglikelihoods`` (in file order).
    Needs ``pip install lm-eval==0.4.13`` (the ``eval`` extra). For the call only, the hub is off
    (``HF_HUB_OFFLINE`` and ``HF_DATASETS_OFFLINE``, and the flags that ``huggingface_hub`` and ``datasets`` read
    from them at import), and so are progress bars and the harness's log lines (which print the model's path);
    every one of these is restored afterwards.
    """
    import logging

    if limit is not None:
        limit = checks.integer("limit", limit, low=1, fix="pass how many items to run, or None for all")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="pass e.g. batch_size=16")
    checks.text("device", device, fix="pass 'cpu' or 'cuda'")
    try:
        import lm_eval
    except ImportError:
        raise ImportError("lm-evaluation-harness is not installed: run `pip install lm-eval==0.4.13`") from None
    from importlib.metadata import version

    import datasets
    import huggingface_hub.constants as hub_constants
    from transformers.utils import logging as hf_logging

    from lmkit.models import bundled_cache_dir

    folder = Path(model_folder or bundled_cache_dir())
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: not a model folder (no config.json); run lmkit.load() once to create the cache")
    cfg = harness_task()
    logger = logging.getLogger("lm_eval")
    old_level = logger.level
    bars = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    logger.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        with (_scoped(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TQDM_DISABLE="1"),
              _scoped(vars(hub_constants), HF_HUB_OFFLINE=True),
              _scoped(vars(datasets.config), HF_HUB_OFFLINE=True, HF_DATASETS_OFFLINE=True),
              open(os.devnull, "w") as null, contextlib.redirect_stderr(null)):
            out = lm_eval.simple_evaluate(model="hf", model_args={"pretrained": str(folder), "dtype": "float32",
                                                                  "device": device},
                                          tasks=[cfg], limit=limit, batch_size=batch_size, log_samples=True,
                                          bootstrap_iters=0)
    finally:
        logger.setLevel(old_level)
        if bars[0]:
            hf_logging.enable_progress_bar()
        if bars[1]:
            datasets.enable_progress_bars()
    task = cfg["task"]
    res = out["results"][task]
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    lls = [[float(r[0][0] if isinstance(r[0], (list, tuple)) else r[0]) for r in s["filtered_resps"]] for s in samples]
    return {"acc": res["acc,none"], "acc_norm": res["acc_norm,none"], "n": len(samples),
            "version": version("lm_eval"), "loglikelihoods": lls}
