"""tools/gpu_check.py: refuses in one line without a GPU; its report lists every notebook's result."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_refuses_in_one_line_without_a_gpu(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA GPU" in lines[0] and "Colab" in lines[0]
    assert not any(tmp_path.iterdir())  # refused before doing any work


def test_report_lists_each_notebook_with_its_result():
    info = {"device": "Tesla T4", "capability": "7.5", "torch": "2.x", "transformers": "5.x", "cuda": "12.x"}
    speed = {"dtype": "float16", "decode_tok_s": 80.0, "decode_tokens": 128, "decode_peak_mib": 300}
    rows = [{"notebook": "00_a.ipynb", "ok": True, "seconds": 10.0, "peak_gpu_mib": 290, "error": None},
            {"notebook": "01_b.ipynb", "ok": False, "seconds": 3.5, "peak_gpu_mib": None, "error": "ValueError: x"}]
    text = gpu_check.report_markdown(info, speed, rows)
    assert "Tesla T4 (compute capability 7.5)" in text and "float16" in text and "80.0 tokens/s" in text
    assert "| 00_a.ipynb | pass | 10.0 | 290 |" in text and "FAIL: ValueError: x" in text
    assert "1 of 2 notebooks passed" in text
