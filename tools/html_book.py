"""The offline HTML book (``make html``): every executed notebook as HTML, plus an index page.

Widget views render without the internet: the widget renderer (``@jupyter-widgets/html-manager``) and RequireJS are
served from ``html/_static/``, fetched once with ``npm pack`` from the npm registry, instead of from a CDN. The widget
state must be stored in the notebook (``make book`` executes with ``store_widget_state=True``).
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "html"
STATIC = OUT / "_static"
NPM_PACKAGES = {"html-manager": "@jupyter-widgets/html-manager@1.0.15", "requirejs": "requirejs@2.3.7"}
RENDERER = "_static/html-manager/dist/embed-amd.js"
REQUIRE = "_static/requirejs/require.js"


def fetch_static() -> None:
    """Put the widget renderer and RequireJS under html/_static/ (npm pack, once)."""
    missing = {name: spec for name, spec in NPM_PACKAGES.items() if not (STATIC / name).exists()}
    if not missing:
        return
    if shutil.which("npm") is None:
        raise SystemExit("error: npm is needed once to fetch the widget renderer: apt-get install npm")
    STATIC.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in missing.items():
            out = subprocess.run(["npm", "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True,
                                 check=True).stdout.split()[-1]
            with tarfile.open(Path(tmp) / out) as tar:
                tar.extractall(tmp, filter="data")
            shutil.move(str(Path(tmp) / "package"), str(STATIC / name))


def exporter() -> HTMLExporter:
    exp = HTMLExporter(template_name="lab")
    exp.widget_renderer_url = RENDERER
    exp.require_js_url = REQUIRE
    return exp


def export(path: Path, exp: HTMLExporter | None = None, out: Path = OUT) -> Path:
    """Write ``<out>/<name>.html`` for one executed notebook; returns its path."""
    body, _ = (exp or exporter()).from_notebook_node(nbformat.read(path, as_version=4))
    target = out / f"{path.stem}.html"
    target.write_text(body, encoding="utf-8")
    return target


def index_rows() -> list[tuple[str, str]]:
    """(notebook stem, description) from the README's notebook table."""
    rows = []
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*\[(\d\d_[\w]+)\]\(notebooks/[^)]+\)\s*\|(.*)\|\s*$", line)
        if m:
            rows.append((m.group(1), m.group(2).strip()))
    return rows


def write_index(stems: list[str]) -> Path:
    described = dict(index_rows())
    items = "\n".join(f'<tr><td><a href="{s}.html">{s}</a></td><td>{html.escape(described.get(s, ""))}</td></tr>'
                      for s in stems)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>lmkit workbook</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td{{padding:6px;vertical-align:top;
border-bottom:1px solid #ddd}}</style></head><body><h1>lmkit: large language models, from the formula to the
tensor</h1><p>Every notebook, executed in full mode. Widgets render offline from <code>_static/</code>.</p>
<table><tr><th>notebook</th><th>what it shows</th></tr>{items}</table></body></html>"""
    target = OUT / "index.html"
    target.write_text(page, encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    fetch_static()
    if "--fetch-only" in argv:
        return 0
    exp = exporter()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for nb in notebooks:
        print(f"html: {export(nb, exp).relative_to(ROOT)}")
    print(f"html: {write_index([nb.stem for nb in notebooks]).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
