"""The installed package carries its data: a wheel built from this checkout runs notebooks outside the checkout.

The wheel is installed into a fresh venv with ``--no-deps``; the dependencies come from the test environment through a
path entry, so that the only ``lmkit`` the fresh interpreter can import is the wheel's. Two notebooks that read the
project's data sets then run in quick mode from a temporary folder, with the hub switched off.
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("00_running_an_llm.ipynb", "15_applications.ipynb")

pytestmark = pytest.mark.integration


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{cmd[:4]} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory):
    """A fresh venv with the lmkit wheel installed, and the test environment's packages on its path."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"  # build from a copy, so the checkout gets no build/ or egg-info
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", ".ci-cache", "html", "student",
                                                             "*.egg-info", "build", "__pycache__", ".pytest_cache"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"),
          str(src)])
    (wheel,) = (work / "dist").glob("lmkit-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                        ).stdout.strip())
    # Dependencies from the test venv; its editable lmkit stays invisible (a plain path entry runs no .pth hooks).
    deps = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "zz_test_env.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(purelib), str(wheel)])
    return python, work


def test_the_wheel_ships_every_data_file(fresh_python):
    python, work = fresh_python
    out = _run([str(python), "-c", "import lmkit, lmkit.data as d; print(lmkit.__file__); print(d.DATA_ROOT)"],
               cwd=work)
    module, data_root = (Path(line) for line in out.stdout.split())
    assert str(module).startswith(str(work / "venv")), module  # the wheel's lmkit, not the checkout's
    assert data_root == module.parent / "datasets"
    shipped = {p.relative_to(data_root).as_posix() for p in data_root.rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    expected = {p.relative_to(ROOT / "data").as_posix() for p in (ROOT / "data").rglob("*") if p.is_file()
                and "__pycache__" not in p.parts}
    assert expected and expected <= shipped, sorted(expected - shipped)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_run_outside_the_checkout_offline(fresh_python, name):
    python, work = fresh_python
    folder = work / "elsewhere"
    folder.mkdir(exist_ok=True)
    shutil.copy(ROOT / "notebooks" / name, folder / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LMKIT_QUICK": "1", "OMP_NUM_THREADS": "1",
           "LMKIT_STRICT_EXERCISES": "1", "PYTHONPATH": ""}
    _run([str(python), "-m", "nbconvert", "--to", "notebook", "--execute", "--output", f"ran_{name}",
          "--ExecutePreprocessor.timeout=600", "--ExecutePreprocessor.kernel_name=python3", str(folder / name)],
         cwd=folder, env=env)
    assert (folder / f"ran_{name}").is_file()
