"""What every lmkit widget shares: one shape, readable without a kernel, read back through accessors (notebooks 02-06).

A widget is a plain Python object (:class:`Widget`) that holds its ipywidgets controls as attributes (set
``.value``, call ``.click()``), its layout in ``.widget``, its main display area in ``.output`` and its status line
in ``.status``. What it shows is read back through four accessors, so that tests and notebooks never parse raw
output dicts or strip HTML by hand:

- :attr:`Widget.output_text`: the main output as plain text;
- :attr:`Widget.output_html`: the HTML the main output shows;
- :attr:`Widget.output_image`: the PNG bytes of the image shown (``None`` when there is none);
- :attr:`Widget.status_text`: the status line as plain text (a one-line message on bad input).

Displaying a widget gives the live view in JupyterLab, Colab and VS Code, and a plain-text summary of its current
content (:meth:`Widget.summary`) wherever widgets do not run: nbconvert's text output, GitHub's viewer, a console.
Everything is plain HTML with inline styles and PNG images: no JavaScript, no CDN.
"""
from __future__ import annotations

import base64
import html
from html.parser import HTMLParser

from lmkit import checks

__all__ = ["Widget", "display_data", "html_to_text", "message_html", "one_line", "png_display_data"]

ERROR_COLOUR = "#b00020"
NOTE_COLOUR = "#333333"


def display_data(data: dict) -> dict:
    """One ``display_data`` output (the dict an Output widget stores) holding the mime bundle ``data``."""
    return {"output_type": "display_data", "data": data, "metadata": {}}


def png_display_data(png: bytes, text: str) -> dict:
    """A ``display_data`` output of a PNG image, with ``text`` as its plain-text stand-in (never an object repr)."""
    return display_data({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text})


def message_html(text: str, error: bool = False) -> str:
    """A status-line message as an HTML span: red for an error, dark grey for a note."""
    checks.boolean("error", error)
    if not text:
        return ""
    return f'<span style="color:{ERROR_COLOUR if error else NOTE_COLOUR}">{html.escape(text)}</span>'


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, for a widget's status line (a ValueError's message alone)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return first if isinstance(exc, ValueError) and first else f"{type(exc).__name__}: {first}"


class _TextOf(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "div", "p", "tr", "li") and self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The text a reader sees in ``markup``: tags dropped, entities decoded, block elements on their own lines."""
    parser = _TextOf()
    parser.feed(markup or "")
    parser.close()
    return "".join(parser.parts).strip()


def _data_of(output) -> list[dict]:
    """The mime bundles an Output widget holds, streams (``print``) given as ``text/plain``."""
    bundles = []
    for out in output.outputs if output is not None else ():
        if out.get("output_type") == "stream":
            bundles.append({"text/plain": out.get("text", "")})
        else:
            bundles.append(dict(out.get("data", {})))
    return bundles


class Widget:
    """The base of lmkit's widgets: ``.widget`` (the layout), ``.output``, ``.status``, accessors and a text fallback.

    Subclasses build their controls in ``__init__``, set ``self.widget``, ``self.output`` (an ``ipywidgets.Output``)
    and ``self.status`` (an ``ipywidgets.HTML``), and describe their content for viewers without widgets in
    :meth:`summary`.
    """

    title = "lmkit widget"
    widget = output = status = None

    # -- what is shown
    @property
    def output_text(self) -> str:
        """The main output as plain text (each item's ``text/plain``, or its HTML's text)."""
        parts = []
        for data in _data_of(self.output):
            if "text/plain" in data:
                parts.append(str(data["text/plain"]))
            elif "text/html" in data:
                parts.append(html_to_text(data["text/html"]))
        return "".join(p if p.endswith("\n") else p + "\n" for p in parts).rstrip("\n")

    @property
    def output_html(self) -> str:
        """The HTML the main output shows ("" when it shows none)."""
        return "".join(str(d["text/html"]) for d in _data_of(self.output) if "text/html" in d)

    @property
    def output_image(self) -> bytes | None:
        """The PNG bytes of the image shown, first one in the widget's outputs (``None`` when none is shown)."""
        for output in self._outputs():
            for data in _data_of(output):
                if "image/png" in data:
                    png = data["image/png"]
                    return png if isinstance(png, bytes) else base64.b64decode(png)
        return None

    @property
    def status_text(self) -> str:
        """The status line as plain text: progress, a summary, or a one-line message after bad input."""
        return html_to_text(self.status.value) if self.status is not None else ""

    def _outputs(self) -> list:
        """Every Output widget, main one first (subclasses with several add theirs)."""
        return [self.output]

    # -- status line
    def show_message(self, text: str, error: bool = False) -> None:
        """Write ``text`` to the status line (red when ``error``)."""
        self.status.value = message_html(text, error)

    # -- display
    def summary(self) -> str:
        """Plain text of what the widget shows now: its title, status line and output (no widget reprs)."""
        lines = [self.title]
        if self.status_text:
            lines.append(self.status_text)
        if self.output_text:
            lines.append(self.output_text)
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs) or {})
        bundle["text/plain"] = self.summary()
        return bundle

    def __repr__(self) -> str:
        return self.summary()
