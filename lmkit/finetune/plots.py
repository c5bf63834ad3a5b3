"""Loss curves of a fine-tuning run: a static plot and a live one that redraws in place (notebook 12)."""
from __future__ import annotations

__all__ = ["plot_step_curves", "plot_loss_curves", "plot_history", "LivePlot"]


def plot_step_curves(history: list[dict], train_key: str, val_key: str, *, ylabel: str, title: str,
                     labels=("train (per step)", "validation"), ax=None, mark_best: bool = False):
    """Two per-step curves of a run's history (``step`` plus ``train_key`` / ``val_key``, None where absent) against
    optimizer steps; used for the loss curves (notebook 12) and DPO's reward margin (notebook 17). Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    train = [(h["step"], h[train_key]) for h in history if h.get(train_key) is not None]
    val = [(h["step"], h[val_key]) for h in history if h.get(val_key) is not None]
    if train:
        ax.plot(*zip(*train), color="#4C72B0", alpha=0.8, label=labels[0])
    if val:
        ax.plot(*zip(*val), "o-", color="#DD8452", label=labels[1])
        if mark_best:
            best = min(val, key=lambda sv: sv[1])[0]
            ax.axvline(best, color="#DD8452", ls=":", lw=1, label=f"lowest {labels[1]} (step {best})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend(loc="best", fontsize=8)  # "best": the corner with the fewest points under it
    return ax


def plot_loss_curves(history: list[dict], ax=None, title: str = "training and validation loss"):
    """Train loss per step and validation loss per evaluation, against optimizer steps (notebook 12).

    ``history``: :func:`lmkit.finetune.train`'s entries (``step``, ``train_loss``, ``val_loss``). Returns the axes.
    (``lmkit.tinygpt.plot_history`` draws a different thing: several tiny-model runs side by side.)
    """
    return plot_step_curves(history, "train_loss", "val_loss", ylabel="loss (nats per label token)", title=title,
                            ax=ax, mark_best=True)


plot_history = plot_loss_curves  # the name notebook 12 uses


class LivePlot:
    """A loss plot that redraws in place in a notebook (one display handle), and stays as a static figure (notebook 12).

    ``ylabel`` names the loss (DPO's is per pair, notebook 17); ``mark_best`` draws a dotted line, in the legend, at
    the step with the lowest validation loss. ``every``: redraw every that many updates, and whenever a validation
    loss arrives; ``close`` draws what is still pending, so the figure left in the notebook shows the whole run
    (rendering a figure costs a fraction of a second, which adds up over many short steps)."""

    def __init__(self, title: str = "training and validation loss", figsize=(7, 3.5), *,
                 ylabel: str = "loss (nats per label token)", mark_best: bool = True, every: int = 1):
        from lmkit import checks

        self.every = checks.integer("every", every, low=1, fix="redraw every N updates, such as 1 or 5")
        self._updates, self._pending = 0, None
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.title, self.ylabel, self.mark_best = title, ylabel, mark_best
        self.fig, self.ax = plt.subplots(figsize=figsize)
        self._draw([])
        self.handle = display(self.fig, display_id=True)

    def _draw(self, history: list[dict]) -> None:
        plot_step_curves(history, "train_loss", "val_loss", ylabel=self.ylabel, title=self.title, ax=self.ax,
                         mark_best=self.mark_best)

    def update(self, history: list[dict]) -> None:
        self._updates += 1
        if self._updates % self.every and not (history and history[-1].get("val_loss") is not None):
            self._pending = list(history)
            return
        self._render(history)

    def _render(self, history: list[dict]) -> None:
        self._pending = None
        self.ax.clear()
        self._draw(history)
        self.fig.tight_layout()
        self.handle.update(self.fig)

    def close(self) -> None:
        import matplotlib.pyplot as plt

        if self._pending is not None:
            self._render(self._pending)
        plt.close(self.fig)  # the display keeps the last image; the inline backend does not show it twice
