"""The plots of notebook 08: the roofline with measured points, sweeps, and configurations against their bound."""
from __future__ import annotations

from typing import Iterable

from lmkit.profile.roofline import RooflinePoint

GB = 1e9

__all__ = ["plot_roofline", "plot_sweep", "plot_against_bound"]


# ----------------------------------------------------------------------------------------------- roofline plot
def plot_roofline(peaks: dict[str, float], bandwidth: float, points: Iterable[RooflinePoint] = (), ax=None):
    """The roofline: attainable FLOP/s = min(peak, intensity × bandwidth), with measured points (notebook 08).

    ``peaks`` maps a label (e.g. "fp32 matmul") to a measured FLOP/s; each gives one flat roof.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if not peaks:
        raise ValueError("plot_roofline needs at least one peak: pass {'fp32 matmul': flops_per_s}")
    points = list(points)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    lo = min([0.05] + [p.intensity / 3 for p in points])
    hi = max([1000.0] + [p.intensity * 3 for p in points])
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.loglog(x, x * bandwidth, color="0.6", ls=":", label=f"memory: {bandwidth / GB:.1f} GB/s × intensity")
    for (name, peak), color in zip(peaks.items(), ["C0", "C1", "C2", "C3"]):
        ax.loglog(x, np.minimum(peak, x * bandwidth), color=color, lw=2, label=f"{name}: {peak / GB:.1f} GFLOP/s")
    markers = "osD^v<>p*hX"
    for i, p in enumerate(points):
        ax.loglog(p.intensity, p.flops_per_s, markers[i % len(markers)], ms=8, color=f"C{(i + 4) % 10}",
                  label=f"{p.label}: {p.flops_per_s / GB:.2f} GFLOP/s")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("FLOP/s")
    ax.set_title("Roofline of this machine, with measured configurations")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    return ax


def plot_sweep(x, series: dict[str, list[float]], *, xlabel: str, ylabel: str, title: str, ax=None, logx=False):
    """One line per series against ``x``, labelled; the common shape of every sweep plot in notebook 08."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, ys in series.items():
        ax.plot(list(x), list(ys), "o-", label=name)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend()
    return ax


def plot_against_bound(table, *, title: str = "Each configuration against its own decode roofline", ax=None):
    """Horizontal bars: each row's measured decode tok/s (median, p10-p90 whiskers) over its ``bound tok/s``.

    ``table`` is a :func:`compare_runs` DataFrame with ``bound tok/s`` and ``share of bound`` columns added.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.5 * len(table) + 1.5))
    y = range(len(table))
    tok_s = table["decode tok/s"]
    ax.barh(y, table["bound tok/s"], color="0.85", label="decode bound (roofline)")
    ax.barh(y, tok_s, color="C0", label="measured (median)")
    ax.errorbar(tok_s, y, xerr=[tok_s - table["p10 tok/s"], table["p90 tok/s"] - tok_s], fmt="none", color="k",
                capsize=3)
    for i, (v, share) in enumerate(zip(tok_s, table["share of bound"])):
        ax.text(v, i, f" {v:.1f} ({share:.0%})", va="center", fontsize=8)
    ax.set_yticks(list(y), table.index)
    ax.invert_yaxis()
    ax.set_xlabel("decode tokens/s")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return ax
