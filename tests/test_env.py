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
