"""Open notebooks in a real JupyterLab in headless Chromium, run all cells, and check what a person would see."""
from __future__ import annotations

from .conftest import errors_on_page, open_notebook, run_all, shot


def test_notebook_00_runs_and_shows_its_figures(lab, page):
    open_notebook(page, lab, "00_running_an_llm.ipynb")
    run_all(page)
    assert errors_on_page(page) == []
    images = page.locator(".jp-OutputArea-output img")
    assert images.count() >= 3  # the parameter chart, the next-token bars, the temperature panel
    assert page.locator(".jp-OutputArea-output:has-text(' Paris')").count() >= 1
    page.locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
    assert shot(page, "00_parameters").stat().st_size > 10_000
