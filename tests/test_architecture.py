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
             "lmkit.evaluation.multiple_choice", "lmkit.preference.dpo_loss", "lmkit.rl.pass_at_k",
             "lmkit.rl.majority_vote", "lmkit.rl.grpo_loss", "lmkit.rl.group_advantages"]


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


# ----------------------------------------------------------------------------------------------- written once
# Issue 24's "Done when": grep finds each of these written once. Read from the source with ast (a docstring or a
# comment that names them does not count), in every module of the package; each finder returns "path:line (function)"
# for every place that writes the thing, so a copy pasted back shows up as a second entry.
WRITTEN_ONCE = {  # module-level function -> the one module that defines it
    "pad_id": "lmkit/logprobs.py", "pad": "lmkit/logprobs.py", "labelled_positions": "lmkit/logprobs.py",
    "encode_completion": "lmkit/logprobs.py", "completion_logprobs": "lmkit/logprobs.py",
    "fit": "lmkit/training/loop.py", "integer": "lmkit/checks.py", "real": "lmkit/checks.py",
    "layer_index": "lmkit/checks.py",
}
NUMBER_TYPES = {"int", "float", "Integral", "Real", "Number", "Rational", "integer", "floating", "number"}
"""Type names that a hand-written "a number, but not a bool" check tests against (``int``, ``numbers.Integral``,
``np.integer``...)."""


def _nodes(tree: ast.AST):
    """``(enclosing function name or "<module>", node)`` for every node of a module."""
    def walk(node, where):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else where
            yield inner, child
            yield from walk(child, inner)
    yield from walk(tree, "<module>")


def _sources() -> list[tuple[str, ast.Module]]:
    return [(path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path)))
            for path in sorted(PACKAGE.rglob("*.py"))]


def _name(node) -> str:
    """The last name of ``a.b.c`` / ``c``, else ''."""
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _mentions(node, word: str) -> bool:
    """True if a name, attribute or string constant inside ``node`` contains ``word`` (``batch["labels"]``)."""
    return any(word in (_name(n) or (n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else ""))
               for n in ast.walk(node))


def _type_names(node) -> set[str]:
    """The type names of isinstance's second argument (a name, ``numbers.Integral``, or a tuple of them)."""
    return {_name(e) for e in (node.elts if isinstance(node, ast.Tuple) else [node])}


def definitions(name: str) -> list[str]:
    """Where a module-level function ``name`` is defined."""
    return [f"{rel}:{node.lineno}" for rel, tree in _sources() for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name]


def pad_id_reads() -> list[str]:
    """Reads of a tokenizer's ``pad_token_id`` (attribute or ``getattr``): the pad-id fallback is :func:`pad_id`'s.
    A model's ``generation_config.pad_token_id`` is not a tokenizer's (``model.generate`` falls back to EOS itself)."""
    found = []
    for rel, tree in _sources():
        for where, node in _nodes(tree):
            owner = None
            if isinstance(node, ast.Attribute) and node.attr == "pad_token_id" and isinstance(node.ctx, ast.Load):
                owner = node.value
            elif (isinstance(node, ast.Call) and _name(node.func) == "getattr" and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and node.args[1].value == "pad_token_id"):
                owner = node.args[0]
            if owner is not None and _name(owner) != "generation_config":
                found.append(f"{rel}:{node.lineno} ({where})")
    return found


def label_shifts() -> list[str]:
    """``labels[:, 1:]`` / ``labels[..., :-1]``-style slices of anything named like labels: the causal shift that
    :func:`lmkit.logprobs.labelled_positions` writes once."""
    def shifts(index) -> bool:
        parts = index.elts if isinstance(index, ast.Tuple) else [index]
        return any(isinstance(p, ast.Slice) and (
            isinstance(p.lower, ast.Constant) and p.lower.value == 1 and p.upper is None
            or isinstance(p.upper, ast.UnaryOp) and isinstance(p.upper.op, ast.USub)
            and getattr(p.upper.operand, "value", None) == 1) for p in parts)

    return [f"{rel}:{node.lineno} ({where})" for rel, tree in _sources() for where, node in _nodes(tree)
            if isinstance(node, ast.Subscript) and shifts(node.slice) and _mentions(node.value, "label")]


def calls(attr: str) -> list[str]:
    """Calls of ``attr(...)`` or ``x.attr(...)``."""
    return [f"{rel}:{node.lineno} ({where})" for rel, tree in _sources() for where, node in _nodes(tree)
            if isinstance(node, ast.Call) and _name(node.func) == attr]


def number_checks() -> list[str]:
    """Hand-written "a number but not a bool" checks (``isinstance(x, bool) or not isinstance(x, int)``), and any
    use of ``numbers.Integral`` / ``numbers.Real``: :mod:`lmkit.checks` holds them (``checks.integer``, ``real``)."""
    found = []
    for rel, tree in _sources():
        for where, node in _nodes(tree):
            if isinstance(node, ast.BoolOp):
                tested = [_type_names(n.args[1]) for n in ast.walk(node)
                          if isinstance(n, ast.Call) and _name(n.func) == "isinstance" and len(n.args) == 2]
                if any("bool" in t for t in tested) and any(t & NUMBER_TYPES for t in tested):
                    found.append(f"{rel}:{node.lineno} ({where})")
            elif (isinstance(node, ast.Attribute) and _name(node.value) == "numbers"
                  and node.attr in {"Integral", "Real", "Number", "Rational"}):
                found.append(f"{rel}:{node.lineno} ({where})")
    return found


def test_the_written_once_finders_see_a_pasted_copy(tmp_path, monkeypatch):
    root = tmp_path / "lmkit"
    root.mkdir()
    (root / "copy.py").write_text(
        "import numbers\nimport torch\n\n"
        "def pad_id(tok):\n"
        "    return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id\n\n"
        "def keep(batch, IGNORE=-100):\n"
        "    targets = batch['labels'][:, 1:]\n"
        "    return (targets != IGNORE).any(dim=0)\n\n"
        "def train(model, loss):\n"
        "    opt = torch.optim.AdamW(model.parameters())\n"
        "    loss.backward()\n\n"
        "def count(n):\n"
        "    if isinstance(n, bool) or not isinstance(n, int) or n < 1:\n"
        "        raise ValueError(n)\n"
        "    return isinstance(n, numbers.Integral)\n"
        "def pad_of(tok, cfg):\n"
        "    return getattr(tok, 'pad_token_id', None) or 0, cfg.generation_config.pad_token_id\n")
    (root / "fine.py").write_text(
        "def f(tok, x, labels, flag):\n"
        "    tok.pad_token_id = 3\n"  # a write, not a read
        "    call(pad_token_id=None)\n"  # a keyword, not a read
        "    y = x[:, 1:]\n"  # not labels
        "    z = labels[:, 0]\n"  # not a shift
        "    return isinstance(flag, bool) and isinstance(x, str)\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", root)
    assert definitions("pad_id") == ["lmkit/copy.py:4"]
    assert pad_id_reads() == ["lmkit/copy.py:5 (pad_id)", "lmkit/copy.py:5 (pad_id)", "lmkit/copy.py:20 (pad_of)"]
    assert label_shifts() == ["lmkit/copy.py:8 (keep)"]
    assert calls("pad_sequence") == []
    assert calls("AdamW") == ["lmkit/copy.py:12 (train)"] and calls("backward") == ["lmkit/copy.py:13 (train)"]
    assert number_checks() == ["lmkit/copy.py:16 (count)", "lmkit/copy.py:18 (count)"]


def test_each_piece_is_written_once():
    """Validation, encoding, log-probabilities, padding and the training loop each live in one module (issue 24)."""
    defined = {name: definitions(name) for name in WRITTEN_ONCE}
    wrong = {name: where for name, where in defined.items()
             if len(where) != 1 or not where[0].startswith(WRITTEN_ONCE[name] + ":")}
    assert not wrong, f"each must be defined once, in {WRITTEN_ONCE}: {wrong}"
    assert all(hit.startswith("lmkit/logprobs.py:") and hit.endswith("(pad_id)") for hit in pad_id_reads()), \
        f"read the pad id with lmkit.logprobs.pad_id(tokenizer), not tokenizer.pad_token_id: {pad_id_reads()}"
    assert label_shifts() == [h for h in label_shifts() if h.startswith("lmkit/logprobs.py:")
                              and h.endswith("(labelled_positions)")] and len(label_shifts()) == 1, \
        f"shift labels with lmkit.logprobs.labelled_positions: {label_shifts()}"
    padding = calls("pad_sequence")
    assert len(padding) == 1 and padding[0].startswith("lmkit/logprobs.py:"), \
        f"pad batches with lmkit.logprobs.pad: {padding}"
    adamw = calls("AdamW")
    assert len(adamw) == 1 and adamw[0].startswith("lmkit/training/loop.py:"), \
        f"AdamW is built once, by lmkit.training.fit: {adamw}"
    backward = calls("backward")
    assert backward and all(hit.startswith("lmkit/training/") for hit in backward), \
        f"only lmkit.training.fit calls backward; bring fit a loss hook instead: {backward}"
    assert all(hit.startswith("lmkit/checks.py:") for hit in number_checks()), \
        f"check numbers with lmkit.checks.integer / real: {[h for h in number_checks() if 'checks.py' not in h]}"
    assert number_checks(), "the number checks were not found in lmkit/checks.py: has the finder gone blind?"


# ------------------------------------------------------------------------ the README's package tables are the layout
README = PACKAGE.parent / "README.md"
SHIMS = {"lmkit.constrained", "lmkit.speculative", "lmkit.fastdecode", "lmkit.kvcache"}  # old import paths only


def readme_tables() -> dict[str, list[str]]:
    """``{"infrastructure": [...], "lesson": [...]}``: the modules named in the first cell of each README table row."""
    import re

    tables: dict[str, list[str]] = {}
    current = None
    for line in README.read_text(encoding="utf-8").splitlines():
        head = re.match(r"\|\s*(infrastructure|lesson)\b", line)
        if head:
            current = tables.setdefault(head.group(1), [])
        elif current is not None and line.startswith("|") and not line.startswith("|---"):
            current.extend(re.findall(r"`(lmkit\.[a-z_]+)`", line.split("|")[1]))
        elif not line.startswith("|"):
            current = None
    return tables


def test_readme_tables_name_every_top_level_module_once():
    tables = readme_tables()
    named = tables.get("infrastructure", []) + tables.get("lesson", [])
    top = {name for name in lmkit_modules() if name.count(".") == 1 and not name.endswith("__main__")}
    assert sorted(named) == sorted(set(named)), "a module is named twice in the README tables"
    assert set(named) == top - SHIMS, (f"missing from the README: {sorted(top - SHIMS - set(named))}; "
                                       f"not in lmkit: {sorted(set(named) - top)}")
    for shim in SHIMS:  # an old import path holds no code of its own: it only re-exports
        tree = ast.parse((PACKAGE / (shim.split(".")[1] + ".py")).read_text(encoding="utf-8"))
        assert all(isinstance(n, (ast.ImportFrom, ast.Assign, ast.Expr)) for n in tree.body), shim


def test_infrastructure_imports_no_lesson():
    tables = readme_tables()
    infra = set(tables["infrastructure"])
    graph = import_graph()
    for module, edges in graph.items():
        top = ".".join(module.split(".")[:2])
        if top not in infra:
            continue
        lessons = {".".join(t.split(".")[:2]) for t in edges} - infra - {"lmkit"}
        assert not lessons, f"{module} (infrastructure) imports lesson modules {sorted(lessons)}"
