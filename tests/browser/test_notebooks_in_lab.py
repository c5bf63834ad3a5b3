"""Open notebooks in a real JupyterLab in headless Chromium, run all cells, and check what a person would see."""
from __future__ import annotations

from .conftest import run_notebook, shot


def test_notebook_00_runs_and_shows_its_figures(lab, page):
    run_notebook(page, lab, "00_running_an_llm.ipynb")
    images = page.locator(".jp-OutputArea-output img")
    assert images.count() >= 3  # the parameter chart, the next-token bars, the temperature panel
    assert page.locator(".jp-OutputArea-output:has-text(' Paris')").count() >= 1
    page.locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
    assert shot(page, "00_parameters").stat().st_size > 10_000
