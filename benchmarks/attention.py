"""Attention explorer redraw time on CPU for a 40-token text (issue 4; notebook 04).

Goal: each redraw (a slider, checkbox, token or view change) under 200 ms on CPU, since attentions are computed
once per text. The benchmark loads the bundled model, builds ``lmkit.attention.Explorer`` on a text of exactly
40 tokens, then times a scripted sequence of control moves: every layer, every head, the average toggle, a query
token on each view. It reports wall time (what the user waits) and process CPU time (less sensitive to other
programs on a shared machine), and, for comparison, the forward pass that a redraw avoids.

    .venv/bin/python benchmarks/attention.py [--tokens 40] [--repeats 3]

Writes benchmarks/results/attention.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

BUDGET_MS = 200.0
BASE_TEXT = ("When Mary and John went to the store, John gave a drink to Mary. The cat sat on the mat because it "
             "was tired, and the dog slept by the warm fire until the morning light came through the old window "
             "of the quiet house on the hill.")


def text_of(lm, n_tokens: int) -> str:
    """A prefix of BASE_TEXT (repeated as needed) that is exactly ``n_tokens`` tokens long."""
    ids = lm.encode(" ".join([BASE_TEXT] * (1 + n_tokens // 20)))[0][:n_tokens]
    text = lm.tokenizer.decode(ids)
    if lm.encode(text).shape[1] != n_tokens:
        raise RuntimeError(f"could not build a {n_tokens}-token text")
    return text


def moves(ex, n_layers: int, n_heads: int):
    """The scripted control moves, as (label, function) pairs."""
    t = len(ex.tokens)
    out = [("layer slider", lambda v=v: setattr(ex.layer, "value", v)) for v in list(range(1, n_layers)) + [0]]
    out += [("head slider", lambda v=v: setattr(ex.head, "value", v)) for v in list(range(1, n_heads)) + [0]]
    out += [("average toggle", lambda v=v: setattr(ex.average, "value", v)) for v in (True, False)] * 3
    out += [("query token", lambda v=v: setattr(ex.token, "value", v)) for v in (t - 1, t // 2, 3, -1)]
    out += [("view: head view", lambda: setattr(ex.view, "value", "head view"))]
    out += [("head view: layer", lambda v=v: setattr(ex.layer, "value", v)) for v in range(0, n_layers, 3)]
    out += [("head view: query", lambda v=v: setattr(ex.token, "value", v)) for v in (t - 1, 5, -1)]
    out += [("view: heatmap", lambda: setattr(ex.view, "value", "heatmap"))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3, help="times the whole move sequence is played")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    import lmkit
    from lmkit import attention as A

    lm = lmkit.load(device="cpu")
    cfg = lm.model.config
    text = text_of(lm, args.tokens)

    start = time.perf_counter()
    ex = A.Explorer(lm, text)
    first_s = time.perf_counter() - start
    ids = lm.encode(text)
    forward = []
    for _ in range(3):
        t0 = time.perf_counter()
        with torch.inference_mode():
            lm.model(ids, output_attentions=True, use_cache=False)
        forward.append(time.perf_counter() - t0)

    by_kind: dict[str, list[float]] = {}
    wall, cpu = [], []
    for _ in range(args.repeats):
        for label, move in moves(ex, cfg.num_hidden_layers, cfg.num_attention_heads):
            c0, w0 = time.process_time(), time.perf_counter()
            move()
            w, c = time.perf_counter() - w0, time.process_time() - c0
            wall.append(w)
            cpu.append(c)
            by_kind.setdefault(label, []).append(w)
    assert ex.n_computed == 1, "a control move ran the model"

    def ms(values, q=None):
        values = sorted(values)
        return 1000 * (values[min(len(values) - 1, int(q * len(values)))] if q else statistics.median(values))

    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(), "torch": torch.__version__,
        "tokens": len(ex.tokens), "redraws": len(wall), "forward_passes_during_redraws": ex.n_computed - 1,
        "budget_ms": BUDGET_MS,
        "redraw_wall_ms": {"median": ms(wall), "p95": ms(wall, 0.95), "max": 1000 * max(wall)},
        "redraw_cpu_ms": {"median": ms(cpu), "p95": ms(cpu, 0.95), "max": 1000 * max(cpu)},
        "under_budget_wall_fraction": sum(w * 1000 < BUDGET_MS for w in wall) / len(wall),
        "by_move_wall_ms_median": {k: ms(v) for k, v in by_kind.items()},
        "first_display_s (forward pass + first frame)": first_s,
        "forward_pass_ms_median": ms(forward),
    }
    out = Path(__file__).with_name("results") / "attention.json"
    out.parent.mkdir(exist_ok=True)
    from lmkit.files import atomic_write_text

    atomic_write_text(out, json.dumps(results, indent=1) + "\n")

    print(f"explorer on a {results['tokens']}-token text, {len(wall)} redraws "
          f"(load average {results['load_average_1min']:.1f} on {os.cpu_count()} cores)")
    print(f"{'move':<22}{'median wall ms':>16}")
    for k, v in results["by_move_wall_ms_median"].items():
        print(f"{k:<22}{v:>16.0f}")
    print(f"{'':-<38}")
    for kind in ("wall", "cpu"):
        r = results[f"redraw_{kind}_ms"]
        print(f"all redraws, {kind:<4} ms: median {r['median']:.0f}, p95 {r['p95']:.0f}, max {r['max']:.0f} "
              f"(budget {BUDGET_MS:.0f})")
    print(f"under budget (wall): {results['under_budget_wall_fraction']:.0%}; the forward pass a redraw avoids: "
          f"{results['forward_pass_ms_median']:.0f} ms")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
