"""The workbook's widgets in a real JupyterLab: the generation playground (04) and the attention explorer (03)."""
from __future__ import annotations

import time

from playwright.sync_api import expect

from .conftest import run_notebook, set_slider, shot, widget_output


def test_playground_streams_coloured_tokens(lab, page):
    run_notebook(page, lab, "06_generation.ipynb")
    pg = widget_output(page, "button:has-text('Generate')")
    set_slider(pg, "max_new_tokens", 12)
    assert pg.locator(".widget-slider", has=page.locator(".widget-label:text-is('max_new_tokens')")) \
        .locator(".widget-readout").first.inner_text().strip() == "12"
    before = pg.inner_text()  # the notebook's own cell already ran a shorter generation: its status is stale
    pg.locator("button:has-text('Generate')").click()
    deadline = time.time() + 180
    while time.time() < deadline:  # the status line ends with why generation stopped
        status = pg.inner_text()
        if status != before and "tokens/s" in status and ("max_new_tokens reached" in status
                                                          or "end of sequence" in status):
            break
        page.wait_for_timeout(300)
    else:
        raise AssertionError(f"generation did not finish: {pg.inner_text()[:500]}")
    coloured = pg.locator(".widget-output span[style*='background']")
    # the kernel draws the tokens before it writes the status line, but the browser may render the status first
    expect(coloured.first).to_be_visible(timeout=15_000)
    assert 1 <= coloured.count() <= 12 + 5  # one span per generated token (the prompt may be plain text)
    colours = {coloured.nth(i).get_attribute("style") for i in range(coloured.count())}
    assert len(colours) >= 2, "tokens should be coloured by their probability"
    assert shot(page, "04_playground").stat().st_size > 10_000

    # Stop: a long generation, stopped after a few tokens, ends early and says so.
    set_slider(pg, "max_new_tokens", 256)
    pg.locator("button:has-text('Generate')").click()
    stop = pg.locator("button:has-text('Stop')")
    expect(stop).to_be_enabled(timeout=30_000)
    deadline = time.time() + 60
    while time.time() < deadline and pg.locator(".widget-output span[style*='background']").count() < 3:
        page.wait_for_timeout(200)
    stop.click()
    expect(pg.locator(":text('stopped')").first).to_be_visible(timeout=60_000)
    n = pg.locator(".widget-output span[style*='background']").count()
    assert 3 <= n < 256, f"{n} tokens after Stop"
    shot(page, "04_playground_stopped")


def test_attention_explorer_redraws_when_a_slider_moves(lab, page):
    run_notebook(page, lab, "04_attention.ipynb")
    ex = widget_output(page, ".widget-label:text-is('query')")
    image = ex.locator("img").first
    image.wait_for(timeout=30_000)
    before = image.get_attribute("src")
    shot(page, "03_explorer_before")
    set_slider(ex, "layer", 5)
    deadline = time.time() + 30
    while time.time() < deadline and ex.locator("img").first.get_attribute("src") == before:
        page.wait_for_timeout(200)
    assert ex.locator("img").first.get_attribute("src") != before, "the map did not change after moving the layer"
    assert shot(page, "03_explorer_after").stat().st_size > 10_000
