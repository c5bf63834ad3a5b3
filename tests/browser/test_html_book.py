"""The offline HTML book: widget views render from html/_static with every non-local request blocked."""
from __future__ import annotations

import shutil
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT, shot

sys.path.insert(0, str(ROOT / "tools"))
import html_book  # noqa: E402

WIDGET_CELL = """import ipywidgets as w
slider = w.IntSlider(value=7, min=0, max=10, description="layer")
box = w.VBox([slider, w.HTML("<span style='background:#f4a582'>token</span>")])
box"""


@pytest.fixture
def offline_page(page):
    blocked = []

    def route(r):
        if r.request.url.startswith("file:"):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.blocked = blocked
    return page


def test_exported_widgets_render_offline(tmp_path, offline_page):
    if not (html_book.STATIC / "html-manager").exists():
        pytest.fail("html/_static is missing: run `make test` (it fetches the widget renderer once)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WIDGET_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True).execute()
    assert "widgets" in nb.metadata  # the state that the page renders from
    path = tmp_path / "widgets.ipynb"
    nbformat.write(nb, path)
    shutil.copytree(html_book.STATIC, tmp_path / "_static", symlinks=True)
    page_path = html_book.export(path, out=tmp_path)
    offline_page.goto(page_path.as_uri())
    offline_page.wait_for_selector(".widget-slider", timeout=30_000)
    assert offline_page.locator(".widget-readout").first.inner_text().strip() == "7"
    assert offline_page.locator("span[style*='f4a582']").count() == 1
    assert not [u for u in offline_page.blocked if "embed-amd" in u or "require" in u]
    shot(offline_page, "html_widgets_offline")


def test_notebook_00_html_shows_its_figures_offline(tmp_path, offline_page):
    shutil.copytree(html_book.STATIC, tmp_path / "_static", symlinks=True)
    page_path = html_book.export(ROOT / "notebooks" / "00_running_an_llm.ipynb", out=tmp_path)
    offline_page.goto(page_path.as_uri())
    assert offline_page.locator("img[src^='data:image/png']").count() >= 3
    assert offline_page.locator("text=The capital of France is Paris").count() >= 1
