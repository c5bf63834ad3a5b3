"""Package layout for setuptools (the metadata is in pyproject.toml).

The project's data sets live in ``data/`` at the top of the repository, where readers find them; they ship inside
the installed package as ``lmkit/datasets/`` so that ``pip install .`` (or from git, as on Colab) runs every notebook
offline with no checkout. :func:`lmkit.data.data_file` looks in the checkout first, then in the package.
"""
from pathlib import Path

from setuptools import find_packages, setup

DATA = Path(__file__).resolve().parent / "data"
data_packages = {"lmkit.datasets": "data"}
for folder in sorted(p for p in DATA.rglob("*") if p.is_dir() and "__pycache__" not in p.parts):
    rel = folder.relative_to(DATA)
    data_packages["lmkit.datasets." + ".".join(rel.parts)] = (Path("data") / rel).as_posix()

setup(
    packages=find_packages(include=["lmkit", "lmkit.*"]) + list(data_packages),
    package_dir=data_packages,
    package_data={name: ["*"] for name in data_packages},
    exclude_package_data={name: ["*.pyc"] for name in data_packages},
)
