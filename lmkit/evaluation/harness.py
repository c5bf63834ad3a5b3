"""The project's items as a local lm-evaluation-harness task, run offline for parity with lmkit (notebook 14)."""
from __future__ import annotations

import os
from pathlib import Path

from lmkit.data import data_file

from .items import DATA_DIR

__all__ = ["harness_task", "run_harness"]

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
    Needs ``pip install lm-eval==0.4.13`` (the ``eval`` extra). Progress bars and the harness's log lines (which
    print the model's path) are switched off for the call.
    """
    import contextlib
    import logging

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    try:
        import lm_eval
    except ImportError:
        raise ImportError("lm-evaluation-harness is not installed: run `pip install lm-eval==0.4.13`") from None
    from importlib.metadata import version

    from lmkit.models import bundled_cache_dir

    folder = Path(model_folder or bundled_cache_dir())
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: not a model folder (no config.json); run lmkit.load() once to create the cache")
    cfg = harness_task()
    import datasets
    from transformers.utils import logging as hf_logging

    logger = logging.getLogger("lm_eval")
    old_level, old_tqdm = logger.level, os.environ.get("TQDM_DISABLE")
    bars = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    os.environ["TQDM_DISABLE"] = "1"
    logger.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
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
        if old_tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = old_tqdm
    task = cfg["task"]
    res = out["results"][task]
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    lls = [[float(r[0][0] if isinstance(r[0], (list, tuple)) else r[0]) for r in s["filtered_resps"]] for s in samples]
    return {"acc": res["acc,none"], "acc_norm": res["acc_norm,none"], "n": len(samples),
            "version": version("lm_eval"), "loglikelihoods": lls}
