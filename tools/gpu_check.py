"""Run every notebook in quick mode on a CUDA GPU and write a short report (``make gpu-check``).

Report (``gpu-report.md`` and ``gpu-report.json`` in ``--out``): the device and its compute capability, the dtype that
``lmkit.load()`` picks there, each notebook's pass/fail and run time, greedy decode tokens/s of the bundled model,
and the peak GPU memory of that decode and of each notebook's kernel (from ``torch.cuda.max_memory_allocated`` read
at the end of the notebook). Sized for about 8 minutes on one GPU: quick mode, one kernel per notebook, and a
per-notebook timeout.

Without a CUDA GPU it refuses in one line and exits with status 2 before doing any work.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEAK_CELL = ("import torch as _t, json as _j\n"
             "print('LMKIT_GPU_PEAK', _j.dumps({'peak_bytes': _t.cuda.max_memory_allocated() "
             "if _t.cuda.is_available() else 0}))")


def gpu_or_exit() -> None:
    """Exit with one line (status 2) unless torch sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        sys.exit("gpu-check: torch is not installed here; run `make setup` first")
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU is visible to torch here (torch.cuda.is_available() is False); "
              "run it on a machine with an NVIDIA GPU, e.g. Colab with Runtime > Change runtime type > GPU",
              file=sys.stderr)
        sys.exit(2)


def decode_speed(max_new_tokens: int = 128) -> dict:
    """Greedy tokens/s and peak GPU memory of the bundled model in its auto dtype on the GPU."""
    import torch

    import lmkit

    lm = lmkit.load(attn_implementation="sdpa")
    ids = lm.encode("The history of the printing press begins")
    torch.cuda.reset_peak_memory_stats()
    lm.model.generate(ids, max_new_tokens=8, do_sample=False)  # warm-up: kernels and caches
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = lm.model.generate(ids, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    new = out.shape[1] - ids.shape[1]
    return {"dtype": str(lm.dtype).removeprefix("torch."), "decode_tokens": new, "decode_s": round(seconds, 3),
            "decode_tok_s": round(new / seconds, 1), "decode_peak_mib": round(torch.cuda.max_memory_allocated() / 2**20)}


def run_notebook(path: Path, timeout: int) -> dict:
    """Execute one notebook in quick mode in a fresh kernel; pass/fail, seconds, peak GPU memory, first error line."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
    seconds = time.perf_counter() - start
    peak = None
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if "LMKIT_GPU_PEAK" in text:
            peak = json.loads(text.split("LMKIT_GPU_PEAK", 1)[1])["peak_bytes"]
    return {"notebook": path.name, "ok": error is None, "seconds": round(seconds, 1),
            "peak_gpu_mib": None if peak is None else round(peak / 2**20), "error": error}


def report_markdown(info: dict, speed: dict, rows: list[dict]) -> str:
    lines = [f"# gpu-check: {info['device']} (compute capability {info['capability']})", "",
             f"- torch {info['torch']}, transformers {info['transformers']}, CUDA {info['cuda']}",
             f"- `lmkit.load()` dtype: {speed['dtype']}; greedy decode {speed['decode_tok_s']} tokens/s "
             f"({speed['decode_tokens']} tokens), peak {speed['decode_peak_mib']} MiB", "",
             "| notebook | result | seconds | peak GPU MiB |", "|---|---|---|---|"]
    for r in rows:
        result = "pass" if r["ok"] else f"FAIL: {r['error']}"
        lines.append(f"| {r['notebook']} | {result} | {r['seconds']} | {r['peak_gpu_mib']} |")
    passed = sum(r["ok"] for r in rows)
    lines += ["", f"{passed} of {len(rows)} notebooks passed in {sum(r['seconds'] for r in rows):.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help="notebooks to run (default: every notebook in notebooks/)")
    ap.add_argument("--out", default="gpu-report", help="folder for gpu-report.md and gpu-report.json")
    ap.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell")
    args = ap.parse_args(argv)
    gpu_or_exit()
    import torch
    import transformers

    os.environ.update(LMKIT_QUICK="1", HF_HUB_OFFLINE="1", LMKIT_STRICT_EXERCISES="1")
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    info = {"device": torch.cuda.get_device_name(0), "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "torch": torch.__version__, "transformers": transformers.__version__, "cuda": torch.version.cuda}
    speed = decode_speed()
    rows = []
    for path in paths:
        rows.append(run_notebook(path.resolve(), args.timeout))
        r = rows[-1]
        print(f"{r['notebook']}: {'pass' if r['ok'] else 'FAIL'} in {r['seconds']} s"
              + ("" if r["ok"] else f" ({r['error']})"), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-report.json").write_text(json.dumps({**info, **speed, "notebooks": rows}, indent=1))
    (out / "gpu-report.md").write_text(report_markdown(info, speed, rows))
    print(report_markdown(info, speed, rows))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
