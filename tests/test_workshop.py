"""Workshop tooling: checked exercises, student copies in sync with the notebooks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lmkit import exercises
from lmkit.exercises import ex00

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import student  # noqa: E402


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    """These tests look at wrong answers, which ``make test``'s strict mode would turn into errors."""
    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv("LMKIT_STRICT_EXERCISES", "1")
    with pytest.raises(AssertionError, match=r"not yet \(00.3\)"):
        exercises.check("00.3", 0.2)
    assert exercises.check("00.3", 1.5)


def test_check_marks_right_and_wrong_without_revealing(tiny_lm):
    cfg = tiny_lm.model.config
    right = (ex00._n_params(cfg, 2 * cfg.num_hidden_layers, 1), ex00._n_params(cfg, cfg.num_hidden_layers, 2))
    assert exercises.check("00.2", right, lm=tiny_lm)
    wrong = exercises.check("00.2", (right[0] + 1, right[1]), lm=tiny_lm)
    assert not wrong and "Hint" in wrong.message and str(right[0]) not in repr(wrong)
    assert "Not yet" in wrong._repr_html_()


def test_unanswered_and_malformed_answers_are_feedback_not_tracebacks(tiny_lm):
    assert "answer = ..." in exercises.check("00.2", ..., lm=tiny_lm).message
    bad = exercises.check("00.2", "twelve", lm=tiny_lm)
    assert not bad and "could not check" in bad.message


def test_unknown_exercise_names_the_key():
    with pytest.raises(ValueError, match=r"unknown exercise '99.9'"):
        exercises.check("99.9", 1)


def test_student_copy_blanks_solutions_and_clears_outputs():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", text="hi")], execution_count=3),
        nbformat.v4.new_code_cell("answer = secret()\nlmkit.exercises.check('00.1', answer, lm=lm)",
                                  metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("print(solution_only())", metadata={"tags": ["solution"]}),
    ])
    copy = student.student_copy(nb)
    assert copy.cells[0].outputs == [] and copy.cells[0].execution_count is None and copy.cells[0].source == "x = 1"
    assert "secret" not in copy.cells[1].source and copy.cells[1].source.endswith(
        "answer = ...\nlmkit.exercises.check('00.1', answer, lm=lm)")
    assert copy.cells[2].source == student.STUB
    assert nb.cells[1].source.startswith("answer = secret()")  # the original is untouched


def test_every_notebook_ends_with_exercises_and_solutions():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
        assert 2 <= len(solutions) <= 6, f"{path.name}: {len(solutions)} solution cells"


def test_every_notebook_has_at_least_two_checked_exercises():
    """A checked exercise is a solution cell whose last line checks it with a registered key of its own notebook."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb, number = nbformat.read(path, as_version=4), path.name[:2]
        checked = []
        for cell in nb.cells:
            if "solution" not in cell.metadata.get("tags", []):
                continue
            last = cell.source.rstrip().splitlines()[-1]
            if last.startswith("lmkit.exercises.check("):
                key = last.split("(", 1)[1].split(",", 1)[0].strip("\"'")
                assert key.startswith(number + "."), f"{path.name}: exercise {key} belongs to another notebook"
                assert key in exercises.keys(), f"{path.name}: exercise {key} has no checker in lmkit.exercises"
                checked.append(key)
        assert len(checked) >= 2, f"{path.name}: only {checked} are checked; end solution cells with a check"
        assert len(set(checked)) == len(checked), f"{path.name}: a key is checked twice: {checked}"


def test_student_copies_are_in_sync():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "student.py"), "--check"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
