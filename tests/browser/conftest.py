"""A real JupyterLab server and a real headless Chromium, for tests that use the workbook as a person does.

The server runs on 127.0.0.1 with a random token, on a temporary copy of notebooks/ (so that autosave never touches
the committed notebooks), in quick mode, with its own settings folder (no news pop-up). It is killed by its PID.
Chromium is Debian's /usr/bin/chromium driven by playwright; `playwright install` is never used.
"""
from __future__ import annotations

import json
import re
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "tests" / "browser" / "output"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _require(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {why}")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server: yields (base_url, token, root folder)."""
    _require(shutil.which("jupyter", path=str(Path(sys.executable).parent)) is not None, "jupyter not installed")
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    for src in (ROOT / "notebooks").glob("*.ipynb"):  # outputs stripped: whatever shows was made by this run
        nb = nbformat.read(src, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, root / "notebooks" / src.name)
    settings = root / "settings" / "@jupyterlab"
    for plugin, values in {"apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                           "notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True}}.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root / 'notebooks'}",
           "--ServerApp.open_browser=False", "--LabApp.news_url=", f"--LabApp.workspaces_dir={root / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(root / "settings"), LMKIT_QUICK="1", HF_HUB_OFFLINE="1",
               TQDM_DISABLE="1", JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield base, token, root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started, by PID
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium under playwright."""
    _require(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def open_notebook(page, lab, name: str):
    base, token, _ = lab
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")  # reset: no tabs restored from an earlier test
    page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached", timeout=60_000)
    select = page.locator(".jp-Dialog button:has-text('Select')")
    try:  # older settings may still ask which kernel to start
        select.click(timeout=3_000)
    except Exception:  # noqa: BLE001 - no dialog: the kernel started on its own
        pass
    try:
        page.wait_for_selector(".jp-StatusBar-Widget :text-matches('\\| Idle')", timeout=90_000)
    except Exception:
        shot(page, f"failed_open_{name.split('.')[0]}")
        raise


CURRENT_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def run_all(page, timeout_s: float = 600) -> None:
    """Run > Run All Cells, then wait until every code cell of the notebook on screen has an execution number.

    The notebook is focused first, and the menu command is given again if no cell started within 30 s: on a slow
    machine a click can land before the notebook is the current widget, and then Run All does nothing. A cell that
    raises stops Run All (as it does for a learner): that fails at once with the error's text.
    """
    prompts_js = """(sel) => [...document.querySelectorAll(sel)].map(c =>
        c.querySelector('.jp-InputArea-prompt').textContent + ' ' +
        c.querySelector('.jp-InputArea-editor').textContent.slice(0, 80))"""
    cells = f"{CURRENT_NOTEBOOK} .jp-CodeCell"
    for _ in range(3):
        page.click(f"{CURRENT_NOTEBOOK} .jp-Cell .jp-InputPrompt >> nth=0", timeout=10_000)
        page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)
        started = time.time() + 30
        while time.time() < started:
            if any(re.match(r"\[(\d+|\*)\]", p) for p in page.evaluate(prompts_js, cells)):
                break
            page.wait_for_timeout(500)
        else:
            continue
        break
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        prompts = page.evaluate(prompts_js, cells)
        if prompts and all(re.match(r"\[\d+\]", p) for p in prompts):
            return
        if prompts and not any(p.startswith("[*]") for p in prompts) and errors_on_page(page):
            shot(page, "failed_run_all")  # Run All stops at the first error: report it now, not at the timeout
            raise AssertionError(f"Run All stopped at an error: {errors_on_page(page)[0][-500:]}")
        page.wait_for_timeout(500)
    stuck = next((p for p in prompts if not re.match(r"\[\d+\]", p)), "")
    shot(page, "failed_run_all")
    raise TimeoutError(f"cells still running after {timeout_s} s; first unfinished: {stuck!r}")


def errors_on_page(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
        .map(e => e.textContent).filter(t => t.includes('Error') || t.includes('Traceback'))""")


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def set_slider(container, label: str, value) -> None:
    """Type ``value`` into the editable readout of the ipywidgets slider labelled ``label``, as a person would."""
    slider = container.locator(".widget-slider", has=container.page.locator(f".widget-label:text-is('{label}')"))
    readout = slider.locator(".widget-readout").first
    readout.click()
    container.page.keyboard.press("Control+A")
    container.page.keyboard.type(str(value))
    container.page.keyboard.press("Enter")
    container.page.wait_for_timeout(300)


def run_notebook(page, lab, name: str) -> None:
    """Open notebooks/``name``, run all its cells, and check that none printed an error."""
    if not (ROOT / "notebooks" / name).exists():
        pytest.fail(f"notebooks/{name} is missing")
    open_notebook(page, lab, name)
    run_all(page)
    assert errors_on_page(page) == []


def widget_output(page, marker: str):
    """The output area of the widget that contains ``marker`` (a CSS selector), scrolled into view."""
    area = page.locator(".jp-OutputArea-output", has=page.locator(marker)).first
    area.scroll_into_view_if_needed()
    return area
