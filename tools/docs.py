"""The API reference of ``lmkit`` (pdoc), and a check that every cross-reference in a docstring resolves.

``python tools/docs.py --out html/api`` writes the HTML reference; ``--check`` only checks. Either way the exit status
is 1 when a docstring names something that does not exist, e.g. ``:func:`plot_history``` after a rename, with one
line per broken reference (file, line, role and name), so that a stale reference fails ``make test``
(tests/test_docs.py) the way Sphinx's nitpicky mode would.

A reference resolves when the name is found, in this order: in the class whose docstring holds it, in its module, in
the module's package, then as an absolute dotted path (``lmkit.metrics.perplexity``, ``torch.nn.Module``).
"""
from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLE = re.compile(r":(func|class|mod|data|meth|attr|exc|obj):`~?\.?([^`<>]+?)`")
SKIP = ("__main__",)  # running a package's __main__ would start its command line


@dataclass(frozen=True)
class Broken:
    file: str
    line: int
    role: str
    name: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: :{self.role}:`{self.name}` does not resolve"


def modules(package: str = "lmkit") -> list[str]:
    """Every importable module of ``package``, sorted (``__main__`` modules left out)."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if info.name.rsplit(".", 1)[-1] not in SKIP:
            names.append(info.name)
    return sorted(names)


def _lookup(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _absolute(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:i]))
        except Exception:  # noqa: BLE001 - not a module path at this length
            continue
        try:
            _lookup(module, ".".join(parts[i:])) if parts[i:] else module
            return True
        except AttributeError:
            return False
    return False


def resolves(name: str, module, scope=None) -> bool:
    """True if ``name`` names something from ``scope`` (a class), ``module``, its package, or absolutely."""
    name = name.strip().removesuffix("()")
    spaces = [s for s in (scope, module) if s is not None]
    package = module.__name__.rpartition(".")[0]
    if package:
        spaces.append(importlib.import_module(package))
    for space in spaces:
        try:
            _lookup(space, name)
            return True
        except AttributeError:
            pass
    return _absolute(name)


def _docstrings(tree: ast.Module):
    """(docstring node, enclosing class name or None) for the module, its classes, functions and methods."""
    yield tree, None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            yield node, node.name
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield item, node.name
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node, None


def broken_references(names: list[str]) -> list[Broken]:
    """Every docstring reference in the modules ``names`` that does not resolve."""
    found, seen = [], set()
    for name in names:
        module = importlib.import_module(name)
        path = Path(module.__file__)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, class_name in _docstrings(tree):
            body = getattr(node, "body", [])
            if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                continue
            doc, start = body[0].value.value, body[0].lineno
            scope = getattr(module, class_name, None) if class_name else None
            for match in ROLE.finditer(doc):
                line = start + doc[:match.start()].count("\n")
                key = (str(path), line, match.group(2))
                if key in seen:
                    continue
                seen.add(key)
                if not resolves(match.group(2), module, scope):
                    found.append(Broken(str(path.relative_to(ROOT)), line, match.group(1), match.group(2)))
    return found


def build_html(names: list[str], out: Path) -> None:
    """The pdoc HTML reference of ``names`` under ``out`` (reStructuredText docstrings)."""
    import pdoc

    pdoc.render.configure(docformat="restructuredtext", show_source=False)
    pdoc.pdoc(*names, output_directory=out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "html" / "api"), help="folder for the HTML reference")
    ap.add_argument("--check", action="store_true", help="check the cross-references only; write no HTML")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    names = modules()
    broken = broken_references(names)
    for b in broken:
        print(b, file=sys.stderr)
    if not args.check:
        build_html(names, Path(args.out))
        print(f"docs: {len(names)} modules written to {args.out}")
    print(f"docs: {len(names)} modules, {len(broken)} broken cross-reference(s)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
