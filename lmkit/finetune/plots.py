"""Loss curves of a fine-tuning run: a static plot and a live one that redraws in place (notebook 06)."""
from __future__ import annotations

__all__ = ["plot_loss_curves", "plot_history", "LivePlot"]


def plot_loss_curves(history: list[dict], ax=None, title: str = "training and validation loss"):
    """Train loss per step and validation loss per evaluation, against optimizer steps (notebook 06).

    ``history``: :func:`lmkit.finetune.train`'s entries (``step``, ``train_loss``, ``val_loss``). Returns the axes.
    (``lmkit.tinygpt.plot_history`` draws a different thing: several tiny-model runs side by side.)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    train = [(h["step"], h["train_loss"]) for h in history if h.get("train_loss") is not None]
    val = [(h["step"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
    if train:
        ax.plot(*zip(*train), color="#4C72B0", alpha=0.8, label="train (per step)")
    if val:
        ax.plot(*zip(*val), "o-", color="#DD8452", label="validation")
        best = min(val, key=lambda sv: sv[1])
        ax.axvline(best[0], color="#DD8452", ls=":", lw=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per label token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend(loc="upper right")
    return ax


plot_history = plot_loss_curves  # the name notebook 06 uses


class LivePlot:
    """A loss plot that redraws in place in a notebook (one display handle), and stays as a static figure (notebook 06)."""

    def __init__(self, title: str = "training and validation loss", figsize=(7, 3.5)):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.title = title
        self.fig, self.ax = plt.subplots(figsize=figsize)
        plot_loss_curves([], self.ax, title)
        self.handle = display(self.fig, display_id=True)

    def update(self, history: list[dict]) -> None:
        self.ax.clear()
        plot_loss_curves(history, self.ax, self.title)
        self.fig.tight_layout()
        self.handle.update(self.fig)

    def close(self) -> None:
        import matplotlib.pyplot as plt

        plt.close(self.fig)  # the display keeps the last image; the inline backend does not show it twice
