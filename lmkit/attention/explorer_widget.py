"""The interactive attention explorer: a text, layer and head sliders, a heatmap or head view (notebook 04).

Attentions are computed once per text; moving a control only redraws, and the redraw reuses a pre-rendered
frame so that it stays fast on a CPU (``benchmarks/attention.py`` times it).
"""
from __future__ import annotations

import io
import time

import numpy as np
import torch

from lmkit import checks
from lmkit.attention.capture import _attentions_of_ids
from lmkit.attention.plots import plot_head, plot_head_view
from lmkit.widgets.base import Widget, one_line, png_display_data

__all__ = ["EXPLORER_MAX_TOKENS", "Explorer", "GAMMA", "HEAD_VIEW_MIN", "explorer"]

EXPLORER_MAX_TOKENS = 64
"""The explorer truncates longer texts (with a visible note): beyond this the token labels cannot be read."""

GAMMA = 0.5
"""The explorer's colour scale: probabilities 0..1 shown as p**0.5, so weak weights stay visible next to a sink."""

HEAD_VIEW_MIN = 0.02
"""Head-view lines below this probability are not drawn."""


class Explorer(Widget):
    """An ipywidgets panel over one model's attention (notebook 04).

    Controls are attributes: ``text`` (submit with Enter), ``layer`` and ``head`` sliders, ``average`` (over heads),
    ``token`` (the query to highlight; -1 = all), ``view`` ("heatmap" or "head view"); the map goes to ``output``
    as a PNG, messages to ``status``. Attentions are computed once per text (``n_computed`` counts forward passes);
    moving a control only redraws, and ``last_redraw_s`` holds the time of the latest redraw. Read what it shows
    with ``output_image`` (PNG bytes), ``title`` (what the map is), ``shown`` (the ``[T, T]`` map drawn) and
    ``status_text``; ``summary()`` gives the same as text.
    """

    title = "attention explorer"

    def __init__(self, lm, text: str = "The cat sat on the mat because it was tired.", *,
                 max_tokens: int = EXPLORER_MAX_TOKENS, dpi: int = 80):
        import ipywidgets as w

        checks.text("text", text, blank_ok=True, fix="pass the text to show (it can be edited later)")
        max_tokens = checks.integer("max_tokens", max_tokens, low=1, fix=f"pass e.g. {EXPLORER_MAX_TOKENS}")
        dpi = checks.integer("dpi", dpi, low=10, fix="pass e.g. dpi=80")
        self.lm, self.max_tokens, self.dpi = lm, max_tokens, dpi
        cfg = lm.model.config
        self.n_computed, self.last_redraw_s, self.shown, self.title = 0, 0.0, None, "attention explorer"
        self.tokens: list[str] = []
        self.att: torch.Tensor | None = None
        self._cache: dict[str, tuple[list[str], torch.Tensor, str]] = {}
        self._frames: dict = {}  # (text's tensor id, view) -> (figure, animated artists, background)
        self.text = w.Text(value=text, description="text", continuous_update=False,
                           layout=w.Layout(width="95%"), placeholder="type a text and press Enter")
        self.layer = w.IntSlider(0, min=0, max=cfg.num_hidden_layers - 1, description="layer",
                                 continuous_update=True)
        self.head = w.IntSlider(0, min=0, max=cfg.num_attention_heads - 1, description="head",
                                continuous_update=True)
        self.average = w.Checkbox(False, description="average over heads")
        self.token = w.Dropdown(options=[("all tokens", -1)], value=-1, description="query")
        self.view = w.ToggleButtons(options=["heatmap", "head view"], value="heatmap", description="view")
        self.status = w.HTML()
        self.output = w.Output()
        self.widget = w.VBox([self.text, w.HBox([self.layer, self.head, self.average]),
                              w.HBox([self.token, self.view]), self.status, self.output])
        self.text.observe(lambda _: self.compute(), names="value")
        for control in (self.layer, self.head, self.average, self.token, self.view):
            control.observe(lambda _: self.redraw(), names="value")
        self.compute()

    def compute(self) -> None:
        """Tokenise the text (truncating past ``max_tokens``, with a note), run the model once, then redraw."""
        text = self.text.value
        try:
            if text not in self._cache:
                if not text.strip():
                    raise ValueError("the text is empty: type a text and press Enter")
                ids = self.lm.encode(text)[0]
                if len(ids) == 0:
                    raise ValueError(f"the text {text!r:.40} gives no tokens: type a text with words in it")
                note = ""
                if len(ids) > self.max_tokens:
                    note = (f"The text has {len(ids)} tokens: showing the first {self.max_tokens} "
                            f"(max_tokens={self.max_tokens}).")
                    ids = ids[:self.max_tokens]
                tokens, att = _attentions_of_ids(self.lm, ids[None])
                if len(self._cache) >= 8:  # keep the 8 latest texts (a 64-token text takes 4.4 MB)
                    self._cache.pop(next(iter(self._cache)))
                self._cache[text] = (tokens, att, note)
                self.n_computed += 1
            self.tokens, self.att, note = self._cache[text]
        except Exception as exc:  # noqa: BLE001 - a widget shows one line, never a traceback
            self.show_message(one_line(exc), error=True)
            return
        options = [("all tokens", -1)] + [(f"{i}: {tok!r}", i) for i, tok in enumerate(self.tokens)]
        with self.token.hold_trait_notifications():
            keep = self.token.value if self.token.value < len(self.tokens) else -1
            self.token.options = options
            self.token.value = keep
        self.show_message(note or f"{len(self.tokens)} tokens; moving a control only redraws.")
        self.redraw()

    def current(self) -> torch.Tensor:
        """The ``[T, T]`` map the controls select: one head, or the mean over heads."""
        a = self.att[self.layer.value]
        return a.mean(0) if self.average.value else a[self.head.value]

    def _figure(self):
        """The figure for the current text and view, drawn once; a redraw only blits the artists that change.

        Text is what costs most in matplotlib (tick labels, colour bar), so the static frame is rendered once
        per text and view and kept as a background; each redraw restores it, draws the map (or the lines) and
        the title over it, and encodes the pixels. Colours are on a fixed 0..1 power scale, so the colour bar
        never changes.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure

        key = (id(self.att), self.view.value)
        if key in self._frames:
            self._fig, self._animated, self._background = self._frames[key]
            return self._fig
        if self._frames and next(iter(self._frames))[0] != key[0]:
            self._frames.clear()  # a new text: the old frames are stale
        t = len(self.tokens)
        if self.view.value == "heatmap":
            size = min(9.0, max(4.5, 0.16 * t + 2.5))
            fig = Figure(figsize=(size + 1, size), dpi=self.dpi)
            ax = plot_head(np.tril(np.ones((t, t))), self.tokens, fig.add_subplot(), title=" ", query=0,
                           gamma=GAMMA)
            self._animated = [ax.images[0], ax.patches[0], ax.title]
        else:
            fig = Figure(figsize=(6, max(3.0, 0.2 * t + 1)), dpi=self.dpi)
            ax = plot_head_view(np.zeros((t, t)), self.tokens, fig.add_subplot(), title=" ")
            self._animated = [ax.add_collection(LineCollection([])), ax.title]
        canvas = FigureCanvasAgg(fig)
        fig.tight_layout()  # once per text and view: it costs more than a redraw
        for artist in self._animated:
            artist.set_animated(True)
        canvas.draw()
        self._background = canvas.copy_from_bbox(fig.bbox)
        self._fig = fig
        self._frames[key] = (fig, self._animated, self._background)
        return fig

    def render(self) -> bytes:
        """The current view as PNG bytes (a matplotlib figure outside pyplot, so nothing else is displayed)."""
        from PIL import Image as PILImage

        t = len(self.tokens)
        query = None if self.token.value < 0 else self.token.value
        which = "mean of heads" if self.average.value else f"head {self.head.value}"
        self.title = f"layer {self.layer.value}, {which}" + ("" if query is None else
                                                             f", query {query}: {self.tokens[query]!r}")
        self.shown = self.current()
        fig = self._figure()
        ax = fig.axes[0]
        fig.canvas.restore_region(self._background)
        ax.title.set_text(self.title)
        w = self.shown.numpy()
        extra = []
        if self.view.value == "heatmap":
            image, frame, _ = self._animated
            image.set_data(np.where(np.triu(np.ones((t, t), bool), 1), np.nan, w))
            frame.set_visible(query is not None)
            frame.set_y((query or 0) - 0.5)
            frame.set_width((query or 0) + 1)
        else:
            lines = self._animated[0]
            queries = range(t) if query is None else [query]
            pairs = [(i, j) for i in queries for j in range(i + 1) if w[i, j] >= HEAD_VIEW_MIN]
            lines.set_segments([[(0.0, i), (1.0, j)] for i, j in pairs])
            lines.set_color([(0.12, 0.47, 0.71, min(1.0, 0.15 + 0.85 * w[i, j])) for i, j in pairs])
            lines.set_linewidth([0.5 + 4 * w[i, j] for i, j in pairs])
            if query is not None:
                fs = 9 if t <= 24 else 7 if t <= 48 else 5
                extra.append(ax.text(-0.02, query, self.tokens[query], ha="right", va="center", fontsize=fs,
                                     color="red", fontweight="bold", animated=True,
                                     bbox=dict(facecolor="white", edgecolor="none", pad=0.5)))
                extra += [ax.text(1.6, j, f"{w[query, j]:.2f}", ha="right", va="center", fontsize=fs,
                                  color="red", animated=True) for _, j in pairs]
        for artist in self._animated + extra:
            ax.draw_artist(artist)
        for artist in extra:
            artist.remove()
        buf = io.BytesIO()
        rgba = fig.canvas.buffer_rgba()
        size = (int(fig.bbox.width), int(fig.bbox.height))
        PILImage.frombuffer("RGBA", size, rgba, "raw", "RGBA", 0, 1).convert("RGB").save(buf, format="png",
                                                                                         compress_level=1)
        return buf.getvalue()

    def redraw(self) -> None:
        """Draw the current map into ``output`` (replacing the previous one); no model call."""
        if self.att is None:
            return
        start = time.perf_counter()
        self.head.disabled = self.average.value
        png = self.render()
        self.output.outputs = (png_display_data(png, f"attention map: {self.title} ({self.view.value})"),)
        self.last_redraw_s = time.perf_counter() - start


    def summary(self) -> str:
        """Plain text of what the explorer shows: the map's title, the status, and for each query its strongest key."""
        lines = [f"attention explorer: {self.title} ({self.view.value})" if self.shown is not None
                 else "attention explorer"]
        if self.status_text:
            lines.append(self.status_text)
        if self.shown is not None:
            w = self.shown.numpy()
            queries = range(len(self.tokens)) if self.token.value < 0 else [self.token.value]
            for i in queries:
                j = int(np.argmax(w[i, :i + 1]))
                lines.append(f"{i:>3} {self.tokens[i]!r} -> {j} {self.tokens[j]!r} {w[i, j]:.2f}")
        return "\n".join(lines)


def explorer(lm, text: str = "The cat sat on the mat because it was tired.", **kw) -> Explorer:
    """The interactive attention explorer (notebook 04); display the returned object."""
    return Explorer(lm, text, **kw)
