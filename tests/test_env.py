"""lmkit.env: quick mode, pick() and the environment report."""
import subprocess
import sys

import lmkit


def test_quick_mode_follows_the_variable():
    code = "import lmkit.env as e; print(e.QUICK, e.pick(full=100, quick=3))"
    for value, expected in [("1", "True 3"), ("0", "False 100")]:
        out = subprocess.run([sys.executable, "-c", code], env={"LMKIT_QUICK": value, "PATH": ""},
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == expected


def test_report_lists_versions_and_device(capsys):
    lmkit.env.seed_everything(123)
    lmkit.env.report()
    out = capsys.readouterr().out
    import torch
    import transformers

    for needle in ["python", torch.__version__, transformers.__version__, "device", "cpu cores", "RAM", "123"]:
        assert needle in out


def test_importing_env_changes_no_global_setting():
    """Quick mode and CI used to set TQDM_DISABLE for every library in the kernel; now nothing is changed."""
    from pathlib import Path

    path = Path(lmkit.env.__file__)  # loaded alone (no torch import), which is what importing it runs
    code = ("import os, importlib.util as u; before = dict(os.environ); "
            f"spec = u.spec_from_file_location('env', {str(path)!r}); e = u.module_from_spec(spec); "
            "spec.loader.exec_module(e); print(dict(os.environ) == before, e.PROGRESS, e.show_progress(), "
            "e.show_progress(True))")
    cases = [({"LMKIT_QUICK": "1"}, "True False False True"), ({"CI": "true"}, "True False False True"),
             ({}, "True True True True"), ({"LMKIT_QUICK": "1", "LMKIT_PROGRESS": "1"}, "True True True True"),
             ({"LMKIT_PROGRESS": "0"}, "True False False True")]
    for env, expected in cases:
        out = subprocess.run([sys.executable, "-c", code], env={"PATH": "", **env}, capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out.startswith(expected), (env, out)


def test_progress_bars_off_silences_one_module_and_restores_it():
    import importlib

    import pytest

    name = "transformers.modeling_gguf_pytorch_utils"
    mod = importlib.import_module(name)
    original = mod.tqdm
    with lmkit.env.progress_bars_off(name):
        assert mod.tqdm(range(3)).disable is True
        from tqdm.auto import tqdm

        assert tqdm(range(3), disable=False).disable is False  # every other tqdm is untouched
    assert mod.tqdm is original
    with pytest.raises(RuntimeError), lmkit.env.progress_bars_off(name):
        raise RuntimeError("restored even on an error")
    assert mod.tqdm is original
    with pytest.raises(ValueError, match="no `tqdm` name"):
        with lmkit.env.progress_bars_off("json"):
            pass


def test_seed_everything_is_transformers_set_seed_plus_a_check():
    import random

    import numpy as np
    import pytest
    import torch
    from transformers import set_seed

    set_seed(7)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    assert lmkit.env.seed_everything(np.int64(7)) == 7 and lmkit.env.SEED == 7
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    for bad in [-1, 2**32, 1.5, "0", True, None]:
        with pytest.raises(ValueError, match="seed="):
            lmkit.env.seed_everything(bad)
    assert lmkit.env.SEED == 7
    lmkit.env.seed_everything(0)


def _progress_parameters():
    """(qualified name, default) of every lmkit function that takes ``progress=``."""
    import importlib
    import inspect
    import pkgutil

    found = {}
    for info in pkgutil.walk_packages(lmkit.__path__, "lmkit."):
        if info.name.startswith("lmkit.exercises") or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == info.name and "progress" in inspect.signature(obj).parameters:
                found[f"{info.name}.{name}"] = inspect.signature(obj).parameters["progress"].default
    return found


def test_every_progress_argument_follows_the_switch_by_default():
    """``progress=None`` everywhere: LMKIT_PROGRESS (off in quick mode and CI) decides, so no bar is stored by a run
    that turned them off; a caller's True or False still wins."""
    found = _progress_parameters()
    assert len(found) >= 10, found
    assert {name: d for name, d in found.items() if d is not None} == {}
    assert lmkit.finetune.TrainConfig().progress is None


def test_a_loop_shows_its_bar_only_when_the_switch_says_so(monkeypatch, capsys, tiny_lm):
    from lmkit import metrics

    text = " ".join(["the cat sat on the mat"] * 40)
    for switch, shown in [(False, False), (True, True)]:
        monkeypatch.setattr(lmkit.env, "PROGRESS", switch)
        metrics.token_nll(tiny_lm, text, window=16, stride=8)
        assert ("perplexity" in capsys.readouterr().err) is shown
    monkeypatch.setattr(lmkit.env, "PROGRESS", False)
    metrics.token_nll(tiny_lm, text, window=16, stride=8, progress=True)
    assert "perplexity" in capsys.readouterr().err
