"""The package's shape: lmkit's imports point one way (no cycle, lazy or not), no module-level ``__getattr__``, and
the names that notebooks and other projects rely on (``../shared/WORKBOOK.md`` §3) still import.

The import graph is read from the source with ``ast``, not by importing: every ``import`` and ``from ... import``
counts, at the top of a file or inside a function (a lazy import is still an edge), relative ones included.
``from lmkit import x`` is an edge to ``lmkit.x`` when ``x`` is a module, else to ``lmkit``; importing a package
is importing its ``__init__``. Importing ``lmkit.a.b`` from outside ``lmkit.a`` also runs ``lmkit/a/__init__.py``
first, so it is an edge to ``lmkit.a`` too (from inside ``lmkit.a`` that package is already being initialised).
``importlib.import_module`` counts too: with a constant name, or, in a package, ``f"{__name__}.{...}"`` (a loop
that loads its plug-ins) as an edge to each of its submodules.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lmkit"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def lmkit_modules() -> dict[str, Path]:
    """Every module of the source tree by dotted name (a package is its ``__init__.py``)."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """``(lmkit module, line)`` for every lmkit module that importing or running ``name`` may import."""
    is_package = path.name == "__init__.py"
    own = set(ancestors(name)) | ({name} if is_package else set())  # packages already initialising when it runs
    found: list[tuple[str, int]] = []

    def add(target: str, line: int) -> None:
        while target and target not in known:  # `import lmkit.x.y` where y is a name, not a module
            target = target.rpartition(".")[0]
        if not target:
            return
        found.append((target, line))  # the named module itself, even if it is one of our own packages
        found.extend((a, line) for a in ancestors(target) if a not in own)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "lmkit" or alias.name.startswith("lmkit."):
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if not (source == "lmkit" or source.startswith("lmkit.")):
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                add(sub if sub in known else source, node.lineno)
        elif (isinstance(node, ast.Call) and "import_module" in (getattr(node.func, "attr", None),
                                                                 getattr(node.func, "id", None))
              and node.args):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("lmkit"):
                add(arg.value, node.lineno)
            elif (is_package and isinstance(arg, ast.JoinedStr) and len(arg.values) > 1  # f"{__name__}.{sub}"
                  and getattr(getattr(arg.values[0], "value", None), "id", None) == "__name__"):
                for sub in sorted(m for m in known if m.rpartition(".")[0] == name):  # any of its submodules
                    add(sub, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported lmkit module: first line}}``, self-imports left out."""
    modules = lmkit_modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imported_modules(name, path, set(modules)):
            if target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the graph, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, {}))))
    return None


def all_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle through each tangle of the graph (strongly connected component), so that a report names them all."""
    remaining = dict(graph)
    cycles = []
    while (cycle := find_cycle(remaining)) is not None:
        cycles.append(cycle)
        tangle = {m for m in _reachable(cycle[0], remaining) if cycle[0] in _reachable(m, remaining)}
        remaining = {m: {t: ln for t, ln in e.items() if t not in tangle} for m, e in remaining.items()
                     if m not in tangle}
    return cycles


def _reachable(start: str, graph: dict[str, dict[str, int]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for t in graph.get(todo.pop(), {}):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    modules = lmkit_modules()
    return "\n".join(f"  {a} -> {b}   ({modules[a].relative_to(PACKAGE.parent)}:{graph[a][b]})"
                     for a, b in zip(cycle, cycle[1:]))


# ----------------------------------------------------------------------------------------------- the checker itself
def test_the_graph_reader_resolves_every_import_form(tmp_path, monkeypatch):
    root = tmp_path / "lmkit"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from lmkit import a\n",
        "a.py": "def f():\n    from lmkit.sub import b\n",  # lazy, and through a package: lmkit.sub runs first
        "d.py": "",
        "sub/__init__.py": "",
        "sub/b.py": "from . import c\nfrom .c import g\nfrom ..d import f\nimport lmkit.sub.c\n",
        "sub/c.py": "from lmkit import load\n",  # a name of the root package: an edge to lmkit itself
    }
    for rel, text in files.items():
        (root / rel).write_text(text)
    monkeypatch.setattr(f"{__name__}.PACKAGE", root)
    graph = import_graph()
    assert graph == {"lmkit": {"lmkit.a": 1}, "lmkit.a": {"lmkit.sub.b": 2, "lmkit.sub": 2}, "lmkit.d": {},
                     "lmkit.sub": {}, "lmkit.sub.b": {"lmkit.sub.c": 1, "lmkit.d": 3}, "lmkit.sub.c": {"lmkit": 1}}
    assert find_cycle(graph) == ["lmkit", "lmkit.a", "lmkit.sub.b", "lmkit.sub.c", "lmkit"]
    (root / "sub/c.py").write_text("import lmkit.sub.b as b2\n")
    assert find_cycle(import_graph()) == ["lmkit.sub.b", "lmkit.sub.c", "lmkit.sub.b"]
    (root / "sub/c.py").write_text("from lmkit.sub import helper\n")  # a name of its own package's __init__
    assert find_cycle(import_graph()) is None
    (root / "sub/__init__.py").write_text("from .c import helper\n")
    assert find_cycle(import_graph()) == ["lmkit.sub", "lmkit.sub.c", "lmkit.sub"]
    (root / "sub/__init__.py").write_text("import importlib\nfor m in ('b', 'c'):\n"
                                          "    importlib.import_module(f'{__name__}.{m}')\n")  # a plug-in loop
    assert import_graph()["lmkit.sub"] == {"lmkit.sub.b": 3, "lmkit.sub.c": 3}
    assert find_cycle(import_graph()) == ["lmkit.sub", "lmkit.sub.b", "lmkit.sub.c", "lmkit.sub"]


# ----------------------------------------------------------------------------------------------- lmkit
def test_lmkit_imports_have_no_cycle():
    graph = import_graph()
    assert len(graph) > 50 and "lmkit.profile" in graph and "lmkit.compress" in graph  # the walk found lmkit
    cycles = all_cycles(graph)
    assert not cycles, "import cycles in lmkit (lazy imports count), one per tangle:\n" + "\n\n".join(
        describe(c, graph) for c in cycles)


def test_no_module_level_getattr():
    def top_level(body):
        for node in body:
            yield node
            if isinstance(node, (ast.If, ast.Try)):  # `if TYPE_CHECKING: ... else: def __getattr__`
                yield from top_level(node.body + node.orelse + getattr(node, "finalbody", []) +
                                     [n for h in getattr(node, "handlers", []) for n in h.body])

    found = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
             for path in lmkit_modules().values()
             for node in top_level(ast.parse(path.read_text(encoding="utf-8")).body)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__getattr__"
             or isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__getattr__" for t in node.targets)]
    assert not found, f"module-level __getattr__ (import the name where it lives instead): {found}"


# ----------------------------------------------------------------------------------------------- WORKBOOK.md §3
RELIED_ON = ["lmkit.load", "lmkit.env.QUICK", "lmkit.env.report", "lmkit.metrics.perplexity",
             "lmkit.attention.attentions", "lmkit.attention.recompute", "lmkit.generate.stream",
             "lmkit.generate.generate", "lmkit.widgets.playground", "lmkit.finetune.train", "lmkit.bpe.BPE",
             "lmkit.evaluation.multiple_choice", "lmkit.preference.dpo_loss"]


@pytest.mark.parametrize("dotted", RELIED_ON)
def test_workbook_names_still_import(dotted):
    module, _, attr = dotted.rpartition(".")
    value = getattr(importlib.import_module(module), attr)
    if attr == "QUICK":
        assert isinstance(value, bool)
    else:
        assert callable(value), f"{dotted} is {value!r}, not a function or class"


# ----------------------------------------------------------------------------------------------- process-wide state
def test_run_harness_leaves_the_environment_as_it_found_it(tiny_folder, monkeypatch):
    """``run_harness`` is offline and quiet for its call only (issue 24: no process-wide side effects)."""
    import os

    lm_eval = pytest.importorskip("lm_eval")
    import datasets
    import huggingface_hub.constants as hub_constants

    from lmkit.evaluation import harness

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # absent before: must be absent after
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")  # set before: must have its old value after
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)  # as read at import from an online environment
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    env, flags = dict(os.environ), (hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    seen = {}

    def simple_evaluate(**kwargs):
        seen.update({k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TQDM_DISABLE")},
                    hub=hub_constants.HF_HUB_OFFLINE, datasets=datasets.config.HF_DATASETS_OFFLINE)
        task = kwargs["tasks"][0]["task"]
        return {"results": {task: {"acc,none": 1.0, "acc_norm,none": 0.5}},
                "samples": {task: [{"doc_id": 0, "filtered_resps": [[-1.0, False], [-2.0, False]]}]}}

    monkeypatch.setattr(lm_eval, "simple_evaluate", simple_evaluate)
    out = harness.run_harness(tiny_folder, limit=1)
    assert out["acc"] == 1.0 and out["loglikelihoods"] == [[-1.0, -2.0]]
    assert seen == {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1", "hub": True,
                    "datasets": True}  # offline and quiet during the call
    assert dict(os.environ) == env
    assert (hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE) == flags == (False, False)
