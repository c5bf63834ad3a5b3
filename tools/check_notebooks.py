"""Two checks on committed notebooks: prose figures match the outputs, and the stored outputs are clean.

PROSE  Every number written in a markdown cell is either
       - a figure that appears in that notebook's outputs, allowing the rounding shown in the prose (34.2 matches
         34.17; 1,500 matches 1500; 82.5% matches 0.825 or 82.5; 4.1x matches 4.13; 1.5 M matches 1,512,005);
       - a setting written in one of its code cells (``steps=150`` makes "150 steps" a setting, not a measurement);
       - a reference or a name, recognised by its form: notebook numbers written with a leading zero (``05``),
         numbers after "notebook", "section", "exercise", "cell" or "layer", numbered headings and list markers,
         compounds such as ``4-bit`` or ``Q4_1``, anything inside `code` or a link's address;
       - or a constant on the short lists below (the model's shape, formula constants, years).
       Where a figure changes from run to run, the notebook should print the sentence from its variables (a
       printed summary or ``IPython.display.Markdown``): the figure then lives in an output, not in a markdown cell.
OUTPUTS No stored output holds a traceback, a machine path (``/root/``, ``/home/``, ``site-packages``, ``/tmp/``),
       a progress bar's static text (``0%|``, ``it/s]``), or an object repr with a memory address (``at 0x...``).

Usage: ``python tools/check_notebooks.py [--prose] [--outputs] notebooks/*.ipynb`` (both checks when neither flag
is given); exit status 1 when a check fails, with one line per problem: ``notebook:cell: message``.
Importable: :func:`prose_problems`, :func:`output_problems`, :func:`check` (used by tests/test_notebook_checks.py).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Problem", "ALLOWED", "ALLOWED_BY_NOTEBOOK", "prose_numbers", "output_numbers", "prose_problems",
           "output_problems", "stale_widget_models", "prune_widget_state", "check", "main"]

# ------------------------------------------------------------------------------------------ allow-lists (short!)
ALLOWED: set[float] = {
    # SmolLM2-135M's shape (notebook 00 prints it; other notebooks quote it): layers, query and key/value heads,
    # hidden size, head size, MLP width, vocabulary, context, parameters (millions), float32 size (MB), 30 x 9 heads
    30, 9, 3, 576, 64, 1536, 49152, 8192, 134.5, 135, 538, 270,
    # formula constants: none, one, halves, doubling; the int8 range and levels; bits of the common dtypes
    0, 1, 2, 0.5, 127, 128, 255, 256, 8, 16, 32, 4,
}
"""Numbers that may appear in any notebook's prose without being printed: the model's shape and formula constants.
Keep it short; a number that is measured belongs in an output."""

ALLOWED_BY_NOTEBOOK: dict[str, set[float]] = {
    # cited facts, not measured here: SmolLM2's pretraining data (about 2 trillion tokens); the hub's larger model
    "01_language_models": {2e12},
    "15_applications": {1.7e9, 1.7, 13},  # SmolLM2-1.7B-Instruct, 13x larger: the model card's size, not measured
}
"""Per notebook: cited constants (with the reason in a comment)."""

YEARS = range(1940, 2031)  # "Bengio et al. 2003", "(Hinton et al., 2015)"

SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "millions": 1e6, "b": 1e9, "billion": 1e9,
         "billions": 1e9, "trillion": 1e12, "trillions": 1e12}
REFERENCE_WORDS = ("notebook", "notebooks", "section", "sections", "exercise", "exercises", "cell", "cells", "layer",
                   "layers", "item", "items", "step", "act", "scene", "chapter", "§", "and", "or")
"""A bare number right after one of these words names a notebook, section, layer... (``notebooks 08 and 14``)."""

NUMBER = re.compile(
    r"(?<![\w.\-/])"                        # not inside a word, a dotted name, a compound or a path
    r"(?P<sign>[-−])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<tail>"
    r"\s?(?P<pct>%)"
    r"|(?P<times>x|×)(?![\w])"
    r"|\s?(?P<scale>thousand|millions?|billions?|trillions?|[kKMB])(?![\w])"
    r"|(?P<compound>-[A-Za-z]|[A-Za-z_])"    # 4-bit, 1,024-token, 3D, fp16-like tails: a name, not a figure
    r")?"
)
MACHINE_PATH = re.compile(r"(/root/|/home/|/Users/|site-packages|dist-packages|/tmp/|[A-Z]:\\\\Users)")
PROGRESS = re.compile(r"\d{1,3}%\|| \d+/\d+ \[\d\d:\d\d|it/s\]|s/it\]")
ADDRESS = re.compile(r"<[^<>\n]* at 0x[0-9a-fA-F]+>")


@dataclass(frozen=True)
class Problem:
    notebook: str
    cell: int
    message: str

    def __str__(self) -> str:
        return f"{self.notebook}:cell {self.cell}: {self.message}"


# ------------------------------------------------------------------------------------------ reading notebooks
def _load(nb) -> tuple[str, dict]:
    if isinstance(nb, (str, Path)):
        path = Path(nb)
        return path.stem, json.loads(path.read_text(encoding="utf-8"))
    return str(nb.get("metadata", {}).get("name", "notebook")), nb


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _output_texts(output: dict) -> list[str]:
    """Every text an output holds: stream text, tracebacks, and the text-like parts of its data."""
    texts = []
    if output.get("output_type") == "stream":
        texts.append(_text(output.get("text")))
    elif output.get("output_type") == "error":
        texts.append(f"{output.get('ename')}: {output.get('evalue')}\n" + "\n".join(output.get("traceback", [])))
    for mime, value in output.get("data", {}).items():
        if mime.startswith("text/") or mime.endswith("+json") and mime != "application/vnd.jupyter.widget-view+json":
            texts.append(_text(value) if not isinstance(value, dict) else json.dumps(value))
    return texts


# ------------------------------------------------------------------------------------------ numbers
def _strip_markdown(md: str) -> str:
    """Markdown without what never holds a figure: code spans and blocks, link addresses, images, HTML tags."""
    md = re.sub(r"```.*?```", " ", md, flags=re.S)
    md = re.sub(r"`[^`]*`", " ", md)
    md = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", md)
    md = re.sub(r"\]\([^)]*\)", "] ", md)
    md = re.sub(r"https?://\S+", " ", md)
    md = re.sub(r"<[^>]+>", " ", md)
    md = re.sub(r"^\s{0,3}#+\s*\d+(\.\d+)*\.?", " ", md, flags=re.M)          # "## 2. Loading" headings
    md = re.sub(r"^\s*(\d+)\.\s", " ", md, flags=re.M)                        # "1. It uses" list markers
    md = re.sub(r"\*\*\d+\.(?=\*\*|\s)", " ", md)                                        # "**2.** exercise labels"
    md = re.sub(r"^\*\*\d+\.\d+\b", " ", md, flags=re.M)                     # "**12.4 (open)**" exercise labels
    md = re.sub(r"\b\d+\.\d+\.\d+\w*\b", " ", md)                                # versions: "xgrammar 0.2.9"
    md = re.sub(r"\b(?:sections?|§)\s*\d+(?:\.\d+)*", " ", md, flags=re.I)           # "section 3.3": a reference
    return md


@dataclass(frozen=True)
class Number:
    text: str          # as written
    value: float       # in plain units (82.5% -> 82.5, 1.5 M -> 1.5e6)
    decimals: int      # decimals shown
    kind: str          # "plain", "percent", "times", "scaled"
    scale: float = 1.0


def _parse(m: re.Match) -> Number | None:
    if m.group("compound"):
        return None
    raw = m.group("num").replace(",", "")
    value = float(raw) * (-1 if m.group("sign") else 1)
    decimals = len(raw.split(".")[1]) if "." in raw else 0
    if m.group("pct"):
        return Number(m.group(0), value, decimals, "percent")
    if m.group("times"):
        return Number(m.group(0), value, decimals, "times")
    if m.group("scale"):
        scale = SCALE[m.group("scale").lower()] if m.group("scale").lower() in SCALE else 1.0
        return Number(m.group(0), value * scale, decimals, "scaled", scale)
    return Number(m.group(0), value, decimals, "plain")


def prose_numbers(markdown: str) -> list[Number]:
    """The numbers of a markdown cell that could be figures, with the rounding they show."""
    md = _strip_markdown(markdown)
    found = []
    for m in NUMBER.finditer(md):
        n = _parse(m)
        if n is None:
            continue
        before = md[max(0, m.start() - 16): m.start()].lower().split()
        if before and before[-1].strip("(*_,;:") in REFERENCE_WORDS and n.kind == "plain" and n.decimals == 0:
            continue
        if re.fullmatch(r"0\d", m.group("num")):     # "05": a notebook number
            continue
        found.append(n)
    return found


def output_numbers(texts) -> list[float]:
    """Every number in the given output texts (thousands separators removed; exponents read)."""
    values = []
    for text in texts:
        for m in re.finditer(r"[-−]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-−]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text):
            try:
                values.append(float(m.group(0).replace(",", "").replace("−", "-")))
            except ValueError:
                pass
    return values


def _rounds_to(candidate: float, shown: float, decimals: int) -> bool:
    """Does ``candidate`` round to ``shown`` at ``decimals`` decimals (half a unit of the last digit either way)?"""
    half = 0.5 * 10 ** (-decimals)
    return abs(candidate - shown) <= half + 1e-9 * max(1.0, abs(shown))


def matches(n: Number, values) -> bool:
    """Is the prose number ``n`` one of ``values`` at the rounding it shows?"""
    for v in values:
        if n.kind == "percent":
            if _rounds_to(v, n.value, n.decimals) or _rounds_to(100 * v, n.value, n.decimals):
                return True
        elif n.kind == "scaled":
            if _rounds_to(v / n.scale, n.value / n.scale, n.decimals) or _rounds_to(v, n.value / n.scale, n.decimals):
                return True
        elif _rounds_to(v, n.value, n.decimals) or _rounds_to(abs(v), abs(n.value), n.decimals):
            return True
        elif n.decimals == 0 and abs(n.value) >= 1000 and _significant_match(v, n.value):
            return True
    return False


def _significant_match(v: float, shown: float) -> bool:
    """``72,290`` for ``72289.74``; ``69,302,485`` for ``69,302,484.7``: the shown integer is the rounded value."""
    return round(v) == shown or (abs(v) >= 1000 and f"{v:,.0f}".replace(",", "") == f"{shown:.0f}")


def _allowed(n: Number, extra: set[float]) -> bool:
    if n.kind == "plain" and n.decimals == 0 and n.value in YEARS:
        return True
    return any(math.isclose(n.value, a, rel_tol=1e-9, abs_tol=1e-12) for a in ALLOWED | extra)


def _code_literals(cells) -> list[float]:
    """Numbers written in code cells (settings such as ``steps=150``), outside comments and strings' f-fields."""
    texts = []
    for c in cells:
        if c.get("cell_type") == "code":
            src = "\n".join(line.split("#", 1)[0] for line in _text(c.get("source")).splitlines())
            texts.append(re.sub(r"\d+_\d+", lambda m: m.group(0).replace("_", ""), src))
    return output_numbers(texts)


def prose_problems(nb, *, allowed: set[float] | None = None) -> list[Problem]:
    """Numbers in markdown cells that no output of the notebook shows, no code cell sets, and no allow-list holds."""
    name, nb = _load(nb)
    cells = nb.get("cells", [])
    outputs = output_numbers(t for c in cells for o in c.get("outputs", []) for t in _output_texts(o))
    settings = _code_literals(cells)
    extra = set(ALLOWED_BY_NOTEBOOK.get(name, set())) | set(allowed or ())
    problems = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        for n in prose_numbers(_text(cell.get("source"))):
            if _allowed(n, extra) or matches(n, outputs) or matches(n, settings):
                continue
            problems.append(Problem(name, i, f"prose figure {n.text.strip()!r} appears in no output of this notebook"))
    return problems


def output_problems(nb) -> list[Problem]:
    """Tracebacks, machine paths, progress-bar leftovers and memory-address reprs in the stored outputs."""
    name, nb = _load(nb)
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(Problem(name, i, f"stored error output ({output.get('ename')})"))
            for text in _output_texts(output):
                checks = [("Traceback (most recent call last)" in text, "traceback"),
                          (MACHINE_PATH.search(text), "machine path"),
                          (PROGRESS.search(text), "progress bar static text"),
                          (ADDRESS.search(text), "object repr with a memory address")]
                for hit, what in checks:
                    if hit:
                        where = hit.group(0) if isinstance(hit, re.Match) else "Traceback"
                        problems.append(Problem(name, i, f"{what}: {where!r}"))
    stale = stale_widget_models(nb)
    if stale:
        problems.append(Problem(name, -1, f"{len(stale)} stored widget model(s) that no output shows (an earlier run's "
                                          f"state): run tools/check_notebooks.py --prune-widgets"))
    return problems


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MODEL_REF = re.compile(r"IPY_MODEL_([0-9a-f]+)")


def stale_widget_models(nb) -> list[str]:
    """Ids of widget models stored in the notebook's metadata that no output shows, directly or through another
    model (``IPY_MODEL_<id>`` references): state left by an earlier run, e.g. a progress bar that this run no
    longer draws. The HTML export would still carry it."""
    _, nb = _load(nb)
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    todo = [o["data"][WIDGET_VIEW]["model_id"] for c in nb.get("cells", []) for o in c.get("outputs", [])
            if WIDGET_VIEW in o.get("data", {})]
    seen = set()
    while todo:
        model = todo.pop()
        if model in seen or model not in state:
            continue
        seen.add(model)
        todo += MODEL_REF.findall(json.dumps(state[model]))
    return sorted(set(state) - seen)


def prune_widget_state(nb: dict) -> int:
    """Drop the stale widget models (:func:`stale_widget_models`) from ``nb`` in place; returns how many."""
    stale = stale_widget_models(nb)
    widgets = nb.get("metadata", {}).get("widgets", {})
    state = widgets.get(WIDGET_STATE, {}).get("state", {})
    for model in stale:
        del state[model]
    if widgets and not state:
        del nb["metadata"]["widgets"]
    return len(stale)


def check(paths, *, prose: bool = True, outputs: bool = True) -> list[Problem]:
    """Both checks (or the chosen one) over the given notebook files."""
    problems = []
    for path in paths:
        if prose:
            problems += prose_problems(path)
        if outputs:
            problems += output_problems(path)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--prose", action="store_true", help="only the prose-figures check")
    parser.add_argument("--outputs", action="store_true", help="only the stored-outputs check")
    parser.add_argument("--prune-widgets", action="store_true",
                        help="first drop stored widget state that no output shows, rewriting the files")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(Path(__file__).resolve().parent.parent.joinpath("notebooks").glob("*.ipynb"))
    if args.prune_widgets:
        for path in paths:
            nb = json.loads(path.read_text(encoding="utf-8"))
            if prune_widget_state(nb):
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    both = not (args.prose or args.outputs)
    problems = check(paths, prose=both or args.prose, outputs=both or args.outputs)
    for p in problems:
        print(p)
    print(f"{len(paths)} notebook(s), {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
