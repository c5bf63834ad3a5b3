"""Student copies of the notebooks: solutions blanked, outputs cleared (``make student``; ``--check`` for CI).

A solution cell (tagged ``solution``) that ends with ``lmkit.exercises.check(...)`` keeps that line, with
``answer = ...`` above it for the learner to fill in; any other solution cell becomes an empty "your code" cell.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
STUB = "# Exercise: write your code here, then run the cell.\n"


def student_cell_source(source: str) -> str:
    """The learner's version of a solution cell's source."""
    lines = [line for line in source.rstrip().splitlines()]
    if lines and lines[-1].startswith("lmkit.exercises.check("):
        return STUB + "answer = ...\n" + lines[-1]
    return STUB


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with solution cells blanked and every output and widget state removed."""
    nb = nbformat.from_dict(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "solution" in cell.metadata.get("tags", []):
            cell.source = student_cell_source(cell.source)
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "solution"] + ["exercise"]
        cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    return nb


def render(path: Path) -> str:
    return nbformat.writes(student_copy(nbformat.read(path, as_version=4))) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if student/ is out of date instead of writing it")
    args = ap.parse_args(argv)
    out_dir = ROOT / "student"
    stale = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text, target = render(path), out_dir / path.name
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
            continue
        out_dir.mkdir(exist_ok=True)
        target.write_text(text)
    expected = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    extra = sorted({p.name for p in out_dir.glob("*.ipynb")} - expected) if out_dir.exists() else []
    if args.check and (stale or extra):
        print(f"student/ is out of date ({', '.join(stale + extra)}): run `make student` and commit student/",
              file=sys.stderr)
        return 1
    for name in extra:
        (out_dir / name).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
