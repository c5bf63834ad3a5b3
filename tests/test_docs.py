"""tools/docs.py: the API reference builds, and a docstring naming something that does not exist fails it."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import docs  # noqa: E402


def test_every_cross_reference_in_lmkit_resolves():
    names = docs.modules()
    assert "lmkit.generate" in names and "lmkit.finetune.loop" in names and not any(
        n.endswith("__main__") for n in names)
    broken = docs.broken_references(names)
    assert not broken, "\n".join(map(str, broken))


def test_a_planted_broken_reference_is_reported(tmp_path, monkeypatch):
    pkg = tmp_path / "plantedpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""Package: see :func:`helper` and :mod:`plantedpkg.mod`."""\n'
                                     'def helper():\n    """Fine."""\n')
    (pkg / "mod.py").write_text(
        '"""Module."""\n'
        'import math\n\n'
        'class Thing:\n'
        '    """Uses :meth:`run`, :func:`math.sqrt`, :class:`torch.nn.Module` and :func:`helper`."""\n'
        '    def run(self):\n'
        '        """Renamed long ago: :func:`plot_history`\n        and :class:`Thing.missing`."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    broken = docs.broken_references(["plantedpkg", "plantedpkg.mod"])
    assert [(b.file, b.line, b.role, b.name) for b in broken] == [
        ("plantedpkg/mod.py", 7, "func", "plot_history"), ("plantedpkg/mod.py", 8, "class", "Thing.missing")]
    assert str(broken[0]) == "plantedpkg/mod.py:7: :func:`plot_history` does not resolve"


def test_the_html_reference_builds(tmp_path):
    docs.build_html(["lmkit.layers", "lmkit.metrics"], tmp_path)
    page = (tmp_path / "lmkit" / "layers.html").read_text()
    assert "apply_rotary" in page or "apply_rope" in page


def test_the_readme_path_is_the_file_order():
    """The README's reading path lists every notebook once, numbered 00, 01, 02, ... in file order, each label's
    number equal to its file's."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = sorted(p.name for p in (root / "notebooks").glob("*.ipynb"))
    rows = re.findall(r"^\| \[(\d\d) [^\]]+\]\(notebooks/([^)]+\.ipynb)\)", (root / "README.md").read_text("utf-8"),
                      flags=re.M)
    assert [f for _, f in rows] == files, "the README's path and the notebooks' file order differ"
    assert [n for n, _ in rows] == [f[:2] for f in files] == [f"{i:02d}" for i in range(len(files))]
    student = sorted(p.name for p in (root / "student").glob("*.ipynb"))
    assert student == files
