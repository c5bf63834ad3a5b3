"""tools/check_notebooks.py: prose figures must appear in outputs; stored outputs must be clean.

Each check has a unit test that plants a bad example and must see it fail, and a test over every committed notebook
(`python tools/check_notebooks.py` with no argument runs both checks on every notebook).
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import check_notebooks as cn  # noqa: E402

CHECKED_NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
"""Every committed notebook: each must pass both checks."""


def notebook(*cells, name="planted"):
    return {"metadata": {"name": name}, "nbformat": 4, "nbformat_minor": 5, "cells": list(cells)}


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(source="", *outputs):
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": list(outputs), "execution_count": 1}


def stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def result(text):
    return {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}, "execution_count": 1}


# ---------------------------------------------------------------------------------------------------- prose
def test_prose_figure_missing_from_outputs_is_reported():
    nb = notebook(code("x = measure()", stream("perplexity 34.17\n")),
                  md("The perplexity is 34.2, and the int8 model reaches 77.65."))
    problems = cn.prose_problems(nb)
    assert [p.message for p in problems] == ["prose figure '77.65' appears in no output of this notebook"]
    assert problems[0].cell == 1


@pytest.mark.parametrize("prose, printed", [
    ("perplexity 34.2", "34.17"),                     # rounding shown in the prose
    ("1,500 tokens", "1500"),                         # thousands separator
    ("1,512,005 tokens", "1,512,005"),
    ("82.5% of them", "0.825"),                       # a share printed as a fraction
    ("82.5% of them", "82.5"),
    ("57% of the student", "0.5704"),
    ("4.1x lower", "4.13"),                           # a ratio
    ("about 1.5 M tokens", "1,512,005"),              # a scaled figure
    ("69 million", "69,302,484.7"),
    ("72,290", "72289.74"),                           # an integer shown for a float
])
def test_prose_figure_matches_outputs_at_the_rounding_shown(prose, printed):
    nb = notebook(code("", stream(f"value: {printed}\n")), md(f"We measured {prose}."))
    assert cn.prose_problems(nb) == []


def test_rounding_is_not_a_free_pass():
    nb = notebook(code("", stream("34.26\n")), md("The perplexity is 34.2."))   # 34.26 shows as 34.3
    assert len(cn.prose_problems(nb)) == 1
    nb = notebook(code("", stream("0.57\n")), md("a third of the student (33%)"))
    assert len(cn.prose_problems(nb)) == 1


def test_constants_references_names_and_settings_are_allowed():
    nb = notebook(code("steps = 150\nwindow = 2_048", stream("done\n")),
                  md("## 2. Loading\n\nThe model has 30 layers, hidden size 576 and 49,152 ids (notebook 08 and 14; "
                     "see section 3, and the statistics of section 3.3 and sections 2.1). We train 150 steps with a window of 2,048 and 4-bit groups (`Q4_1`, "
                     "`max_new_tokens=24`), as Bengio et al. 2003 did, on SmolLM2-135M. "
                     "[link](https://example.com/7/91)\n\n1. A list item.\n\n**12.4 (open)** Build it with "
                     "xgrammar 0.2.9 or torch 2.13.0."))
    assert cn.prose_problems(nb) == []
    assert len(cn.prose_problems(notebook(md("It ran 12.4 times faster than 0.2 of it.")))) == 2  # not a label


def test_per_notebook_allow_list_and_extra_allowed():
    nb = notebook(md("pretrained on about 2 trillion tokens"), name="01_language_models")
    assert cn.prose_problems(nb) == []
    nb = notebook(md("pretrained on about 2 trillion tokens"), name="other")
    assert len(cn.prose_problems(nb)) == 1
    assert cn.prose_problems(nb, allowed={2e12}) == []


def test_generated_markdown_counts_as_output_not_as_prose():
    generated = {"output_type": "execute_result", "metadata": {}, "execution_count": 1,
                 "data": {"text/markdown": "The perplexity is 34.2.", "text/plain": "<IPython.core.display.Markdown object>"}}
    nb = notebook(code("Markdown(...)", generated), md("As the cell above says: 34.2."))
    assert cn.prose_problems(nb) == []


# ---------------------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("output, what", [
    ({"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["Traceback ..."]},
     "stored error output"),
    (stream("Traceback (most recent call last):\n  File x\n", "stderr"), "traceback"),
    (stream("/root/.venv/lib/python3.11/site-packages/x.py:3: FutureWarning: old\n", "stderr"), "machine path"),
    (stream("/home/me/lmkit/x.py:3: UserWarning: w\n", "stderr"), "machine path"),
    (result("scoring:   0%|          | 0/12 [00:00<?, ?it/s]"), "progress bar static text"),
    (result("<pandas.io.formats.style.Styler at 0x7f89fe5690d0>"), "object repr with a memory address"),
])
def test_bad_output_is_reported(output, what):
    problems = cn.output_problems(notebook(code("x", output)))
    assert problems and any(p.message.startswith(what) for p in problems), problems


def test_clean_outputs_pass():
    nb = notebook(code("x", stream("perplexity 34.17 (100% of 984 tokens)\n"), result("   a  b\n0  1  2")))
    assert cn.output_problems(nb) == []


# ---------------------------------------------------------------------------------------------------- committed
def test_every_notebook_is_checked():
    assert len(CHECKED_NOTEBOOKS) >= 16


@pytest.mark.parametrize("name", CHECKED_NOTEBOOKS)
def test_committed_notebook_passes_both_checks(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    problems = cn.check([path])
    assert problems == [], "\n".join(map(str, problems))


def test_cli_exit_status(tmp_path):
    import json

    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps(notebook(code("x", result("<object at 0xdeadbeef>")), md("measured 12.5"))))
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "check_notebooks.py"), str(bad)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "bad:cell 0: object repr with a memory address" in out.stdout
    assert "bad:cell 1: prose figure '12.5'" in out.stdout
    ok = tmp_path / "ok.ipynb"
    ok.write_text(json.dumps(notebook(code("x", stream("12.5\n")), md("measured 12.5"))))
    assert subprocess.run([sys.executable, str(ROOT / "tools" / "check_notebooks.py"), str(ok)]).returncode == 0


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_every_cell_runs_offline_under_run_all(name):
    """No cell is skipped by tag: a cell that needs the hub or a GPU checks for it and says why it does nothing, because
    in JupyterLab *Run All* stops at the first cell that raises, and the tags that skip a cell under nbval do not."""
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if {"nbval-skip", "skip-execution"} & set(c.metadata.get("tags", []))]
    assert tagged == [], f"{name}: cells {tagged} are skipped by tag; guard them with a check instead"


def test_stale_widget_state_is_reported_and_pruned(tmp_path):
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "aa", "version_major": 2, "version_minor": 0}}
    nb = notebook(code("w", {"output_type": "display_data", "data": view, "metadata": {}}))
    nb["metadata"]["widgets"] = {cn.WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
        "aa": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_bb"], "layout": "IPY_MODEL_cc"}},
        "bb": {"model_name": "HTMLModel", "state": {"value": "shown"}},
        "cc": {"model_name": "LayoutModel", "state": {}},
        "dd": {"model_name": "HTMLModel", "state": {"value": "lora fine-tuning: 100%|##########| 30/30"}},
        "ee": {"model_name": "LayoutModel", "state": {}}}}}
    assert cn.stale_widget_models(nb) == ["dd", "ee"]  # shown: aa and what it references, bb and cc
    assert any("widget model" in p.message for p in cn.output_problems(nb))
    assert cn.prune_widget_state(nb) == 2
    assert sorted(nb["metadata"]["widgets"][cn.WIDGET_STATE]["state"]) == ["aa", "bb", "cc"]
    assert cn.output_problems(nb) == []
    nb["cells"] = []  # nothing shown: the whole widgets entry goes
    assert cn.prune_widget_state(nb) == 3 and "widgets" not in nb["metadata"]
