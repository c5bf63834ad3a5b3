"""The word-map explorer: type word groups and a query word, see the 2-D map and the nearest tokens (notebook 02)."""
from __future__ import annotations

import io

from lmkit.embeddings.maps import METHODS, draw_map, map_coordinates, parse_groups
from lmkit.embeddings.matrix import neighbours
from lmkit.widgets.base import Widget, display_data, one_line, png_display_data

__all__ = ["MapExplorer", "explorer"]

DEFAULT_GROUPS = {"royalty": ["king", "queen", "prince", "princess"],
                  "animals": ["cat", "dog", "horse", "cow"],
                  "colours": ["red", "blue", "green", "yellow"]}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class MapExplorer(Widget):
    """An interactive word map over one model's input embeddings (notebook 02); build it with :func:`explorer`.

    Controls are attributes (``words``, ``query``, ``method``, ``k``, ``button``; set ``.value``, call
    ``.click()``). Each edit applies on Enter or when the field is left. Read what it shows with ``output_image``
    (the map, PNG bytes), ``output_text`` (the neighbours table), ``coordinates`` (the map as a DataFrame) and
    ``status_text`` (a summary, or the one-line message after bad input: never a traceback).
    """

    title = "word map explorer"

    def __init__(self, lm, groups: dict[str, list[str]] | None = None, query: str = "king"):
        import ipywidgets as w

        self.lm = lm
        self.coordinates = None
        self.neighbours = None
        groups = groups or DEFAULT_GROUPS
        self.words = w.Textarea(value="\n".join(f"{g}: {', '.join(ws)}" for g, ws in groups.items()),
                                description="groups", continuous_update=False,
                                layout=w.Layout(width="95%", height="110px"))
        self.query = w.Text(value=query, description="neighbours of", continuous_update=False,
                            style={"description_width": "initial"})
        self.method = w.Dropdown(options=[(name, key) for key, name in METHODS.items()], value="pca",
                                 description="map")
        self.k = w.IntSlider(value=8, min=1, max=30, description="k", continuous_update=False)
        self.button = w.Button(description="Update", button_style="primary")
        self.status = w.HTML()
        self.output = w.Output()
        self.out = self.output  # the name notebook 02 used first
        self.button.on_click(self.update)
        for control in (self.words, self.query, self.method, self.k):
            control.observe(self.update, names="value")
        self.widget = w.VBox([self.words, w.HBox([self.query, self.method, self.k, self.button]), self.status,
                              self.output])
        self.update()

    def update(self, _=None) -> bool:
        """Draw the map and the neighbours for the current controls; on bad input show the message. True if drawn."""
        try:
            groups = parse_groups(self.words.value)
            coords = map_coordinates(self.lm, groups, self.method.value)
            query = self.query.value.strip()
            table = neighbours(self.lm, query, k=self.k.value) if query else None
            png = self._render(coords)
        except Exception as exc:  # noqa: BLE001 - a widget shows one line, never a traceback
            self.coordinates = self.neighbours = None
            self.output.outputs = ()
            self.show_message(one_line(exc), error=True)
            return False
        self.coordinates, self.neighbours = coords, table
        name = METHODS[self.method.value]
        outputs = [png_display_data(png, f"{name} map of {len(coords)} words in {_count(len(groups), 'group')}")]
        if table is not None:
            outputs.append(display_data({"text/plain": self._neighbours_text()}))
        self.output.outputs = tuple(outputs)
        repeated = len(coords) - coords["word"].nunique()
        self.show_message(f"{len(coords)} words in {_count(len(groups), 'group')}, {name}"
                          + (f"; {_count(repeated, 'repeated word')} shown at the point of its first copy"
                             if repeated else ""))
        return True

    def _render(self, coords) -> bytes:
        """The map as PNG bytes, drawn on a bare matplotlib Figure (nothing else is displayed)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 5), dpi=80)
        draw_map(coords, self.method.value, fig.add_subplot(),
                 title=f"{getattr(self.lm, 'name', 'model')}: input embeddings")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def summary(self) -> str:
        """Plain text of what the explorer shows: the status, each group's words at their map points, the neighbours."""
        lines = [self.title]
        if self.status_text:
            lines.append(self.status_text)
        if self.coordinates is not None:
            name = METHODS[self.method.value]
            lines.append(f"map ({name} 1, {name} 2):")
            for group, rows in self.coordinates.groupby("group", sort=False):
                points = ", ".join(f"{r.word} ({r.x:.2f}, {r.y:.2f})" for r in rows.itertuples())
                lines.append(f"  {group}: {points}")
        if self.neighbours is not None:
            lines.append(self._neighbours_text())
        return "\n".join(lines)

    def _neighbours_text(self) -> str:
        return (f"nearest tokens to {self.query.value.strip()!r} by cosine similarity:\n"
                f"{self.neighbours.to_string()}")


def explorer(lm, groups: dict[str, list[str]] | None = None, query: str = "king") -> MapExplorer:
    """The interactive word map (notebook 02): display the returned object, type groups and a query word.

    Bad input (too few words, the same word only, an empty group) shows a one-line message in the status line.
    """
    return MapExplorer(lm, groups, query)
